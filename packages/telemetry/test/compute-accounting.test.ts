import { describe, expect, it } from 'vitest';
import { countConfigParams, getPreset } from '@switchyard/model';
import { routesFromPairs } from '@switchyard/routing';
import { AccountingObserver, type ChunkLike, type TokenCompute } from '../src/accounting-observer.ts';
import { computeModelOf, prefillFlops, rowCompute } from '../src/compute-accounting.ts';
import { analytic } from './tiny-analytic.ts';

// tiny with a shared expert: H 64, 2 layers, 4 heads / 2 KV heads of 16, 8 experts top-2 of FFN 32,
// shared FFN 32, vocabulary 258.
const config = getPreset('tiny', { sharedExpertFfnSize: 32 });
const model = computeModelOf(config);

const seq = (id: string, numPromptTokens: number) => ({ id, numPromptTokens });

describe('compute model', () => {
  it('agrees with the parameter counts of params.ts for a sampled top-k row', () => {
    const counts = countConfigParams(config);
    const row = rowCompute(model, 0, config.numLayers * config.numExpertsPerToken, true);
    expect(row.matmulParams).toBe(counts.matmulParamsPerToken);
    expect(row.activeParams).toBe(counts.activeParamsPerToken - counts.activePerToken.embedding);
    expect(model.expertSizeBytes).toEqual({ f32: 4 * 3 * 64 * 32, int8: 3 * 64 * 32 + 4 * (32 + 32 + 64) });
  });

  it('gives prefill FLOPs of a cached prefix in closed form, equal to the sum over its rows', () => {
    let sum = 0;
    for (let p = 0; p < 37; p++) sum += rowCompute(model, p, 4, false).flops;
    expect(prefillFlops(model, 37)).toBe(sum);
    expect(prefillFlops(model, 0)).toBe(0);
  });
});

describe('AccountingObserver fed fixed routes', () => {
  // Step: sequence a prefills positions 0–2 of a 3-token prompt and samples; sequence b decodes
  // position 5 (prompt of 4) and samples. Rows: a0 a1 a2 b5.
  const chunks: ChunkLike[] = [
    { seq: seq('a', 3), start: 0, count: 3, sample: true },
    { seq: seq('b', 4), start: 5, count: 1, sample: true },
  ];
  const layer0 = routesFromPairs([
    [
      [1, 0.6],
      [2, 0.4],
    ],
    [
      [1, 0.5],
      [1, 0.5],
    ], // the same expert twice: one distinct expert, its weights read once
    [
      [5, 0.7],
      [6, 0.3],
    ],
    [
      [2, 0.9],
      [7, 0.1],
    ],
  ]);
  const layer1 = routesFromPairs([
    [
      [0, 0.5],
      [3, 0.5],
    ],
    [[3, 1]], // capacity dropped one choice: one expert
    [
      [0, 0.5],
      [4, 0.5],
    ],
    [
      [6, 0.5],
      [0, 0.5],
    ],
  ]);
  const distinct = [
    [2, 1, 2, 2],
    [2, 1, 2, 2],
  ]; // [layer][row]

  function run(workerOf?: (layer: number, expert: number) => number) {
    const tokens: TokenCompute[] = [];
    const observer = new AccountingObserver({
      model,
      expertFormat: 'f32',
      recordExperts: true,
      onToken: (t) => tokens.push(t),
      ...(workerOf ? { workerOf } : {}),
    });
    observer.observe(0, chunks, layer0);
    expect(tokens).toHaveLength(0); // rows are complete only after their last layer
    observer.observe(1, chunks, layer1);
    return { tokens, observer };
  }

  it('reports each row once with exactly the analytic active parameters and FLOPs', () => {
    const { tokens } = run();
    const rows = [
      { seqId: 'a', position: 0, sampled: false, phase: 'prefill' },
      { seqId: 'a', position: 1, sampled: false, phase: 'prefill' },
      { seqId: 'a', position: 2, sampled: true, phase: 'prefill' },
      { seqId: 'b', position: 5, sampled: true, phase: 'decode' },
    ];
    expect(tokens.map((t) => ({ seqId: t.seqId, position: t.position, sampled: t.sampled, phase: t.phase }))).toEqual(
      rows,
    );
    tokens.forEach((t, r) => {
      const d = (distinct[0]?.[r] ?? 0) + (distinct[1]?.[r] ?? 0);
      expect(t.expertActivations).toBe(d);
      expect({ activeParams: t.activeParams, flops: t.flops }).toEqual(analytic(t.position, d, t.sampled));
    });
    expect(tokens.map((t) => t.experts)).toEqual([
      [
        [1, 2],
        [0, 3],
      ],
      [[1], [3]],
      [
        [5, 6],
        [0, 4],
      ],
      [
        [2, 7],
        [6, 0],
      ],
    ]);
  });

  it('sums requests and the step, and counts each distinct expert of a layer call once for bytes', () => {
    const { observer, tokens } = run((_layer, expert) => (expert < 4 ? 0 : 1));
    const a = observer.takeRequest('a');
    const flopsOf = (id: string) => tokens.filter((t) => t.seqId === id).reduce((s, t) => s + t.flops, 0);
    expect(a).toMatchObject({
      numTokens: 3,
      numPrefillTokens: 3,
      numDecodeTokens: 0,
      numSampled: 1,
      expertActivations: 2 + 1 + 2 + 2 + 1 + 2,
      flops: flopsOf('a'),
    });
    expect(a?.expertsHit).toBe(4 + 3); // layer 0: 1 2 5 6; layer 1: 0 3 4
    expect(observer.takeRequest('a')).toBeUndefined();

    const step = observer.takeStep();
    // Layer 0 hits 1 2 5 6 7, layer 1 hits 0 3 4 6.
    expect(step.expertsHit).toBe(9);
    expect(step.expertBytes).toBe(9 * 4 * 3 * 64 * 32);
    expect(step.expertBytesInt8).toBe(9 * (3 * 64 * 32 + 4 * 128));
    expect(step.denseBytes).toBe(model.denseSizeBytes);
    expect(step).toMatchObject({
      numTokens: 4,
      numPrefillTokens: 3,
      numDecodeTokens: 1,
      numSampled: 2,
      prefillFlops: flopsOf('a'),
      decodeFlops: flopsOf('b'),
    });
    expect([...step.tokensPerExpert.subarray(0, 8)]).toEqual([0, 2, 2, 0, 0, 1, 1, 1]);
    expect([...step.tokensPerExpert.subarray(8, 16)]).toEqual([3, 0, 0, 2, 1, 0, 1, 0]);
    expect(step.balancedness[0]).toBeCloseTo(7 / 8 / 2, 12);
    expect(step.balancedness[1]).toBeCloseTo(7 / 8 / 3, 12);
    expect(step.workers).toEqual([
      {
        workerIndex: 0,
        expertActivations: 4 + 5,
        expertsHit: 2 + 2,
        expertBytes: 4 * 4 * 3 * 64 * 32,
        expertFlops: 9 * 2 * 3 * 64 * 32,
      },
      {
        workerIndex: 1,
        expertActivations: 3 + 2,
        expertsHit: 3 + 2,
        expertBytes: 5 * 4 * 3 * 64 * 32,
        expertFlops: 5 * 2 * 3 * 64 * 32,
      },
    ]);
    expect(observer.takeStep().numTokens).toBe(0);
  });

  it('keeps interleaved micro-batches apart (layer 0 of both, then layer 1 of both)', () => {
    const tokens: TokenCompute[] = [];
    const observer = new AccountingObserver({ model, expertFormat: 'int8', onToken: (t) => tokens.push(t) });
    const first = [chunks[0]].filter((c) => c !== undefined);
    const second = [chunks[1]].filter((c) => c !== undefined);
    const two = (a: number, b: number) =>
      routesFromPairs([
        [
          [a, 0.5],
          [b, 0.5],
        ],
      ]);
    observer.observe(0, first, routesFromPairs([[[1, 1]], [[1, 1]], [[1, 1]]]));
    observer.observe(0, second, two(2, 3));
    observer.observe(1, first, routesFromPairs([[[1, 1]], [[2, 1]], [[3, 1]]]));
    observer.observe(1, second, two(4, 5));
    expect(tokens.map((t) => [t.seqId, t.position, t.expertActivations])).toEqual([
      ['a', 0, 2],
      ['a', 1, 2],
      ['a', 2, 2],
      ['b', 5, 4],
    ]);
    const step = observer.takeStep();
    expect(step.expertsHit).toBe(1 + 2 + 3 + 2); // each micro-batch reads its experts itself
    expect(step.expertBytes).toBe(8 * model.expertSizeBytes.int8);
    expect(step.denseBytes).toBe(2 * model.denseSizeBytes);
  });

  it('rejects routes whose row count does not match the chunks', () => {
    const observer = new AccountingObserver({ model, expertFormat: 'f32' });
    expect(() => observer.observe(0, chunks, routesFromPairs([[[1, 1]]]))).toThrow(
      'routed 1 rows for chunks of 4 tokens',
    );
  });

  it('counts the LM head on every row of a chunk that scores its prompt (echo with logprobs)', () => {
    const tokens: TokenCompute[] = [];
    const observer = new AccountingObserver({ model, expertFormat: 'f32', onToken: (t) => tokens.push(t) });
    const scoring: ChunkLike[] = [{ seq: seq('e', 3), start: 0, count: 3, sample: true, logitsOfEveryRow: true }];
    const one = routesFromPairs([[[1, 1]], [[1, 1]], [[1, 1]]]);
    observer.observe(0, scoring, one);
    observer.observe(1, scoring, one);
    expect(tokens.map((t) => t.sampled)).toEqual([true, true, true]);
    tokens.forEach((t) =>
      expect({ activeParams: t.activeParams, flops: t.flops }).toEqual(analytic(t.position, 2, true)),
    );
  });
});
