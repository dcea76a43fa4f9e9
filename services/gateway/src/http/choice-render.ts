/**
 * The OpenAI JSON of a request's choices, from their token events: whole choices for a plain answer,
 * one chunk per event for a stream, and the usage. Pure: everything comes in as arguments.
 */
import type { SamplingParams, TokenEvent, Tokenizer } from '@switchyard/engine';
import { chatLogprobs, completionLogprobs, type LogprobEntry } from './logprobs-format.ts';
import type { ChoiceOptions } from './request-params.ts';

export type ApiKind = 'completion' | 'chat';

/** One prompt of a request, with its own sampling parameters (its max_tokens fits its length). */
export interface PromptJob {
  readonly promptIds: readonly number[];
  readonly params: SamplingParams;
  /** The prompt as text, put before each choice's text with `echo`. */
  readonly echoText: string;
}

/** What rendering needs to know of the request. */
export interface RenderContext {
  readonly kind: ApiKind;
  readonly options: ChoiceOptions;
  readonly tokenizer: Tokenizer;
}

/**
 * One choice: a request of its own to the backend. Invariant: `events` are in index order and end with
 * `final` once it is set; `logprobOffset` is the text_offset the next logprob entry starts at.
 */
export interface Choice {
  readonly index: number;
  readonly requestId: string;
  readonly prompt: PromptJob;
  readonly params: SamplingParams;
  readonly events: TokenEvent[];
  final: TokenEvent | undefined;
  logprobOffset: number;
}

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  prompt_tokens_details: { cached_tokens: number };
}

/** The text an event adds to its choice: with `echo`, the prompt comes with the first token. */
function textOf(ctx: RenderContext, choice: Choice, event: TokenEvent): string {
  const echo = ctx.options.echo && event.index === 0 && event.tokenId >= 0 ? choice.prompt.echoText : '';
  return echo + (ctx.options.echoOnly ? '' : event.text);
}

/** The logprob entries an event adds: the prompt's (with `echo`) on the first, then its own token's. */
function entriesOf(ctx: RenderContext, choice: Choice, event: TokenEvent): LogprobEntry[] {
  if (ctx.options.numTopLogprobs === undefined) return [];
  const entries: LogprobEntry[] = [];
  if (ctx.options.echo && event.promptLogprobs) {
    const ids = choice.prompt.promptIds;
    event.promptLogprobs.forEach((score, i) => entries.push({ tokenId: ids[i] ?? -1, score }));
  }
  if (!ctx.options.echoOnly && event.logprob) entries.push({ tokenId: event.tokenId, score: event.logprob });
  return entries;
}

/** OpenAI's finish_reason: null until the end; with `max_tokens: 0` the dropped token ends it as `length`. */
function finishOf(ctx: RenderContext, event: TokenEvent): string | null {
  const reason = event.finishReason;
  if (reason === undefined) return null;
  return ctx.options.echoOnly && (reason === 'stop' || reason === 'length') ? 'length' : reason;
}

/** A finished choice of a plain (not streamed) answer. */
export function choiceBody(ctx: RenderContext, choice: Choice): object {
  const text = choice.events.map((e) => textOf(ctx, choice, e)).join('');
  const entries = choice.events.flatMap((e) => entriesOf(ctx, choice, e));
  const wantsLogprobs = ctx.options.numTopLogprobs !== undefined;
  const finish_reason = choice.final ? finishOf(ctx, choice.final) : null;
  if (ctx.kind === 'chat') {
    return {
      index: choice.index,
      message: { role: 'assistant', content: text },
      logprobs: wantsLogprobs ? { content: chatLogprobs(entries, ctx.tokenizer) } : null,
      finish_reason,
    };
  }
  return {
    index: choice.index,
    text,
    logprobs: wantsLogprobs ? completionLogprobs(entries, ctx.tokenizer, 0).logprobs : null,
    finish_reason,
  };
}

/**
 * The stream chunks' `choices` entries for one event of a choice (none when it adds nothing a chat
 * client would see). Chat opens each choice with a role-only delta. Advances `logprobOffset`.
 */
export function chunkChoices(ctx: RenderContext, choice: Choice, event: TokenEvent, first: boolean): object[] {
  const text = textOf(ctx, choice, event);
  const entries = entriesOf(ctx, choice, event);
  const wantsLogprobs = ctx.options.numTopLogprobs !== undefined;
  const finish_reason = finishOf(ctx, event);
  const { index } = choice;
  if (ctx.kind === 'completion') {
    const formatted = wantsLogprobs ? completionLogprobs(entries, ctx.tokenizer, choice.logprobOffset) : undefined;
    if (formatted) choice.logprobOffset = formatted.endOffset;
    return [{ index, text, logprobs: formatted?.logprobs ?? null, finish_reason }];
  }
  const out: object[] = [];
  if (first) out.push({ index, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null });
  if (text || finish_reason || entries.length > 0) {
    out.push({
      index,
      delta: text ? { content: text } : {},
      logprobs: wantsLogprobs ? { content: chatLogprobs(entries, ctx.tokenizer) } : null,
      finish_reason,
    });
  }
  return out;
}

/**
 * The request's usage: prompt tokens once per prompt (from its first choice, as OpenAI and vLLM count
 * them, and the cached ones likewise), completion tokens summed over every choice (none with
 * `max_tokens: 0`: the dropped token is not the client's).
 */
export function usageOf(ctx: RenderContext, choices: readonly Choice[]): Usage {
  let prompt = 0;
  let completion = 0;
  let cached = 0;
  for (const choice of choices) {
    const u = choice.final?.usage;
    if (!ctx.options.echoOnly) completion += u?.completionTokens ?? 0;
    if (choice.index % ctx.options.n !== 0) continue;
    prompt += u?.promptTokens ?? 0;
    cached += u?.cachedPromptTokens ?? 0;
  }
  return {
    prompt_tokens: prompt,
    completion_tokens: completion,
    total_tokens: prompt + completion,
    prompt_tokens_details: { cached_tokens: cached },
  };
}
