/**
 * The attention block of one decoder layer for ONE sequence, with the post-attention RMSNorm, the router
 * and (optionally) the shared-expert gate fused in, so the gateway makes one session call per layer
 * before dispatching to experts.
 *
 * Inputs:
 * - `x` float32 [S, H]: residual stream of the S new tokens.
 * - `positions` int64 [S]: their absolute positions (RoPE).
 * - `past_k`, `past_v` float32 [P, nKV, D]: this sequence's cache, token-major, so a prefix view of a
 *   per-sequence buffer can be passed without copying. P may be 0.
 *
 * Outputs:
 * - `h` [S, H] = x + o_proj(Attn(RMSNorm(x)))
 * - `moe_in` [S, H] = RMSNorm_post(h)
 * - `router_logits` [S, E] = moe_in · W_gᵀ
 * - `new_k`, `new_v` [S, nKV, D]: K after Q/K norm and RoPE, V — exactly what to append to the cache.
 * - `shared_gate` [S, 1] = sigmoid(moe_in · w_sgᵀ), only when `config.sharedExpertGate`.
 *
 * Causality: new token i sits at cache slot P + i and sees slots 0 … P + i.
 *
 * NOTE: the attention core is decomposed (MatMul/Softmax) rather than `com.microsoft.GroupQueryAttention`.
 * GQA matched the reference (≤ 1e-6) with its `present` outputs bound in place to a head-major buffer,
 * but onnxruntime-node 1.30 copies every fetched output into a fresh JS ArrayBuffer, preallocated or
 * not: with a 4096-slot olmoe-slice buffer that is 2 × 32 MB per call and ≈ 200–300 ms, against 5–15 ms
 * for this graph. The price here is Concat + Transposes of the past inside onnxruntime (O(P) copies);
 * `buildBatchedAttentionGraph` amortises the bigger cost, the attention weights, over many sequences.
 */
import type { ModelConfig, WeightMap } from '@switchyard/model';
import { attentionEpilogue, attentionPrologue, outputAttentionBlock } from './attention-block.ts';
import { attrInt, GraphBuilder, type Value } from './graph-builder.ts';
import type { WeightFormat } from './layers.ts';

export interface AttentionGraphOptions {
  /** Format of the q/k/v/o projections (default fp32). The router always stays fp32. */
  readonly projectionFormat?: WeightFormat;
}

export const ATTENTION_INPUTS = ['x', 'positions', 'past_k', 'past_v'] as const;
/** `shared_gate` only exists when the config has a shared-expert gate. */
export const ATTENTION_OUTPUTS = ['h', 'moe_in', 'router_logits', 'new_k', 'new_v', 'shared_gate'] as const;

/** `inv_freq[i] = theta^(-2i/D)` for i < D/2, rounded to fp32 as HF does. */
export function ropeInverseFrequencies(headDim: number, theta: number): Float32Array {
  return Float32Array.from({ length: headDim / 2 }, (_, i) => 1 / Math.pow(theta, (2 * i) / headDim));
}

/** cos/sin tables [S, 1, D] from int64 positions [S], in the rotate_half layout (freqs repeated twice). */
export function ropeTables(g: GraphBuilder, positions: Value, config: ModelConfig): { cos: Value; sin: Value } {
  const pos = g.unsqueeze(g.op('Cast', [positions], { to: attrInt(1) }), [1]);
  const freqs = g.mul(pos, g.constF32(ropeInverseFrequencies(config.headDim, config.ropeTheta)));
  const angles = g.unsqueeze(g.concat([freqs, freqs], -1), [1]);
  return { cos: g.op('Cos', [angles]), sin: g.op('Sin', [angles]) };
}

/** x * cos + rotate_half(x) * sin, where rotate_half([x1, x2]) = [-x2, x1] over the last axis. */
export function applyRope(g: GraphBuilder, x: Value, tables: { cos: Value; sin: Value }): Value {
  const [x1, x2] = g.split(x, -1, 2);
  if (x1 === undefined || x2 === undefined) throw new Error('unreachable: Split without two outputs');
  const rotated = g.concat([g.neg(x2), x1], -1);
  return g.add(g.mul(x, tables.cos), g.mul(rotated, tables.sin));
}

/**
 * Boolean [S, T] mask, true where key slot j is in the future of query i: j > P + i (S = rows of
 * `queries`, T = P + S + `numTrailingKeys`; trailing keys are always in the future, hence masked).
 */
export function futureMask(g: GraphBuilder, queries: Value, pastK: Value, numTrailingKeys = 0): Value {
  const zero = g.scalarI64(0);
  const one = g.scalarI64(1);
  const numPast = g.op('Gather', [g.op('Shape', [pastK]), zero], { axis: attrInt(0) });
  const numNew = g.op('Gather', [g.op('Shape', [queries]), zero], { axis: attrInt(0) });
  const queryIndex = g.op('Range', [zero, numNew, one]);
  const numKeys = g.add(g.add(numPast, numNew), g.scalarI64(numTrailingKeys));
  const keyIndex = g.op('Range', [zero, numKeys, one]);
  const lastVisible = g.unsqueeze(g.add(queryIndex, numPast), [1]);
  return g.op('Greater', [keyIndex, lastVisible]);
}

/**
 * Causal GQA over the whole cache: q [S, nH, D], keys/values [T, nKV, D] → [S, nH * D]. Query heads
 * are grouped per KV head (head h uses KV head ⌊h / G⌋, as HF `repeat_kv`), so each KV head's keys are
 * multiplied once by a [G * S, D] block of queries instead of being repeated G times.
 */
export function causalAttention(
  g: GraphBuilder,
  config: ModelConfig,
  q: Value,
  keys: Value,
  values: Value,
  futureMaskValue: Value,
): Value {
  const { numHeads, numKvHeads, headDim } = config;
  const group = numHeads / numKvHeads;
  const scaledQ = g.mul(q, g.scalarF32(1 / Math.sqrt(headDim)));
  const grouped = g.reshape(g.transpose(g.reshape(scaledQ, [0, numKvHeads, group, headDim]), [1, 2, 0, 3]), [
    numKvHeads,
    -1,
    headDim,
  ]);
  const scores = g.matmul(grouped, g.transpose(keys, [1, 2, 0])); // [nKV, G*S, T]
  const mask = g.op('Tile', [futureMaskValue, g.constI64([group, 1])]); // [G*S, T], rows ordered (g, s)
  const masked = g.op('Where', [mask, g.scalarF32(-Infinity), scores]);
  const probs = g.op('Softmax', [masked], { axis: attrInt(-1) });
  const context = g.matmul(probs, g.transpose(values, [1, 0, 2])); // [nKV, G*S, D]
  const perToken = g.transpose(g.reshape(context, [numKvHeads, group, -1, headDim]), [2, 0, 1, 3]);
  return g.reshape(perToken, [-1, numHeads * headDim]);
}

export function buildAttentionGraph(
  config: ModelConfig,
  weights: WeightMap,
  layer: number,
  options: AttentionGraphOptions = {},
): Uint8Array {
  const { hiddenSize: h, numKvHeads, headDim } = config;
  const format = options.projectionFormat ?? 'fp32';
  const g = new GraphBuilder(`attention_layer_${layer}`);
  const x = g.input('x', 'float', ['S', h]);
  const positions = g.input('positions', 'int64', ['S']);
  const pastK = g.input('past_k', 'float', ['P', numKvHeads, headDim]);
  const pastV = g.input('past_v', 'float', ['P', numKvHeads, headDim]);

  const { q, k, v: newV } = attentionPrologue(g, config, weights, layer, x, format);
  const tables = ropeTables(g, positions, config);
  const newK = applyRope(g, k, tables);
  const keys = g.concat([pastK, newK], 0);
  const values = g.concat([pastV, newV], 0);
  const context = causalAttention(g, config, applyRope(g, q, tables), keys, values, futureMask(g, x, pastK));
  outputAttentionBlock(g, config, 'S', attentionEpilogue(g, config, weights, layer, x, context, format), newK, newV);
  return g.toModelBytes();
}
