/**
 * Reference gating for one token (docs/architecture.md §3), implemented here directly so the reference does not
 * depend on `packages/routing`: scores = softmax or sigmoid over all experts; the optional selection
 * bias is added only to choose; top-k with the lower expert id winning ties; weights are the chosen
 * scores, renormalised to sum 1 when `normTopKProb`, then multiplied by `routedScalingFactor`.
 */
import type { ModelConfig } from '../types.ts';
import { sigmoid, softmax } from './ops.ts';

export interface ReferenceRouting {
  /** Chosen expert ids, best first. */
  readonly experts: readonly number[];
  /** Their routing weights, in the same order. */
  readonly weights: readonly number[];
}

export function referenceRoute(
  config: ModelConfig,
  logits: Float32Array,
  selectionBias?: Float32Array,
): ReferenceRouting {
  const scores = config.scoring === 'softmax' ? softmax(logits) : Array.from(logits, sigmoid);
  const choice = scores.map((s, e) => s + (selectionBias?.[e] ?? 0));
  const ranked = choice
    .map((value, expert) => ({ value, expert }))
    .sort((a, b) => b.value - a.value || a.expert - b.expert);
  const experts = ranked.slice(0, config.numExpertsPerToken).map((r) => r.expert);
  let weights = experts.map((e) => scores[e] ?? 0);
  if (config.normTopKProb) {
    const sum = weights.reduce((a, b) => a + b, 0);
    weights = weights.map((w) => w / sum);
  }
  return { experts, weights: weights.map((w) => w * config.routedScalingFactor) };
}
