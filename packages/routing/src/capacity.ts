/**
 * The opt-in capacity policy (Switch/GShard style): an expert takes at most `capacity` (token, expert)
 * pairs per call; pairs are admitted in token order and, within a token, in its route order (best
 * first). A pair beyond its expert's capacity is dropped; the token's remaining weights are NOT
 * renormalised, so a dropped pair simply contributes nothing (the residual carries the token on).
 */
import type { TokenRoutes } from './types.ts';

/** ceil(capacityFactor · numTokens · topK / numExperts): the most pairs one expert accepts per call. */
export function expertCapacity(capacityFactor: number, numTokens: number, topK: number, numExperts: number): number {
  if (!(capacityFactor > 0)) throw new RangeError(`capacityFactor must be > 0, got ${capacityFactor}`);
  return Math.ceil((capacityFactor * numTokens * topK) / numExperts);
}

/**
 * Returns routes with the over-capacity pairs dropped (a new object; the input is not changed). When
 * nothing is dropped the input is returned as is.
 */
export function applyCapacity(routes: TokenRoutes, numExperts: number, capacity: number): TokenRoutes {
  const { numTokens, offsets, expertIds, weights } = routes;
  const load = new Int32Array(numExperts);
  const keep = new Uint8Array(expertIds.length);
  let numKept = 0;
  for (let p = 0; p < expertIds.length; p++) {
    const e = expertIds[p] ?? 0;
    if ((load[e] ?? 0) < capacity) {
      load[e] = (load[e] ?? 0) + 1;
      keep[p] = 1;
      numKept++;
    }
  }
  if (numKept === expertIds.length) return routes;

  const outOffsets = new Int32Array(numTokens + 1);
  const outIds = new Int32Array(numKept);
  const outWeights = new Float32Array(numKept);
  let q = 0;
  for (let t = 0; t < numTokens; t++) {
    for (let p = offsets[t] ?? 0; p < (offsets[t + 1] ?? 0); p++) {
      if (keep[p] === 0) continue;
      outIds[q] = expertIds[p] ?? 0;
      outWeights[q] = weights[p] ?? 0;
      q++;
    }
    outOffsets[t + 1] = q;
  }
  return { numTokens, offsets: outOffsets, expertIds: outIds, weights: outWeights };
}
