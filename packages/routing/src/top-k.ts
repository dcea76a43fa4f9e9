/**
 * Deterministic top-k selection over one row of choice scores.
 *
 * Order: descending score; equal scores are ordered by ascending expert id, so among equals the lower id
 * is chosen. (PyTorch's `topk` leaves ties unspecified; we pin them so every node and every replay picks
 * the same experts.)
 */

/**
 * Writes the k best experts of scores[rowStart, rowStart + numExperts) into outIds[outStart, outStart + k)
 * and their choice scores into outKeys[0, k), best first. With `bias`, the choice score of expert e is
 * fp32(score[e] + bias[e]) (DeepSeek-V3 `e_score_correction_bias`); the caller still reads the unbiased
 * score as the weight. Allocation-free; O(numExperts · k), which beats a sort for k ≤ 8.
 */
export function selectTopKRow(
  scores: Float32Array,
  rowStart: number,
  numExperts: number,
  bias: Float32Array | undefined,
  k: number,
  outIds: Int32Array,
  outStart: number,
  outKeys: Float32Array,
): void {
  let filled = 0;
  for (let e = 0; e < numExperts; e++) {
    const score = scores[rowStart + e] ?? 0;
    const key = bias === undefined ? score : Math.fround(score + (bias[e] ?? 0));
    // Strictly greater: an equal key arrives later, i.e. with a higher id, and so loses.
    if (filled === k && !(key > (outKeys[k - 1] ?? 0))) continue;
    let j = filled < k ? filled++ : k - 1;
    while (j > 0 && (outKeys[j - 1] ?? 0) < key) {
      outKeys[j] = outKeys[j - 1] ?? 0;
      outIds[outStart + j] = outIds[outStart + j - 1] ?? 0;
      j--;
    }
    outKeys[j] = key;
    outIds[outStart + j] = e;
  }
}
