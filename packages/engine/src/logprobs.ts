/**
 * Log-probabilities of tokens, for the OpenAI `logprobs` / `top_logprobs` / `echo` parameters.
 *
 * NOTE: these are *raw* logprobs: the log-softmax of the model's logits as the LM head returns them,
 * before temperature, top-k and top-p. That is vLLM's default (`logprobs_mode = "raw_logprobs"`), and
 * what evaluation tools expect: a prompt token's score and a generated token's score are the same
 * quantity, and they do not depend on how the request samples. So at temperature 0 the sampled token
 * always has the largest logprob, and a sampled token is never `-Infinity` because top-p cut it.
 */

/** Most alternatives reported per token (OpenAI's cap for chat `top_logprobs`). */
export const MAX_TOP_LOGPROBS = 20;

export interface TopLogprob {
  readonly tokenId: number;
  readonly logprob: number;
}

/** One token's logprob and the `top.length` most likely tokens at its position, most likely first. */
export interface TokenLogprob {
  readonly tokenId: number;
  readonly logprob: number;
  /** Sorted by descending logprob; ties go to the lower id (as greedy sampling breaks them). */
  readonly top: readonly TopLogprob[];
}

/**
 * The logprob of `tokenId` under `logits` (log-softmax over the whole vocabulary, in float64) and the
 * `numTop` most likely tokens. One pass for the normaliser and one for the top list (insertion into a
 * list of at most MAX_TOP_LOGPROBS), so O(vocab × numTop) with nothing allocated per vocabulary entry.
 */
export function tokenLogprob(logits: Float32Array, tokenId: number, numTop: number): TokenLogprob {
  const logZ = logSumExp(logits);
  const topIds = topTokenIds(logits, numTop);
  return {
    tokenId,
    logprob: (logits[tokenId] ?? -Infinity) - logZ,
    top: topIds.map((id) => ({ tokenId: id, logprob: (logits[id] ?? -Infinity) - logZ })),
  };
}

/** log Σ exp(logits), shifted by the max so nothing overflows. */
export function logSumExp(logits: Float32Array): number {
  let max = -Infinity;
  for (const v of logits) if (v > max) max = v;
  if (max === -Infinity) return -Infinity;
  let sum = 0;
  for (const v of logits) sum += Math.exp(v - max);
  return max + Math.log(sum);
}

/** Ids of the `k` largest logits, largest first; equal logits: lower id first. */
function topTokenIds(logits: Float32Array, k: number): number[] {
  const ids: number[] = [];
  if (k <= 0) return ids;
  for (let id = 0; id < logits.length; id++) {
    const v = logits[id] ?? -Infinity;
    if (ids.length === k && v <= (logits[ids[k - 1] ?? 0] ?? -Infinity)) continue;
    // Ids arrive in increasing order, so a tie stays behind the earlier (lower) id.
    let at = ids.length;
    while (at > 0 && v > (logits[ids[at - 1] ?? 0] ?? -Infinity)) at--;
    ids.splice(at, 0, id);
    if (ids.length > k) ids.pop();
  }
  return ids;
}
