import { InvalidSamplingError, resolveSamplingParams, type SamplingParams, type Tokenizer } from '@switchyard/engine';
import type { GenerationBackend } from '@switchyard/engine';
import { badRequest, notFound } from './openai-error.ts';
import type { ChatBody, ChatMessage, CompletionBody, SamplingBody } from './schemas.ts';

/** Default completion length when the client sends no max_tokens (vLLM: the rest of the context). */
export const DEFAULT_MAX_TOKENS = 256;

export function checkModel(body: SamplingBody, backend: GenerationBackend): void {
  if (body.model !== backend.modelId) {
    throw notFound(
      `The model \`${body.model}\` does not exist. This server serves \`${backend.modelId}\`.`,
      'model',
      'model_not_found',
    );
  }
}

/**
 * Refuses, before tokenizing it, a text that cannot fit the context whatever its tokens: tokenizing a
 * multi-megabyte prompt would hold the event loop for a tenth of a second or more. Needs the tokenizer's
 * `maxCharsPerToken`; without it the token count decides after tokenizing, as before.
 */
export function checkPromptLength(text: string, backend: GenerationBackend): void {
  const perToken = backend.tokenizer.maxCharsPerToken;
  if (perToken === undefined || text.length <= backend.maxContext * perToken) return;
  const atLeast = Math.ceil(text.length / perToken);
  throw badRequest(
    `This model's maximum context length is ${backend.maxContext} tokens. However, your prompt has at least ${atLeast} tokens (${text.length} characters).`,
    'prompt',
    'context_length_exceeded',
  );
}

/** The 400 for a prompt with more tokens than the context holds. */
export function contextLengthExceeded(maxContext: number, numPromptTokens: number) {
  return badRequest(
    `This model's maximum context length is ${maxContext} tokens. However, your prompt has ${numPromptTokens} tokens.`,
    'prompt',
    'context_length_exceeded',
  );
}

export function checkPromptIds(ids: readonly number[], backend: GenerationBackend): void {
  const bad = ids.find((id) => id >= backend.vocabSize);
  if (bad !== undefined)
    throw badRequest(`token id ${bad} is outside the vocabulary of ${backend.vocabSize}`, 'prompt', 'invalid_token_id');
  if (ids.length === 0) throw badRequest('the prompt is empty', 'prompt');
}

/** What a request asks of its choices besides sampling: how many, echo, logprobs. */
export interface ChoiceOptions {
  /** Choices per prompt. */
  readonly n: number;
  /** Completions' `echo`: the prompt comes back before each choice's text (and in its logprobs). */
  readonly echo: boolean;
  /**
   * `echo` with `max_tokens: 0`: the prompt (and its logprobs) only. NOTE: the engine still generates
   * one token, which is dropped, as vLLM does; it costs nothing more than the prefill's last row.
   */
  readonly echoOnly: boolean;
  /** Alternatives per token when the client asked for logprobs; absent: no logprobs at all. */
  readonly numTopLogprobs?: number;
}

/**
 * The choice options of a completion body (`logprobs` an integer 0–5, `echo`) or a chat body (`logprobs:
 * true` with `top_logprobs` 0–20). `max_tokens: 0` is refused without `echo` (vLLM refuses it: there is
 * nothing to answer), and `top_logprobs` above 0 without `logprobs: true`, naming the parameter.
 */
export function choiceOptionsOf(kind: 'completion' | 'chat', body: CompletionBody | ChatBody): ChoiceOptions {
  const n = body.n ?? 1;
  if (kind === 'chat') {
    const chat = body as ChatBody;
    if (chat.max_tokens === 0) throw badRequest('max_tokens must be at least 1', 'max_tokens', 'invalid_value');
    if ((chat.top_logprobs ?? 0) > 0 && chat.logprobs !== true) {
      throw badRequest('top_logprobs needs logprobs: true', 'top_logprobs', 'invalid_value');
    }
    const numTop = chat.logprobs === true ? (chat.top_logprobs ?? 0) : undefined;
    return { n, echo: false, echoOnly: false, ...(numTop !== undefined ? { numTopLogprobs: numTop } : {}) };
  }
  const completion = body as CompletionBody;
  const echo = completion.echo === true;
  if (completion.max_tokens === 0 && !echo) {
    throw badRequest('max_tokens must be at least 1 (0 is accepted with echo: true)', 'max_tokens', 'invalid_value');
  }
  const numTop = typeof completion.logprobs === 'number' ? completion.logprobs : undefined;
  return {
    n,
    echo,
    echoOnly: echo && completion.max_tokens === 0,
    ...(numTop !== undefined ? { numTopLogprobs: numTop } : {}),
  };
}

/** Resolves sampling parameters and checks that prompt + max_tokens fit the context. */
export function samplingParamsOf(
  body: SamplingBody,
  numPromptTokens: number,
  backend: GenerationBackend,
  choices: ChoiceOptions = { n: 1, echo: false, echoOnly: false },
): SamplingParams {
  const room = backend.maxContext - numPromptTokens;
  if (room < 1) {
    throw badRequest(
      `This model's maximum context length is ${backend.maxContext} tokens. However, your prompt has ${numPromptTokens} tokens.`,
      'prompt',
      'context_length_exceeded',
    );
  }
  const requested = body.max_completion_tokens ?? body.max_tokens;
  if (requested !== undefined && requested > room) {
    throw badRequest(
      `This model's maximum context length is ${backend.maxContext} tokens. However, you requested ${numPromptTokens + requested} tokens ` +
        `(${numPromptTokens} in the prompt, ${requested} for the completion). Please reduce max_tokens.`,
      'max_tokens',
      'context_length_exceeded',
    );
  }
  const stop = body.stop == null ? [] : typeof body.stop === 'string' ? [body.stop] : body.stop;
  const numTop = choices.numTopLogprobs;
  try {
    return resolveSamplingParams({
      maxTokens: choices.echoOnly ? 1 : (requested ?? Math.min(DEFAULT_MAX_TOKENS, room)),
      temperature: body.temperature ?? 1,
      topP: body.top_p ?? 1,
      topK: body.top_k === undefined || body.top_k < 0 ? 0 : body.top_k,
      seed: body.seed ?? randomSeed(),
      stop,
      stopAtEos: body.ignore_eos !== true,
      ...(numTop !== undefined ? { logprobs: numTop } : {}),
      ...(numTop !== undefined && choices.echo ? { promptLogprobs: numTop } : {}),
    });
  } catch (error) {
    if (error instanceof InvalidSamplingError) throw badRequest(error.message, error.field);
    throw error;
  }
}

function randomSeed(): number {
  return Math.floor(Math.random() * 2 ** 31);
}

/**
 * The model's own chat template when its tokenizer has one (imported models); otherwise the template
 * for byte-tokenizer models: one line per turn with the role as a tag, ending with
 * the assistant's tag so the model continues as the assistant.
 */
export function renderChat(messages: readonly ChatMessage[], tokenizer?: Tokenizer): string {
  const text = (c: ChatMessage['content']) => (typeof c === 'string' ? c : c.map((p) => p.text).join(''));
  if (tokenizer?.applyChatTemplate)
    return tokenizer.applyChatTemplate(messages.map((m) => ({ role: m.role, content: text(m.content) })));
  return `${messages.map((m) => `<|${m.role}|>\n${text(m.content)}\n`).join('')}<|assistant|>\n`;
}
