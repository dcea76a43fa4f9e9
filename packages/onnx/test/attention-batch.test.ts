import { afterAll, describe, expect, it } from 'vitest';
import {
  buildAttentionGraph,
  buildBatchedAttentionGraph,
  createSession,
  dequantizeInt8PerChannel,
  quantizeInt8PerChannel,
  type OnnxSession,
  type TensorFeed,
  type TensorResult,
  type WeightFormat,
} from '../src/index.ts';
import {
  getPreset,
  randomWeights,
  cosineSimilarity,
  maxAbsDiff,
  referenceAttention,
  type F32Tensor,
  type ModelConfig,
  tensorNames,
} from '@switchyard/model';

const TOLERANCE = 1e-4;
const LAYER = 0;
const sessions: OnnxSession[] = [];
afterAll(async () => {
  await Promise.all(sessions.map((s) => s.release()));
});

async function open(bytes: Uint8Array, exactQdqInt8 = false): Promise<OnnxSession> {
  const s = await createSession(bytes, { intraOpThreads: 1, exactQdqInt8 });
  sessions.push(s);
  return s;
}

const wave = (length: number, seed: number) => Float32Array.from({ length }, (_, i) => Math.sin(seed * 1.9 + i * 0.37));

function data(result: Record<string, TensorResult>, name: string): Float32Array {
  const t = result[name];
  if (t === undefined) throw new Error(`missing output ${name}`);
  return t.data;
}

describe('batched attention graph', () => {
  const config = getPreset('tiny', { qkNorm: 'head', sharedExpertFfnSize: 16, sharedExpertGate: true });
  const weights = randomWeights(config, 61);
  const h = config.hiddenSize;
  const kvSize = config.numKvHeads * config.headDim;
  // Sequence slots: mid-decode, fresh prompt, unused slot, prefix with no new token, decode step.
  const slots = [
    { numPast: 3, numNew: 2 },
    { numPast: 0, numNew: 3 },
    { numPast: 0, numNew: 0 },
    { numPast: 4, numNew: 0 },
    { numPast: 5, numNew: 1 },
  ];
  const pasts = slots.map((s, b) => ({ k: wave(s.numPast * kvSize, b + 1), v: wave(s.numPast * kvSize, b + 11) }));
  const xs = slots.map((s, b) => wave(s.numNew * h, b + 21));
  const numRows = slots.reduce((n, s) => n + s.numNew, 0);

  function feeds(): Record<string, TensorFeed> {
    const x = new Float32Array(numRows * h);
    const splits = [0];
    xs.forEach((xi) => {
      x.set(xi, (splits.at(-1) ?? 0) * h);
      splits.push((splits.at(-1) ?? 0) + xi.length / h);
    });
    const positions = slots.flatMap((s) => Array.from({ length: s.numNew }, (_, i) => BigInt(s.numPast + i)));
    const result: Record<string, TensorFeed> = {
      x: { data: x, dims: [numRows, h] },
      positions: { data: BigInt64Array.from(positions), dims: [numRows] },
      row_splits: { data: BigInt64Array.from(splits.map((n) => BigInt(n))), dims: [slots.length + 1] },
    };
    slots.forEach((s, b) => {
      const dims = [s.numPast, config.numKvHeads, config.headDim];
      result[`past_k_${b}`] = { data: pasts[b]?.k ?? new Float32Array(0), dims };
      result[`past_v_${b}`] = { data: pasts[b]?.v ?? new Float32Array(0), dims };
    });
    return result;
  }

  it('gives every sequence the reference result for its own past, including empty slots', async () => {
    const session = await open(buildBatchedAttentionGraph(config, weights, LAYER, slots.length));
    const got = await session.run(feeds());
    expect(got['h']?.dims).toEqual([numRows, h]);
    let row = 0;
    slots.forEach((s, b) => {
      if (s.numNew === 0) return;
      const positions = Array.from({ length: s.numNew }, (_, i) => s.numPast + i);
      const past = pasts[b] ?? { k: new Float32Array(0), v: new Float32Array(0) };
      const want = referenceAttention(config, weights, LAYER, xs[b] ?? new Float32Array(0), positions, past.k, past.v);
      const rows = (name: string, width: number) => data(got, name).subarray(row * width, (row + s.numNew) * width);
      expect(maxAbsDiff(rows('h', h), want.h)).toBeLessThanOrEqual(TOLERANCE);
      expect(maxAbsDiff(rows('moe_in', h), want.moeIn)).toBeLessThanOrEqual(TOLERANCE);
      expect(maxAbsDiff(rows('router_logits', config.numExperts), want.routerLogits)).toBeLessThanOrEqual(TOLERANCE);
      expect(maxAbsDiff(rows('new_k', kvSize), want.newK)).toBeLessThanOrEqual(TOLERANCE);
      expect(maxAbsDiff(rows('new_v', kvSize), want.newV)).toBeLessThanOrEqual(TOLERANCE);
      expect(maxAbsDiff(rows('shared_gate', 1), want.sharedGate ?? [])).toBeLessThanOrEqual(TOLERANCE);
      row += s.numNew;
    });
  });

  it('with one slot, agrees with the single-sequence graph', async () => {
    const batched = await open(buildBatchedAttentionGraph(config, weights, LAYER, 1));
    const single = await open(buildAttentionGraph(config, weights, LAYER));
    const x = wave(2 * h, 5);
    const past = { k: wave(3 * kvSize, 6), v: wave(3 * kvSize, 7) };
    const kvDims = [3, config.numKvHeads, config.headDim];
    const positions = { data: BigInt64Array.from([3n, 4n]), dims: [2] };
    const a = await batched.run({
      x: { data: x, dims: [2, h] },
      positions,
      row_splits: { data: BigInt64Array.from([0n, 2n]), dims: [2] },
      past_k_0: { data: past.k, dims: kvDims },
      past_v_0: { data: past.v, dims: kvDims },
    });
    const b = await single.run({
      x: { data: x, dims: [2, h] },
      positions,
      past_k: { data: past.k, dims: kvDims },
      past_v: { data: past.v, dims: kvDims },
    });
    for (const name of ['h', 'moe_in', 'router_logits', 'new_k', 'new_v', 'shared_gate']) {
      expect(maxAbsDiff(data(a, name), data(b, name))).toBeLessThanOrEqual(TOLERANCE);
    }
  });
});

describe('attention with int8 projections', () => {
  const config: ModelConfig = getPreset('tiny', { attentionBias: true });
  const weights = randomWeights(config, 62);
  const projections = (['q_proj', 'k_proj', 'v_proj', 'o_proj'] as const).map((p) => tensorNames.attention(LAYER, p));
  const x = wave(4 * config.hiddenSize, 8);
  const positions = [0, 1, 2, 3];
  const empty = { data: new Float32Array(0), dims: [0, config.numKvHeads, config.headDim] };
  const feeds = {
    x: { data: x, dims: [4, config.hiddenSize] },
    positions: { data: BigInt64Array.from([0n, 1n, 2n, 3n]), dims: [4] },
    past_k: empty,
    past_v: empty,
  };

  it('int8-qdq run exactly matches the reference over dequantised q/k/v/o weights', async () => {
    const session = await open(buildAttentionGraph(config, weights, LAYER, { projectionFormat: 'int8-qdq' }), true);
    const dequantised = new Map<string, F32Tensor>(weights);
    for (const name of projections) {
      const w = weights.get(name);
      if (w === undefined) throw new Error(`missing ${name}`);
      dequantised.set(name, dequantizeInt8PerChannel(w.shape, quantizeInt8PerChannel(w)));
    }
    const want = referenceAttention(config, dequantised, LAYER, x, positions, empty.data, empty.data);
    const got = await session.run(feeds);
    expect(maxAbsDiff(data(got, 'h'), want.h)).toBeLessThanOrEqual(TOLERANCE);
    expect(maxAbsDiff(data(got, 'new_k'), want.newK)).toBeLessThanOrEqual(TOLERANCE);
  });

  it.each<WeightFormat>(['int8', 'int8-rows'])(
    '%s keeps the attention update close to fp32 (cosine > 0.999)',
    async (format) => {
      const session = await open(buildAttentionGraph(config, weights, LAYER, { projectionFormat: format }));
      const want = referenceAttention(config, weights, LAYER, x, positions, empty.data, empty.data);
      const got = data(await session.run(feeds), 'h');
      const update = (hOut: Float32Array) => hOut.map((v, i) => v - (x[i] ?? 0));
      expect(cosineSimilarity(update(got), update(want.h))).toBeGreaterThan(0.999);
    },
  );
});
