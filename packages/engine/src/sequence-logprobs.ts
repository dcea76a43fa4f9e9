import { tokenLogprob } from './logprobs.ts';
import type { Sequence } from './sequence.ts';
import type { TokenEvent } from './token-event.ts';

/**
 * The logprob fields of a sampled token's event: only what the request asked for, and nothing computed
 * otherwise. The prompt's logprobs ride on the event of index 0 (a replay of the request sends them
 * again with it, and a consumer keeps each index once).
 */
export function logprobsOf(
  seq: Sequence,
  index: number,
  tokenId: number,
  logits: Float32Array,
): Pick<TokenEvent, 'logprob' | 'promptLogprobs'> {
  const numTop = seq.params.logprobs;
  return {
    ...(numTop !== undefined ? { logprob: tokenLogprob(logits, tokenId, numTop) } : {}),
    ...(index === 0 && seq.promptLogprobs ? { promptLogprobs: Object.freeze([...seq.promptLogprobs]) } : {}),
  };
}

/**
 * Scores the prompt tokens that a chunk's rows predict: row r (position start + r) gives the logprob of
 * token start + r + 1 while that token is part of the prompt. Chunks of a sequence run in order, so the
 * scores grow one after another; rows recomputed after a preemption are not scored again.
 */
export function scorePromptRows(seq: Sequence, start: number, count: number, rows: Float32Array): void {
  const scores = seq.promptLogprobs;
  const numTop = seq.params.promptLogprobs;
  if (!scores || numTop === undefined || count === 0) return;
  const vocabSize = rows.length / count;
  for (let r = 0; r < count; r++) {
    const position = start + r + 1;
    if (position >= seq.numPromptTokens) break;
    if (position !== scores.length) continue;
    const tokenId = seq.tokens[position] ?? -1;
    scores.push(tokenLogprob(rows.subarray(r * vocabSize, (r + 1) * vocabSize), tokenId, numTop));
  }
}
