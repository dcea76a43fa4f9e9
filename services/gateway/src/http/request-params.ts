import { InvalidSamplingError, resolveSamplingParams, type SamplingParams, type Tokenizer } from '@switchyard/engine';
import type { GenerationBackend } from '@switchyard/engine';
import { badRequest, notFound } from './openai-error.ts';
import type { ChatMessage, SamplingBody } from './schemas.ts';

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

/** Resolves sampling parameters and checks that prompt + max_tokens fit the context. */
export function samplingParamsOf(
  body: SamplingBody,
  numPromptTokens: number,
  backend: GenerationBackend,
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
  try {
    return resolveSamplingParams({
      maxTokens: requested ?? Math.min(DEFAULT_MAX_TOKENS, room),
      temperature: body.temperature ?? 1,
      topP: body.top_p ?? 1,
      topK: body.top_k === undefined || body.top_k < 0 ? 0 : body.top_k,
      seed: body.seed ?? randomSeed(),
      stop,
      stopAtEos: body.ignore_eos !== true,
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
