/**
 * The gating network's decision: router logits → per-token (expert, weight) pairs, exactly as the
 * Hugging Face MoE blocks compute it (docs/architecture.md §3):
 *
 * 1. scores = softmax or sigmoid over ALL experts;
 * 2. choose top-k by scores (+ selectionBias when given; the bias only chooses, weights stay unbiased);
 * 3. if normTopKProb, weights /= (sum of chosen weights + 1e-20);
 * 4. weights *= routedScalingFactor;
 * 5. optionally drop pairs over an expert's capacity (see capacity.ts).
 *
 * Each token's pairs are ordered best first (descending choice score, ties → lower expert id).
 */
import { applyCapacity, expertCapacity } from './capacity.ts';
import { scoreRow } from './scoring.ts';
import { selectTopKRow } from './top-k.ts';
import type { RouterConfig, TokenRoutes } from './types.ts';

/** DeepSeek-V3 adds this to the renormalisation denominator; we add it for both scorings. */
const NORM_EPSILON = 1e-20;

/**
 * Routes a batch. `logits` is [numTokens, numExperts] row-major; `selectionBias` (length numExperts) is
 * DeepSeek-V3's `e_score_correction_bias`. Dropless by default: every token then has exactly topK pairs
 * and offsets[t] = t · topK. With `config.capacityFactor`, tokens may have fewer.
 */
export function route(
  logits: Float32Array,
  numTokens: number,
  config: RouterConfig,
  selectionBias?: Float32Array,
): TokenRoutes {
  checkRouteArgs(logits, numTokens, config, selectionBias);
  const { numExperts, topK } = config;
  const scores = new Float32Array(numExperts);
  const keys = new Float32Array(topK);
  const offsets = new Int32Array(numTokens + 1);
  const expertIds = new Int32Array(numTokens * topK);
  const weights = new Float32Array(numTokens * topK);
  for (let t = 0; t < numTokens; t++) {
    const base = t * topK;
    scoreRow(config.scoring, logits, t * numExperts, numExperts, scores, 0);
    selectTopKRow(scores, 0, numExperts, selectionBias, topK, expertIds, base, keys);
    let sum = 0;
    for (let j = 0; j < topK; j++) sum += scores[expertIds[base + j] ?? 0] ?? 0;
    const denominator = config.normTopKProb ? sum + NORM_EPSILON : 1;
    for (let j = 0; j < topK; j++) {
      const w = scores[expertIds[base + j] ?? 0] ?? 0;
      weights[base + j] = (w / denominator) * config.routedScalingFactor;
    }
    offsets[t + 1] = base + topK;
  }
  const routes: TokenRoutes = { numTokens, offsets, expertIds, weights };
  if (config.capacityFactor === undefined) return routes;
  return applyCapacity(routes, numExperts, expertCapacity(config.capacityFactor, numTokens, topK, numExperts));
}

function checkRouteArgs(
  logits: Float32Array,
  numTokens: number,
  config: RouterConfig,
  selectionBias: Float32Array | undefined,
): void {
  const { numExperts, topK } = config;
  if (!Number.isInteger(numTokens) || numTokens < 0)
    throw new RangeError(`numTokens must be an integer ≥ 0, got ${numTokens}`);
  if (!Number.isInteger(numExperts) || numExperts < 1)
    throw new RangeError(`numExperts must be an integer ≥ 1, got ${numExperts}`);
  if (!Number.isInteger(topK) || topK < 1 || topK > numExperts) {
    throw new RangeError(`topK must be an integer in [1, ${numExperts}], got ${topK}`);
  }
  if (logits.length !== numTokens * numExperts) {
    throw new RangeError(`expected ${numTokens}×${numExperts} logits, got ${logits.length}`);
  }
  if (selectionBias !== undefined && selectionBias.length !== numExperts) {
    throw new RangeError(`selectionBias must have ${numExperts} entries, got ${selectionBias.length}`);
  }
}
