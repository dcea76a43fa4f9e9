/**
 * Replicas share the load: which worker computes each (token, expert) pair when an expert has several
 * live replicas. Pure and deterministic, so the same step gives the same split on every call.
 */
import type { TokenRoutes } from './types.ts';

/**
 * Worker of every pair of `routes` (same indexing as `routes.expertIds`): an expert's pairs, in token
 * order, are cut into contiguous chunks, one per replica in the order `replicasOf[expert]` lists them,
 * whose sizes differ by at most one (the first replicas take the larger chunks). Pairs of an expert with
 * no replica get -1. Contiguous chunks keep neighbouring tokens (often one sequence's prefill) together.
 *
 * NOTE: the split changes only which worker adds which terms of a token's weighted sum, so the output
 * differs from another split by fp32 rounding only (docs/architecture.md §1, the ExpertExecutor seam).
 */
export function shareAmongReplicas(routes: TokenRoutes, replicasOf: readonly (readonly number[])[]): Int32Array {
  const numExperts = replicasOf.length;
  const numPairsOf = new Int32Array(numExperts);
  for (const e of routes.expertIds) {
    if (e < 0 || e >= numExperts) throw new RangeError(`expert id ${e} outside [0, ${numExperts})`);
    numPairsOf[e] = (numPairsOf[e] ?? 0) + 1;
  }
  const seen = new Int32Array(numExperts);
  const workerOfPair = new Int32Array(routes.expertIds.length);
  // Pairs are stored token by token, so visiting them in storage order is visiting them in token order.
  routes.expertIds.forEach((e, p) => {
    const replicas = replicasOf[e] ?? [];
    const j = seen[e] ?? 0;
    seen[e] = j + 1;
    // Chunk of the j-th pair of n among k replicas: floor(j · k / n), contiguous and balanced.
    const chunk = Math.floor((j * replicas.length) / (numPairsOf[e] ?? 1));
    workerOfPair[p] = replicas[chunk] ?? -1;
  });
  return workerOfPair;
}
