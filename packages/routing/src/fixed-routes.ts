/**
 * Builders for routes that did not come from a router: tests, replays, forced placements.
 */
import type { TokenRoutes } from './types.ts';

/**
 * Routes where every token has exactly topK pairs: token t's pairs are
 * (expertIds[t·topK + j], weights[t·topK + j]) for j < topK.
 */
export function fixedRoutes(
  numTokens: number,
  expertIds: ArrayLike<number>,
  weights: ArrayLike<number>,
  topK: number,
): TokenRoutes {
  const numPairs = numTokens * topK;
  if (expertIds.length !== numPairs || weights.length !== numPairs) {
    throw new RangeError(
      `fixedRoutes: expected ${numPairs} ids and weights, got ${expertIds.length} and ${weights.length}`,
    );
  }
  const offsets = new Int32Array(numTokens + 1);
  for (let t = 0; t <= numTokens; t++) offsets[t] = t * topK;
  return { numTokens, offsets, expertIds: Int32Array.from(expertIds), weights: Float32Array.from(weights) };
}

/** Routes from per-token lists of [expertId, weight] pairs; tokens may have different pair counts. */
export function routesFromPairs(perToken: readonly (readonly (readonly [number, number])[])[]): TokenRoutes {
  const offsets = new Int32Array(perToken.length + 1);
  perToken.forEach((pairs, t) => (offsets[t + 1] = (offsets[t] ?? 0) + pairs.length));
  const numPairs = offsets[perToken.length] ?? 0;
  const expertIds = new Int32Array(numPairs);
  const weights = new Float32Array(numPairs);
  let p = 0;
  for (const pairs of perToken) {
    for (const [expertId, weight] of pairs) {
      expertIds[p] = expertId;
      weights[p] = weight;
      p++;
    }
  }
  return { numTokens: perToken.length, offsets, expertIds, weights };
}
