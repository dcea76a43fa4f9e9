/**
 * Dispatch plan: a layer's (token, expert) pairs regrouped by expert, the shape an expert executor runs.
 */
import type { DispatchPlan, ExpertRows, TokenRoutes } from './types.ts';

/**
 * Pairs per expert (length numExperts). Also the "tokens per expert" load figure for telemetry,
 * since a token's pairs name distinct experts.
 */
export function countTokensPerExpert(routes: TokenRoutes, numExperts: number): Int32Array {
  const counts = new Int32Array(numExperts);
  for (const e of routes.expertIds) {
    if (e < 0 || e >= numExperts) throw new RangeError(`expert id ${e} outside [0, ${numExperts})`);
    counts[e] = (counts[e] ?? 0) + 1;
  }
  return counts;
}

/**
 * Groups rows by expert with a counting sort: experts ascending by id, rows ascending within an expert
 * (tokens are visited in order), experts with no rows omitted. O(pairs + numExperts).
 *
 * NOTE: every ExpertRows' `rows` and `weights` are views (subarrays) of two shared backing arrays — one
 * allocation per plan rather than two per expert. Copy before mutating.
 */
export function planDispatch(routes: TokenRoutes, numExperts: number): DispatchPlan {
  const counts = countTokensPerExpert(routes, numExperts);
  const starts = new Int32Array(numExperts + 1);
  for (let e = 0; e < numExperts; e++) starts[e + 1] = (starts[e] ?? 0) + (counts[e] ?? 0);
  const cursor = starts.slice(0, numExperts);
  const rows = new Int32Array(routes.expertIds.length);
  const weights = new Float32Array(routes.expertIds.length);
  for (let t = 0; t < routes.numTokens; t++) {
    for (let p = routes.offsets[t] ?? 0; p < (routes.offsets[t + 1] ?? 0); p++) {
      const e = routes.expertIds[p] ?? 0;
      const slot = cursor[e] ?? 0;
      rows[slot] = t;
      weights[slot] = routes.weights[p] ?? 0;
      cursor[e] = slot + 1;
    }
  }
  const experts: ExpertRows[] = [];
  for (let e = 0; e < numExperts; e++) {
    const start = starts[e] ?? 0;
    const end = starts[e + 1] ?? 0;
    if (end > start)
      experts.push({ expertId: e, rows: rows.subarray(start, end), weights: weights.subarray(start, end) });
  }
  return { numTokens: routes.numTokens, experts };
}
