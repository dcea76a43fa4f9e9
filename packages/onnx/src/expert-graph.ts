/**
 * SwiGLU expert graphs: `y = down(silu(gate(x)) * up(x))`, no biases. The gate and up projections are
 * fused into one [H, 2F] multiply (one weight read, one kernel call), then split.
 *
 * Graph contract (`buildExpertGraph`): input `x` float32 [N, H] → output `y` float32 [N, H].
 */
import type { F32Tensor, ModelConfig, WeightMap } from '@switchyard/model';
import { GraphBuilder, type Value } from './graph-builder.ts';
import { linear, type LinearOptions } from './layers.ts';
import { tensorNames, type ExpertProjection } from '@switchyard/model';
import { concatRows, requireWeight } from '@switchyard/model';

export interface SwiGluWeights {
  /** [F, H] */
  readonly gate: F32Tensor;
  /** [F, H] */
  readonly up: F32Tensor;
  /** [H, F] */
  readonly down: F32Tensor;
}

/** Which expert of a layer: a routed expert id, or the (fused) shared expert. */
export type ExpertRef = number | 'shared';

/** Weight format (default fp32) and, for `int8`, the MatMulNBits accuracy level. */
export type ExpertGraphOptions = Omit<LinearOptions, 'bias'>;

/** The canonical name of one projection of an expert. */
export function expertTensorName(layer: number, expert: ExpertRef, proj: ExpertProjection): string {
  return expert === 'shared' ? tensorNames.sharedExpert(layer, proj) : tensorNames.expert(layer, expert, proj);
}

/** Looks up (and shape-checks) one expert's three projections. */
export function expertWeights(
  config: ModelConfig,
  weights: WeightMap,
  layer: number,
  expert: ExpertRef,
): SwiGluWeights {
  const ffn = expert === 'shared' ? config.sharedExpertFfnSize : config.expertFfnSize;
  const h = config.hiddenSize;
  const get = (proj: ExpertProjection, shape: readonly number[]) =>
    requireWeight(weights, expertTensorName(layer, expert, proj), shape);
  return { gate: get('gate_proj', [ffn, h]), up: get('up_proj', [ffn, h]), down: get('down_proj', [h, ffn]) };
}

/** Adds one SwiGLU to a graph: x [N, H] → [N, H]. */
export function swiGlu(g: GraphBuilder, x: Value, w: SwiGluWeights, name: string, options: ExpertGraphOptions): Value {
  const gateUp = linear(g, x, concatRows([w.gate, w.up]), `${name}.gate_up_proj`, options);
  const [gate, up] = g.split(gateUp, -1, 2);
  if (gate === undefined || up === undefined) throw new Error('unreachable: Split without two outputs');
  const silu = g.mul(gate, g.sigmoid(gate));
  return linear(g, g.mul(silu, up), w.down, `${name}.down_proj`, options);
}

/** A standalone SwiGLU graph over explicit weights (`x` [N, H] → `y` [N, H]). */
export function buildSwiGluGraph(w: SwiGluWeights, options: ExpertGraphOptions = {}): Uint8Array {
  const h = w.down.shape[0] ?? 0;
  const g = new GraphBuilder('swiglu');
  const x = g.input('x', 'float', ['N', h]);
  g.output(swiGlu(g, x, w, 'expert', options), 'y', 'float', ['N', h]);
  return g.toModelBytes();
}

/** One expert (routed or shared) of `layer` as a graph: `x` [N, H] → `y` [N, H]. */
export function buildExpertGraph(
  config: ModelConfig,
  weights: WeightMap,
  layer: number,
  expert: ExpertRef,
  options: ExpertGraphOptions = {},
): Uint8Array {
  return buildSwiGluGraph(expertWeights(config, weights, layer, expert), options);
}

/**
 * Several experts of one layer in one graph: inputs `x_0 … x_{k-1}` [N_i, H] (N_i may be 0) → outputs
 * `y_0 … y_{k-1}` [N_i, H], where index i is the position of the expert in `experts`. One session run
 * replaces k of them.
 */
export function buildExpertGroupGraph(
  config: ModelConfig,
  weights: WeightMap,
  layer: number,
  experts: readonly ExpertRef[],
  options: ExpertGraphOptions = {},
): Uint8Array {
  const h = config.hiddenSize;
  const g = new GraphBuilder('expert_group');
  experts.forEach((expert, i) => {
    const x = g.input(`x_${i}`, 'float', [`N_${i}`, h]);
    const w = expertWeights(config, weights, layer, expert);
    g.output(swiGlu(g, x, w, `expert_${i}`, options), `y_${i}`, 'float', [`N_${i}`, h]);
  });
  return g.toModelBytes();
}
