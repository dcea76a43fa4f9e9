import { afterEach, describe, expect, it } from 'vitest';
import {
  getPreset,
  randomWeights,
  referenceSwiGlu,
  requireWeight,
  tensorNames,
  type F32Tensor,
} from '@switchyard/model';
import { InvalidArgumentError, NotFoundError, type ExpertRef, type RunRequest } from '@switchyard/rpc';
import type { ExpertDtype } from '@switchyard/onnx';
import { ExpertWorker } from '../src/expert-worker.ts';
import { memoryExpertSource, type ExpertSource } from '../src/expert-source.ts';

// The tiny preset: 2 layers of 8 experts, hidden size 64, expert FFN size 32.
const config = getPreset('tiny');
const weights = randomWeights(config, 7);
const H = config.hiddenSize;
const TOLERANCE = 1e-4;
const MAX_TOKENS = 4;

/** (expert id, gate weight) pairs of one token. */
type Pairs = readonly (readonly [number, number])[];

const ref = (layer: number, expertId: number): ExpertRef => ({ layer, expertId });
const wave = (length: number, seed: number): Float32Array =>
  Float32Array.from({ length }, (_, i) => Math.sin(seed * 1.7 + i * 0.31));

/** A source that records which experts were read and whether it was closed. */
interface RecordingSource extends ExpertSource {
  readonly reads: string[];
  readonly closed: () => boolean;
}

function recordingSource(): RecordingSource {
  const inner = memoryExpertSource(config, weights);
  const reads: string[] = [];
  let closed = false;
  return {
    config: inner.config,
    modelName: inner.modelName,
    reads,
    closed: () => closed,
    readExpert(layer, expertId) {
      reads.push(`${layer}:${expertId}`);
      return inner.readExpert(layer, expertId);
    },
    async close() {
      closed = true;
      await inner.close();
    },
  };
}

const workers: ExpertWorker[] = [];
afterEach(async () => {
  await Promise.all(workers.splice(0).map((w) => w.close()));
});

function openWorker(dtype: ExpertDtype = 'fp32', source: ExpertSource = recordingSource()): ExpertWorker {
  const worker = new ExpertWorker({
    workerId: 'w-test',
    source,
    dtype,
    maxTokensPerRun: MAX_TOKENS,
    session: { intraOpThreads: 1 },
  });
  workers.push(worker);
  return worker;
}

/** A run of one layer: token t routes to `tokens[t]`, its hidden row is a distinct sine wave. */
function request(layer: number, tokens: readonly Pairs[], overrides: Partial<RunRequest> = {}): RunRequest {
  const offsets = [0];
  for (const pairs of tokens) offsets.push((offsets.at(-1) ?? 0) + pairs.length);
  return {
    layer,
    hiddenSize: H,
    hidden: wave(tokens.length * H, layer + 1),
    routes: {
      numTokens: tokens.length,
      offsets: Int32Array.from(offsets),
      expertIds: Int32Array.from(tokens.flatMap((pairs) => pairs.map(([e]) => e))),
      weights: Float32Array.from(tokens.flatMap((pairs) => pairs.map(([, w]) => w))),
    },
    ...overrides,
  };
}

/** Row t = Σ over token t's pairs of weight × SwiGLU_expert(hidden[t]), from the weight tensors. */
function reference(layer: number, hidden: Float32Array, tokens: readonly Pairs[]): Float32Array {
  const out = new Float32Array(tokens.length * H);
  const tensor = (e: number, proj: 'gate_proj' | 'up_proj' | 'down_proj'): F32Tensor =>
    requireWeight(weights, tensorNames.expert(layer, e, proj));
  tokens.forEach((pairs, t) => {
    const x = hidden.subarray(t * H, (t + 1) * H);
    for (const [e, w] of pairs) {
      const y = referenceSwiGlu(
        { gate: tensor(e, 'gate_proj'), up: tensor(e, 'up_proj'), down: tensor(e, 'down_proj') },
        x,
        1,
      );
      for (let i = 0; i < H; i++) out[t * H + i] = (out[t * H + i] ?? 0) + w * (y[i] ?? 0);
    }
  });
  return out;
}

function maxAbsError(actual: Float32Array, expected: Float32Array): number {
  expect(actual.length).toBe(expected.length);
  return actual.reduce((m, a, i) => Math.max(m, Math.abs(a - (expected[i] ?? Number.NaN))), 0);
}

async function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => expect.fail('expected a rejection'),
    (error: unknown) => error,
  );
}

// Layer 1 hosts experts 1, 3 and 5; three tokens route to them (expert 3 serves all three tokens).
const HOSTED = [ref(1, 5), ref(0, 3), ref(1, 1), ref(1, 3)];
const TOKENS: readonly Pairs[] = [
  [
    [1, 0.7],
    [3, 0.3],
  ],
  [
    [3, 0.6],
    [5, 0.4],
  ],
  [
    [5, 0.5],
    [3, 0.5],
  ],
];

describe('ExpertWorker placement', () => {
  it('hosts loaded experts sorted by layer then expert, reading each expert once, and only raises the revision', async () => {
    const source = recordingSource();
    const worker = openWorker('fp32', source);
    const sorted = [ref(0, 3), ref(1, 1), ref(1, 3), ref(1, 5)];

    expect(await worker.load({ experts: HOSTED, placementRevision: 3 })).toEqual({
      hosted: sorted,
      placementRevision: 3,
    });
    expect(await worker.load({ experts: [ref(1, 5)], placementRevision: 2 })).toEqual({
      hosted: sorted,
      placementRevision: 3,
    });
    expect(source.reads).toEqual(['1:5', '0:3', '1:1', '1:3']);
    expect(worker.hosted()).toEqual(sorted);
    expect(await worker.unload({ experts: [ref(0, 3)], placementRevision: 1 })).toEqual({
      hosted: sorted.slice(1),
      placementRevision: 3,
    });
  });

  it('rejects loading or unloading an expert outside the model as INVALID_ARGUMENT', async () => {
    const worker = openWorker();
    for (const change of [
      () => worker.load({ experts: [ref(0, 8)], placementRevision: 1 }),
      () => worker.unload({ experts: [ref(2, 0)], placementRevision: 1 }),
      () => worker.unload({ experts: [ref(0, -1)], placementRevision: 1 }),
    ]) {
      const error = await rejectionOf(change());
      expect(error).toBeInstanceOf(InvalidArgumentError);
      expect(error).toMatchObject({
        code: 'INVALID_ARGUMENT',
        message: expect.stringMatching(/^no expert -?\d+ in layer \d+ \(the model has 2 layers of 8 experts\)$/),
      });
    }
    expect(await worker.describe()).toMatchObject({ hosted: [], placementRevision: 0 });
  });
});

describe('ExpertWorker.run', () => {
  it('returns the gate-weighted sum of the chosen experts\u2019 SwiGLU outputs and counts what it served', async () => {
    const worker = openWorker();
    await worker.load({ experts: HOSTED, placementRevision: 1 });
    const req = request(1, TOKENS);

    const { output } = await worker.run(req);

    expect(maxAbsError(output, reference(1, req.hidden, TOKENS))).toBeLessThan(TOLERANCE);
    expect(worker.numRuns).toBe(1);
    expect(new Map(worker.tokensPerExpert)).toEqual(
      new Map([
        ['1:1', 1],
        ['1:3', 3],
        ['1:5', 2],
      ]),
    );
    // The same counter, as Describe reports it to gateways and tests.
    expect((await worker.describe()).tokensServed).toEqual([
      { layer: 1, expertId: 1, tokens: 1 },
      { layer: 1, expertId: 3, tokens: 3 },
      { layer: 1, expertId: 5, tokens: 2 },
    ]);
  });

  it('rejects a well-formed request for an expert it does not host as NOT_FOUND, then still serves', async () => {
    const worker = openWorker();
    await worker.load({ experts: HOSTED, placementRevision: 1 });

    const error = await rejectionOf(
      worker.run(
        request(1, [
          [
            [3, 0.5],
            [2, 0.5],
          ],
        ]),
      ),
    );

    expect(error).toBeInstanceOf(NotFoundError);
    expect(error).toMatchObject({ code: 'NOT_FOUND', message: 'expert 2 of layer 1 is not hosted by worker w-test' });
    const req = request(1, TOKENS);
    expect(maxAbsError((await worker.run(req)).output, reference(1, req.hidden, TOKENS))).toBeLessThan(TOLERANCE);
    expect(worker.numRuns).toBe(1);
  });

  const fiveTokens: Pairs[] = Array.from({ length: 5 }, () => [[1, 1]]);
  it.each<[string, RunRequest, string]>([
    [
      'an expert id outside the model',
      request(1, [
        [
          [1, 0.5],
          [8, 0.5],
        ],
      ]),
      'expert 8 does not exist (the model has 8 per layer)',
    ],
    ['a layer outside the model', request(2, [[[1, 1]]]), 'layer 2 does not exist (the model has 2)'],
    [
      'a hidden size other than the model\u2019s',
      request(1, [[[1, 1]]], { hiddenSize: 32, hidden: wave(32, 1) }),
      "hidden size 32 does not match the model's 64",
    ],
    [
      'a hidden buffer of the wrong length',
      request(1, [[[1, 1]]], { hidden: wave(H - 1, 1) }),
      'hidden holds 63 floats, expected 1 × 64',
    ],
    ['more tokens than maxTokensPerRun', request(1, fiveTokens), '5 tokens exceed the limit of 4 per message'],
  ])('rejects %s as INVALID_ARGUMENT, then still serves', async (_, bad, message) => {
    const worker = openWorker();
    await worker.load({ experts: HOSTED, placementRevision: 1 });

    const error = await rejectionOf(worker.run(bad));

    expect(error).toBeInstanceOf(InvalidArgumentError);
    expect(error).toMatchObject({ code: 'INVALID_ARGUMENT', message });
    expect(worker.numRuns).toBe(0);
    expect(worker.tokensPerExpert.size).toBe(0);
    const req = request(1, TOKENS);
    expect(maxAbsError((await worker.run(req)).output, reference(1, req.hidden, TOKENS))).toBeLessThan(TOLERANCE);
    expect(worker.numRuns).toBe(1);
  });

  it('finishes a run in flight with the right numbers when its expert is unloaded meanwhile', async () => {
    const worker = openWorker();
    await worker.load({ experts: HOSTED, placementRevision: 1 });
    const req = request(1, TOKENS);
    const settled: string[] = [];

    const running = worker.run(req).then((result) => {
      settled.push('run');
      return result;
    });
    const state = await worker.unload({ experts: [ref(1, 3)], placementRevision: 2 });
    settled.push('unload');
    const { output } = await running;

    expect(settled).toEqual(['unload', 'run']);
    expect(state).toEqual({ hosted: [ref(0, 3), ref(1, 1), ref(1, 5)], placementRevision: 2 });
    expect(maxAbsError(output, reference(1, req.hidden, TOKENS))).toBeLessThan(TOLERANCE);
    expect(worker.hosted()).toEqual([ref(0, 3), ref(1, 1), ref(1, 5)]);
    expect(await rejectionOf(worker.run(req))).toMatchObject({
      code: 'NOT_FOUND',
      message: 'expert 3 of layer 1 is not hosted by worker w-test',
    });
  });
});

describe('ExpertWorker lifecycle', () => {
  it('describes its id, hosted experts, weight dtype, model and revision', async () => {
    const worker = openWorker('fp32');
    await worker.load({ experts: [ref(1, 5), ref(0, 3)], placementRevision: 4 });

    expect(await worker.describe()).toEqual({
      workerId: 'w-test',
      hosted: [ref(0, 3), ref(1, 5)],
      dtype: 'DTYPE_F32',
      executionProvider: 'cpu',
      modelName: 'tiny',
      hiddenSize: 64,
      placementRevision: 4,
      // Weights given in memory carry no digest; a model directory's worker reports its SHA-256.
      weightsDigest: '',
      tokensServed: [],
    });
    expect(await openWorker('int8').describe()).toMatchObject({
      workerId: 'w-test',
      hosted: [],
      dtype: 'DTYPE_I8',
      modelName: 'tiny',
      hiddenSize: 64,
    });
  });

  it('releases every expert and closes its source on close()', async () => {
    const source = recordingSource();
    const worker = openWorker('fp32', source);
    await worker.load({ experts: HOSTED, placementRevision: 1 });

    await worker.close();

    expect(worker.hosted()).toEqual([]);
    expect(source.closed()).toBe(true);
    expect(await rejectionOf(worker.run(request(1, TOKENS)))).toBeInstanceOf(NotFoundError);
  });
});
