import type { TokenLogprob, Tokenizer } from '@switchyard/engine';

/** One token of a choice's logprobs: its id and score (null for the prompt's first token). */
export interface LogprobEntry {
  readonly tokenId: number;
  readonly score: TokenLogprob | null;
}

/** Completions' `logprobs` object: parallel lists, one entry per token. */
export interface CompletionLogprobs {
  readonly tokens: string[];
  readonly token_logprobs: (number | null)[];
  readonly top_logprobs: (Record<string, number> | null)[];
  readonly text_offset: number[];
}

/**
 * Completions' `logprobs` for `entries`, offsets counted from `startOffset` (the length of the choice's
 * text before them). As vLLM: a token is shown as it decodes on its own, each `text_offset` is where the
 * token starts in the choice's `text` (which holds the prompt with `echo`), and `top_logprobs` holds the
 * top alternatives plus the chosen token when it is not among them (so the chosen token's value can
 * always be read there). Two tokens that read the same keep the first (higher) value.
 */
export function completionLogprobs(
  entries: readonly LogprobEntry[],
  tokenizer: Tokenizer,
  startOffset: number,
): { logprobs: CompletionLogprobs; endOffset: number } {
  const logprobs: CompletionLogprobs = { tokens: [], token_logprobs: [], top_logprobs: [], text_offset: [] };
  let offset = startOffset;
  for (const { tokenId, score } of entries) {
    const token = tokenText(tokenizer, tokenId);
    logprobs.tokens.push(token);
    logprobs.token_logprobs.push(score?.logprob ?? null);
    logprobs.top_logprobs.push(score ? topDict(score, tokenizer) : null);
    logprobs.text_offset.push(offset);
    offset += token.length;
  }
  return { logprobs, endOffset: offset };
}

function topDict(score: TokenLogprob, tokenizer: Tokenizer): Record<string, number> {
  const top = score.top.some((t) => t.tokenId === score.tokenId) ? score.top : [...score.top, score];
  const pairs: [string, number][] = [];
  const seen = new Set<string>();
  for (const t of top) {
    const key = tokenText(tokenizer, t.tokenId);
    if (seen.has(key)) continue;
    seen.add(key);
    pairs.push([key, t.logprob]);
  }
  // NOTE: fromEntries, not assignment: a token that reads "__proto__" must stay an ordinary key.
  return Object.fromEntries(pairs);
}

/** Chat's `logprobs.content` entry for one generated token, with exactly `top.length` alternatives. */
export interface ChatTokenLogprob {
  readonly token: string;
  readonly logprob: number;
  readonly bytes: number[];
  readonly top_logprobs: { token: string; logprob: number; bytes: number[] }[];
}

/** Chat's `logprobs.content` for generated tokens (entries without a score are skipped). */
export function chatLogprobs(entries: readonly LogprobEntry[], tokenizer: Tokenizer): ChatTokenLogprob[] {
  const content: ChatTokenLogprob[] = [];
  for (const { tokenId, score } of entries) {
    if (!score) continue;
    content.push({
      ...chatToken(tokenizer, tokenId, score.logprob),
      top_logprobs: score.top.map((t) => chatToken(tokenizer, t.tokenId, t.logprob)),
    });
  }
  return content;
}

/** `{ token, logprob, bytes }`: the token's own bytes when the tokenizer knows them, else its text's UTF-8. */
function chatToken(tokenizer: Tokenizer, tokenId: number, logprob: number) {
  const token = tokenText(tokenizer, tokenId);
  const raw = tokenizer.tokenBytes?.(tokenId);
  return { token, logprob, bytes: raw ? Array.from(raw) : Array.from(new TextEncoder().encode(token)) };
}

/** A token as it decodes on its own (a byte inside a multi-byte character reads as U+FFFD). */
function tokenText(tokenizer: Tokenizer, tokenId: number): string {
  return tokenizer.decode([tokenId]);
}
