/**
 * The whole model run the way the engine runs it: embedding lookup in TS, one attention graph per layer
 * over a per-sequence KV buffer, router top-k in TS, one expert graph per routed expert (rows grouped by
 * expert), the shared expert, a weighted combine in TS, then the LM head graph. Logits must match the
 * plain-TypeScript reference forward within 1e-4 at every step of a prompt + decode.
 */
import { afterAll, describe, expect, it } from 'vitest';
import {
  buildAttentionGraph,
  buildExpertGraph,
  buildLmHeadGraph,
  createSession,
  type OnnxSession,
  type TensorResult,
} from '../src/index.ts';
import {
  getPreset,
  randomWeights,
  maxAbsDiff,
  referenceEmbed,
  referenceForward,
  ReferenceKvCache,
  referenceRoute,
  type ModelConfig,
  type WeightMap,
  tensorNames,
} from '@switchyard/model';

const TOLERANCE = 1e-4;

function take(result: Record<string, TensorResult>, name: string): Float32Array {
  const t = result[name];
  if (t === undefined) throw new Error(`missing output ${name}`);
  return t.data;
}

interface LayerSessions {
  readonly attention: OnnxSession;
  readonly experts: readonly OnnxSession[];
  readonly shared: OnnxSession | undefined;
}

/** One sequence through ONNX graphs, with a preallocated per-layer K/V buffer the graphs read in place. */
class OnnxPipeline {
  readonly #config: ModelConfig;
  readonly #weights: WeightMap;
  readonly #layers: readonly LayerSessions[];
  readonly #lmHead: OnnxSession;
  readonly #cacheK: Float32Array[];
  readonly #cacheV: Float32Array[];
  #numTokens = 0;

  private constructor(config: ModelConfig, weights: WeightMap, layers: LayerSessions[], lmHead: OnnxSession) {
    this.#config = config;
    this.#weights = weights;
    this.#layers = layers;
    this.#lmHead = lmHead;
    const size = config.maxContext * config.numKvHeads * config.headDim;
    this.#cacheK = layers.map(() => new Float32Array(size));
    this.#cacheV = layers.map(() => new Float32Array(size));
  }

  static async create(config: ModelConfig, weights: WeightMap): Promise<OnnxPipeline> {
    const open = (bytes: Uint8Array) => createSession(bytes, { intraOpThreads: 1 });
    const layers: LayerSessions[] = [];
    for (let layer = 0; layer < config.numLayers; layer++) {
      const experts = await Promise.all(
        Array.from({ length: config.numExperts }, (_, e) => open(buildExpertGraph(config, weights, layer, e))),
      );
      layers.push({
        attention: await open(buildAttentionGraph(config, weights, layer)),
        experts,
        shared:
          config.sharedExpertFfnSize > 0 ? await open(buildExpertGraph(config, weights, layer, 'shared')) : undefined,
      });
    }
    return new OnnxPipeline(config, weights, layers, await open(buildLmHeadGraph(config, weights)));
  }

  /** Runs new tokens after those already cached; returns their logits [T, V]. */
  async forward(tokens: readonly number[]): Promise<Float32Array> {
    const numNew = tokens.length;
    const positions = BigInt64Array.from(tokens.map((_, t) => BigInt(this.#numTokens + t)));
    let x = referenceEmbed(this.#config, this.#weights, tokens);
    for (let layer = 0; layer < this.#layers.length; layer++) x = await this.#layer(layer, x, positions);
    this.#numTokens += numNew;
    const logits = await this.#lmHead.run({ x: { data: x, dims: [numNew, this.#config.hiddenSize] } });
    return take(logits, 'logits');
  }

  async #layer(layer: number, x: Float32Array, positions: BigInt64Array): Promise<Float32Array> {
    const c = this.#config;
    const sessions = this.#layers[layer];
    const cacheK = this.#cacheK[layer];
    const cacheV = this.#cacheV[layer];
    if (sessions === undefined || cacheK === undefined || cacheV === undefined) throw new Error(`no layer ${layer}`);
    const numNew = positions.length;
    const kvSize = c.numKvHeads * c.headDim;
    const past = this.#numTokens * kvSize;
    const attention = await sessions.attention.run({
      x: { data: x, dims: [numNew, c.hiddenSize] },
      positions: { data: positions, dims: [numNew] },
      past_k: { data: cacheK.subarray(0, past), dims: [this.#numTokens, c.numKvHeads, c.headDim] },
      past_v: { data: cacheV.subarray(0, past), dims: [this.#numTokens, c.numKvHeads, c.headDim] },
    });
    cacheK.set(take(attention, 'new_k'), past);
    cacheV.set(take(attention, 'new_v'), past);
    return this.#moe(layer, sessions, attention, numNew);
  }

  async #moe(layer: number, sessions: LayerSessions, attention: Record<string, TensorResult>, numNew: number) {
    const c = this.#config;
    const h = c.hiddenSize;
    const moeIn = take(attention, 'moe_in');
    const logits = take(attention, 'router_logits');
    const bias = c.selectionBias ? this.#weights.get(tensorNames.selectionBias(layer))?.data : undefined;
    const rowsByExpert = new Map<number, { row: number; weight: number }[]>();
    for (let t = 0; t < numNew; t++) {
      const decision = referenceRoute(c, logits.subarray(t * c.numExperts, (t + 1) * c.numExperts), bias);
      decision.experts.forEach((expert, j) => {
        const rows = rowsByExpert.get(expert) ?? [];
        rows.push({ row: t, weight: decision.weights[j] ?? 0 });
        rowsByExpert.set(expert, rows);
      });
    }
    const out = Float64Array.from(take(attention, 'h'));
    for (const [expert, rows] of rowsByExpert) {
      const gathered = new Float32Array(rows.length * h);
      rows.forEach(({ row }, i) => gathered.set(moeIn.subarray(row * h, (row + 1) * h), i * h));
      const session = sessions.experts[expert];
      if (session === undefined) throw new Error(`no expert ${expert}`);
      const y = take(await session.run({ x: { data: gathered, dims: [rows.length, h] } }), 'y');
      rows.forEach(({ row, weight }, i) => {
        for (let k = 0; k < h; k++) out[row * h + k] = (out[row * h + k] ?? 0) + weight * (y[i * h + k] ?? 0);
      });
    }
    if (sessions.shared !== undefined) {
      const y = take(await sessions.shared.run({ x: { data: moeIn, dims: [numNew, h] } }), 'y');
      const gate = c.sharedExpertGate ? take(attention, 'shared_gate') : undefined;
      for (let t = 0; t < numNew; t++) {
        const g = gate?.[t] ?? 1;
        for (let k = 0; k < h; k++) out[t * h + k] = (out[t * h + k] ?? 0) + g * (y[t * h + k] ?? 0);
      }
    }
    return Float32Array.from(out);
  }

  async release(): Promise<void> {
    const all = this.#layers.flatMap((l) => [l.attention, ...l.experts, ...(l.shared === undefined ? [] : [l.shared])]);
    await Promise.all([...all, this.#lmHead].map((s) => s.release()));
  }
}

function argmaxLastRow(logits: Float32Array, vocabSize: number): number {
  const last = logits.subarray(logits.length - vocabSize);
  let best = 0;
  last.forEach((v, i) => {
    if (v > (last[best] ?? -Infinity)) best = i;
  });
  return best;
}

const VARIANTS: readonly [string, Partial<ModelConfig>][] = [
  ['tiny (softmax, renormalised top-2, grouped KV heads)', {}],
  [
    'DeepSeek-style routing (sigmoid, selection bias, scaling 2.5, ungated shared expert, per-head Q/K norm)',
    { scoring: 'sigmoid', selectionBias: true, routedScalingFactor: 2.5, sharedExpertFfnSize: 32, qkNorm: 'head' },
  ],
  [
    'Qwen2-MoE style (biases, gated shared expert, top-k not renormalised, tied embeddings)',
    {
      attentionBias: true,
      sharedExpertFfnSize: 48,
      sharedExpertGate: true,
      normTopKProb: false,
      tieWordEmbeddings: true,
    },
  ],
  [
    'OLMoE style (MHA, Q/K norm over the projection, top-3 not renormalised)',
    { numKvHeads: 4, qkNorm: 'projection', normTopKProb: false, numExpertsPerToken: 3 },
  ],
];

describe('end-to-end ONNX pipeline vs the reference forward', () => {
  const pipelines: OnnxPipeline[] = [];
  afterAll(async () => {
    await Promise.all(pipelines.map((p) => p.release()));
  });

  it.each(VARIANTS)('%s: a 5-token prompt then 3 greedy decode steps match within 1e-4', async (_name, overrides) => {
    const config = getPreset('tiny', overrides);
    const weights = randomWeights(config, 41);
    const pipeline = await OnnxPipeline.create(config, weights);
    pipelines.push(pipeline);
    const cache = new ReferenceKvCache(config);
    const tokens = [config.bosTokenId, 72, 101, 108, 111];
    let got = await pipeline.forward(tokens);
    let want = referenceForward(config, weights, tokens, cache).logits;
    expect(maxAbsDiff(got, want)).toBeLessThanOrEqual(TOLERANCE);
    for (let step = 0; step < 3; step++) {
      const next = argmaxLastRow(got, config.vocabSize);
      tokens.push(next);
      got = await pipeline.forward([next]);
      want = referenceForward(config, weights, [next], cache).logits;
      expect(maxAbsDiff(got, want)).toBeLessThanOrEqual(TOLERANCE);
    }
    const oneShot = referenceForward(config, weights, tokens).logits;
    expect(maxAbsDiff(got, oneShot.subarray(oneShot.length - config.vocabSize))).toBeLessThanOrEqual(TOLERANCE);
  });
});
