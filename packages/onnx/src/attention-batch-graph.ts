/**
 * The attention block for a BATCH of B sequences in one session call. The projections, norms, router
 * and shared-expert gate run once over all N new tokens, so the attention weights are read once per
 * step instead of once per sequence (at `olmoe-slice` they are 64 MB: ≈ 3.5–5 ms per read on the
 * development machine). Only the attention core runs per sequence, each over its own past.
 *
 * Inputs:
 * - `x` float32 [N, H]: the new tokens of all sequences, sequence after sequence.
 * - `positions` int64 [N]: their absolute positions within their own sequences.
 * - `row_splits` int64 [B + 1]: sequence b owns rows row_splits[b] … row_splits[b+1]-1
 *   (row_splits[0] = 0, row_splits[B] = N). A slot may be empty (no rows, and P_b = 0 or not).
 * - `past_k_{b}`, `past_v_{b}` float32 [P_b, nKV, D] for b < B: each sequence's cache, token-major
 *   (prefix views of per-sequence buffers, not copied).
 *
 * Outputs (rows in the order of `x`): `h`, `moe_in` [N, H], `router_logits` [N, E], `new_k`, `new_v`
 * [N, nKV, D], and `shared_gate` [N, 1] when the config has a shared-expert gate.
 *
 * The batch size B is fixed when the graph is built; build a few sizes (1, 2, 4, 8, …) and pad with
 * empty slots.
 */
import type { ModelConfig, WeightMap } from '@switchyard/model';
import { attentionEpilogue, attentionPrologue, outputAttentionBlock } from './attention-block.ts';
import { applyRope, causalAttention, futureMask, ropeTables, type AttentionGraphOptions } from './attention-graph.ts';
import { attrInt, GraphBuilder, type Value } from './graph-builder.ts';

export function buildBatchedAttentionGraph(
  config: ModelConfig,
  weights: WeightMap,
  layer: number,
  numSequences: number,
  options: AttentionGraphOptions = {},
): Uint8Array {
  if (!Number.isInteger(numSequences) || numSequences < 1) {
    throw new RangeError(`numSequences must be a positive integer, got ${numSequences}`);
  }
  const { hiddenSize: h, numKvHeads, headDim } = config;
  const format = options.projectionFormat ?? 'fp32';
  const g = new GraphBuilder(`batched_attention_layer_${layer}`);
  const x = g.input('x', 'float', ['N', h]);
  const positions = g.input('positions', 'int64', ['N']);
  const rowSplits = g.input('row_splits', 'int64', [numSequences + 1]);
  const past = Array.from({ length: numSequences }, (_, b) => ({
    k: g.input(`past_k_${b}`, 'float', [`P_${b}`, numKvHeads, headDim]),
    v: g.input(`past_v_${b}`, 'float', [`P_${b}`, numKvHeads, headDim]),
  }));

  const { q, k, v: newV } = attentionPrologue(g, config, weights, layer, x, format);
  const tables = ropeTables(g, positions, config);
  const roped = applyRope(g, q, tables);
  const newK = applyRope(g, k, tables);

  const axis0 = g.constI64([0]);
  // NOTE: one always-masked zero key per sequence keeps T ≥ 1 for an empty slot: onnxruntime's Softmax
  // over a zero-length axis dies with SIGFPE, taking the process with it. It costs nothing: the
  // Concat that appends the new keys copies the past anyway.
  const sentinel = g.constF32(new Float32Array(numKvHeads * headDim), [1, numKvHeads, headDim]);
  const split = (b: number): Value => g.op('Gather', [rowSplits, g.constI64([b])], { axis: attrInt(0) });
  const contexts = past.map((pastKv, b) => {
    const [start, end] = [split(b), split(b + 1)];
    const rows = (value: Value) => g.op('Slice', [value, start, end, axis0]);
    const queries = rows(roped);
    const keys = g.concat([pastKv.k, rows(newK), sentinel], 0);
    const values = g.concat([pastKv.v, rows(newV), sentinel], 0);
    return causalAttention(g, config, queries, keys, values, futureMask(g, queries, pastKv.k, 1));
  });
  const context = contexts.length === 1 && contexts[0] !== undefined ? contexts[0] : g.concat(contexts, 0);
  outputAttentionBlock(g, config, 'N', attentionEpilogue(g, config, weights, layer, x, context, format), newK, newV);
  return g.toModelBytes();
}
