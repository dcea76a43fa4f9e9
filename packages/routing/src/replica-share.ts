/**
 * Replicas share the load: which worker computes each (token, expert) pair when an expert has several
 * live replicas. Pure and deterministic, so the same step gives the same split on every call.
 */
import type { TokenRoutes } from './types.ts';

/**
 * Worker of every pair of `routes` (same indexing as `routes.expertIds`): an expert's pairs, in token
 * order, are cut into contiguous chunks whose sizes differ by at most one, one per replica, taken in the
 * order `replicasOf[expert]` lists them (the first replicas take the larger chunks) — or, given a
 * `rotation`, starting at replica `(rotation + expert) mod k` and wrapping. Pairs of an expert with no
 * replica get -1. Contiguous chunks keep neighbouring tokens (often one sequence's prefill) together.
 *
 * Why the rotation: the larger chunks — at decode, often an expert's only pair — would otherwise always go
 * to the same replica, which then computes up to twice its share. A caller that varies `rotation` from
 * step to step (`routesRotation`: a hash of the step's routing, so a given step always splits alike)
 * spreads those pairs evenly over time.
 *
 * NOTE: the split changes only which worker adds which terms of a token's weighted sum, so the output
 * differs from another split by fp32 rounding only (docs/architecture.md §1, the ExpertExecutor seam).
 */
export function shareAmongReplicas(
  routes: TokenRoutes,
  replicasOf: readonly (readonly number[])[],
  rotation?: number,
): Int32Array {
  if (rotation !== undefined && (!Number.isInteger(rotation) || rotation < 0))
    throw new RangeError(`rotation must be an integer ≥ 0, got ${rotation}`);
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
    const k = replicas.length;
    const chunk = Math.floor((j * k) / (numPairsOf[e] ?? 1));
    const start = rotation === undefined || k === 0 ? 0 : (rotation + e) % k;
    workerOfPair[p] = replicas[(chunk + start) % Math.max(k, 1)] ?? -1;
  });
  return workerOfPair;
}

/**
 * A rotation for `shareAmongReplicas` that is a function of the step's routing alone (FNV-1a over the
 * layer and every pair's expert id): the same step splits the same way on every call and every gateway,
 * while successive decode steps, whose routings differ, rotate which replica takes the larger chunks.
 */
export function routesRotation(routes: TokenRoutes, layer: number): number {
  let h = 0x811c9dc5 ^ layer;
  h = Math.imul(h, 0x01000193);
  for (const e of routes.expertIds) {
    h ^= e;
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}
