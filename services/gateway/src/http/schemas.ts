/**
 * JSON schemas of the OpenAI request bodies we accept (validated by Fastify's ajv, with type coercion
 * off: a value is taken as what it is, never converted). Fields beyond these are checked by name in
 * parameters.ts: unimplemented or unknown ones are a 400. Every string has a length limit.
 */

/** Longest stop string, in characters. */
export const MAX_STOP_CHARS = 1024;

/** Most choices per prompt (`n`). */
export const MAX_N = 16;

/** Most alternatives per token: completions' `logprobs` (OpenAI's cap) and chat's `top_logprobs`. */
export const MAX_COMPLETION_LOGPROBS = 5;
export const MAX_CHAT_TOP_LOGPROBS = 20;

const samplingProperties = {
  model: { type: 'string', minLength: 1, maxLength: 256 },
  // 0 only with `echo` (a prompt scored, nothing generated); request-params.ts refuses it otherwise.
  max_tokens: { type: 'integer', minimum: 0 },
  max_completion_tokens: { type: 'integer', minimum: 1 },
  temperature: { type: 'number', minimum: 0, maximum: 2 },
  top_p: { type: 'number', exclusiveMinimum: 0, maximum: 1 },
  top_k: { type: 'integer', minimum: -1 },
  seed: { type: 'integer' },
  stop: {
    anyOf: [
      { type: 'string', maxLength: MAX_STOP_CHARS },
      { type: 'array', items: { type: 'string', maxLength: MAX_STOP_CHARS }, maxItems: 4 },
      { type: 'null' },
    ],
  },
  stream: { type: 'boolean' },
  stream_options: {
    anyOf: [{ type: 'object', properties: { include_usage: { type: 'boolean' } } }, { type: 'null' }],
  },
  ignore_eos: { type: 'boolean' },
  user: { type: 'string', maxLength: 256 },
  n: { type: ['integer', 'null'], minimum: 1, maximum: MAX_N },
} as const;

const tokenIds = { type: 'array', items: { type: 'integer', minimum: 0 }, minItems: 1 } as const;

export const completionSchema = {
  type: 'object',
  required: ['model', 'prompt'],
  properties: {
    ...samplingProperties,
    // An integer asks for that many alternatives per token; null and false are "off".
    logprobs: {
      anyOf: [{ type: 'integer', minimum: 0, maximum: MAX_COMPLETION_LOGPROBS }, { type: 'null' }, { const: false }],
    },
    echo: { type: ['boolean', 'null'] },
    // A string, a list of strings, a list of token ids, or a list of token-id lists (the lists are
    // batches: one prompt each).
    prompt: {
      anyOf: [
        { type: 'string' },
        tokenIds,
        { type: 'array', items: { type: 'string' }, minItems: 1 },
        { type: 'array', items: tokenIds, minItems: 1 },
      ],
    },
  },
} as const;

export const chatSchema = {
  type: 'object',
  required: ['model', 'messages'],
  properties: {
    ...samplingProperties,
    logprobs: { type: ['boolean', 'null'] },
    top_logprobs: { type: ['integer', 'null'], minimum: 0, maximum: MAX_CHAT_TOP_LOGPROBS },
    messages: {
      type: 'array',
      minItems: 1,
      items: {
        type: 'object',
        required: ['role', 'content'],
        properties: {
          role: { type: 'string', enum: ['system', 'developer', 'user', 'assistant'] },
          content: {
            anyOf: [
              { type: 'string' },
              {
                type: 'array',
                items: {
                  type: 'object',
                  required: ['type', 'text'],
                  properties: { type: { const: 'text' }, text: { type: 'string' } },
                },
              },
            ],
          },
        },
      },
    },
  },
} as const;

export interface SamplingBody {
  readonly model: string;
  readonly max_tokens?: number;
  readonly max_completion_tokens?: number;
  readonly temperature?: number;
  readonly top_p?: number;
  readonly top_k?: number;
  readonly seed?: number;
  readonly stop?: string | string[] | null;
  readonly stream?: boolean;
  readonly stream_options?: { readonly include_usage?: boolean } | null;
  readonly ignore_eos?: boolean;
  readonly n?: number | null;
}

export interface CompletionBody extends SamplingBody {
  readonly prompt: string | number[] | string[] | number[][];
  readonly logprobs?: number | null | false;
  readonly echo?: boolean | null;
}

export interface ChatMessage {
  readonly role: 'system' | 'developer' | 'user' | 'assistant';
  readonly content: string | readonly { readonly type: 'text'; readonly text: string }[];
}

export interface ChatBody extends SamplingBody {
  readonly messages: readonly ChatMessage[];
  readonly logprobs?: boolean | null;
  readonly top_logprobs?: number | null;
}
