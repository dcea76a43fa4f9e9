import { afterAll, describe, expect, it } from 'vitest';
import {
  buildExpertGraph,
  buildExpertGroupGraph,
  createSession,
  dequantizeInt8PerChannel,
  expertWeights,
  quantizeInt8PerChannel,
  type ExpertGraphOptions,
  type OnnxSession,
  type SessionOptions,
  type SwiGluWeights,
} from '../src/index.ts';
import {
  getPreset,
  randomWeights,
  cosineSimilarity,
  maxAbsDiff,
  referenceSwiGlu,
  type F32Tensor,
} from '@switchyard/model';

const TOLERANCE = 1e-4;
const config = getPreset('tiny', { sharedExpertFfnSize: 48 });
const weights = randomWeights(config, 21);
const H = config.hiddenSize;

const sessions: OnnxSession[] = [];
afterAll(async () => {
  await Promise.all(sessions.map((s) => s.release()));
});

async function session(bytes: Uint8Array, options: SessionOptions = {}): Promise<OnnxSession> {
  const s = await createSession(bytes, { intraOpThreads: 1, ...options });
  sessions.push(s);
  return s;
}

function tokens(numRows: number, seed: number): Float32Array {
  return Float32Array.from({ length: numRows * H }, (_, i) => Math.cos(seed * 3.3 + i * 0.61) * 1.5);
}

async function runExpert(s: OnnxSession, x: Float32Array): Promise<Float32Array> {
  const result = await s.run({ x: { data: x, dims: [x.length / H, H] } });
  const y = result['y'];
  if (y === undefined) throw new Error('no output y');
  expect(y.dims).toEqual([x.length / H, H]);
  return y.data;
}

function dequantised(w: SwiGluWeights): SwiGluWeights {
  const dq = (t: F32Tensor) => dequantizeInt8PerChannel(t.shape, quantizeInt8PerChannel(t));
  return { gate: dq(w.gate), up: dq(w.up), down: dq(w.down) };
}

describe('fp32 expert graph', () => {
  it.each([1, 5])('matches the reference SwiGLU for %i tokens', async (numRows) => {
    const s = await session(buildExpertGraph(config, weights, 0, 3));
    const x = tokens(numRows, numRows);
    const want = referenceSwiGlu(expertWeights(config, weights, 0, 3), x, numRows);
    expect(maxAbsDiff(await runExpert(s, x), want)).toBeLessThanOrEqual(TOLERANCE);
  });

  it('accepts zero tokens and returns an empty [0, H] output', async () => {
    const s = await session(buildExpertGraph(config, weights, 1, 0));
    expect(await runExpert(s, new Float32Array(0))).toHaveLength(0);
  });

  it('builds the shared expert from the shared weights with the same SwiGLU', async () => {
    const s = await session(buildExpertGraph(config, weights, 1, 'shared'));
    const x = tokens(3, 9);
    const w = expertWeights(config, weights, 1, 'shared');
    expect(w.gate.shape).toEqual([48, H]);
    expect(maxAbsDiff(await runExpert(s, x), referenceSwiGlu(w, x, 3))).toBeLessThanOrEqual(TOLERANCE);
  });
});

describe('int8 quantiser', () => {
  it('maps each row’s largest magnitude to ±127 and keeps every weight within half a step', () => {
    const weight = { shape: [3, 4], data: Float32Array.from([0.5, -1, 0.25, 0, 0, 0, 0, 0, 3, 2, -1.5, 0.01]) };
    const { q, scales } = quantizeInt8PerChannel(weight);
    expect(Array.from(scales)).toEqual([Math.fround(1 / 127), 0, Math.fround(3 / 127)]);
    expect(Array.from(q)).toEqual([64, -127, 32, 0, 0, 0, 0, 0, 127, 85, -64, 0]);
    const back = dequantizeInt8PerChannel(weight.shape, { q, scales });
    weight.data.forEach((w, i) => {
      expect(Math.abs((back.data[i] ?? 0) - w)).toBeLessThanOrEqual((scales[Math.floor(i / 4)] ?? 0) / 2 + 1e-7);
    });
  });
});

describe('int8 expert graphs', () => {
  const w = expertWeights(config, weights, 0, 5);
  const x = tokens(4, 2);

  it.each<[string, ExpertGraphOptions, SessionOptions]>([
    ['QDQ (DequantizeLinear → MatMul) run exactly', { format: 'int8-qdq' }, { exactQdqInt8: true }],
    ['MatMulNBits at accuracy level 0', { format: 'int8', nbitsAccuracyLevel: 0 }, {}],
  ])('%s matches a TS reference over the dequantised weights', async (_name, options, sessionOptions) => {
    const s = await session(buildExpertGraph(config, weights, 0, 5, options), sessionOptions);
    const want = referenceSwiGlu(dequantised(w), x, 4);
    expect(maxAbsDiff(await runExpert(s, x), want)).toBeLessThanOrEqual(TOLERANCE);
  });

  it.each<[string, ExpertGraphOptions]>([
    ['int8 (MatMulNBits, int8 activations)', { format: 'int8' }],
    ['int8-rows (MatMulInteger, per-row int8 activations)', { format: 'int8-rows' }],
    ['int8-qdq under onnxruntime’s default fusion', { format: 'int8-qdq' }],
  ])('%s stays close to fp32 (cosine > 0.999)', async (_name, options) => {
    const s = await session(buildExpertGraph(config, weights, 0, 5, options));
    const got = await runExpert(s, x);
    const fp32 = referenceSwiGlu(w, x, 4);
    expect(cosineSimilarity(got, fp32)).toBeGreaterThan(0.999);
    const scale = Math.max(...Array.from(fp32, Math.abs));
    expect(maxAbsDiff(got, referenceSwiGlu(dequantised(w), x, 4))).toBeLessThan(0.02 * scale);
  });
});

/**
 * Row 1 of a 4-row batch as an int8 expert graph of `format` computes it three ways: in the batch, in the
 * batch with row 0 made much louder (a larger quantisation range), and alone.
 */
async function row1ThreeWays(format: 'int8' | 'int8-rows') {
  const s = await session(buildExpertGraph(config, weights, 0, 5, { format }));
  const batch = tokens(4, 2);
  const loud = batch.slice();
  loud.fill(40, 0, H);
  const row1 = (y: Float32Array) => y.slice(H, 2 * H);
  return {
    inBatch: row1(await runExpert(s, batch)),
    beside: row1(await runExpert(s, loud)),
    alone: await runExpert(s, batch.slice(H, 2 * H)),
  };
}

describe('int8 expert graph (MatMulNBits, what the engine runs for int8)', () => {
  it('gives a row the same result whatever the other rows of a batch are, and nearly its one-row result', async () => {
    const { inBatch, beside, alone } = await row1ThreeWays('int8');
    expect(Array.from(beside)).toEqual(Array.from(inBatch));
    // One row runs another kernel: the same quantised activations, summed in another order.
    const scale = Math.max(...Array.from(alone, Math.abs));
    expect(maxAbsDiff(inBatch, alone)).toBeLessThanOrEqual(1e-5 * scale);
  });
});

describe('int8-rows expert graph', () => {
  it('gives each row the same result whatever the other rows of the batch are', async () => {
    const { inBatch, beside, alone } = await row1ThreeWays('int8-rows');
    expect(Array.from(inBatch)).toEqual(Array.from(alone));
    expect(Array.from(beside)).toEqual(Array.from(alone));
  });

  it('gives zeros, not NaN, for an all-zero row', async () => {
    const s = await session(buildExpertGraph(config, weights, 0, 5, { format: 'int8-rows' }));
    const y = await runExpert(s, new Float32Array(H));
    expect(y.every((v) => v === 0)).toBe(true);
  });
});

describe('expert group graph', () => {
  it('runs several experts in one call, each on its own rows (zero rows allowed)', async () => {
    const experts = [2, 7, 'shared'] as const;
    const s = await session(buildExpertGroupGraph(config, weights, 1, experts));
    const inputs = [tokens(2, 1), new Float32Array(0), tokens(3, 4)];
    const feeds = Object.fromEntries(inputs.map((x, i) => [`x_${i}`, { data: x, dims: [x.length / H, H] }]));
    const result = await s.run(feeds);
    experts.forEach((expert, i) => {
      const x = inputs[i] ?? new Float32Array(0);
      const want = referenceSwiGlu(expertWeights(config, weights, 1, expert), x, x.length / H);
      expect(maxAbsDiff(result[`y_${i}`]?.data ?? [], want)).toBeLessThanOrEqual(TOLERANCE);
    });
  });
});
