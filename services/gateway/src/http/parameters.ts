/**
 * Request parameters this server does not implement are refused by name (400), never silently ignored:
 * a client asking for `best_of`, `tools` or a penalty would otherwise take a plain answer for what it
 * asked. A parameter at its "off" value (`best_of: 1`, `presence_penalty: 0`, …) is accepted, as SDKs
 * send those; an argument OpenAI's API does not know at all is refused like OpenAI does. What one API
 * implements (schemas.ts) is checked there: `n`, completions' `logprobs` and `echo`, chat's `logprobs`
 * and `top_logprobs`; the other API's parameter of the same name is refused here unless off (`echo` in
 * chat, `top_logprobs` in completions).
 */
import { badRequest } from './openai-error.ts';
import { chatSchema, completionSchema } from './schemas.ts';

/** OpenAI parameters we do not implement, and when a value asks for what they do. */
const NOT_IMPLEMENTED: Readonly<Record<string, (value: unknown) => boolean>> = {
  best_of: (v) => v !== null && v !== 1,
  top_logprobs: (v) => v !== null && v !== 0,
  echo: (v) => v !== null && v !== false,
  suffix: (v) => v !== null && v !== '',
  logit_bias: (v) => v !== null && !(typeof v === 'object' && Object.keys(v as object).length === 0),
  presence_penalty: (v) => v !== null && v !== 0,
  frequency_penalty: (v) => v !== null && v !== 0,
  repetition_penalty: (v) => v !== null && v !== 1,
  min_tokens: (v) => v !== null && v !== 0,
  tools: (v) => v !== null && !(Array.isArray(v) && v.length === 0),
  functions: (v) => v !== null && !(Array.isArray(v) && v.length === 0),
  tool_choice: (v) => v !== null && v !== 'none',
  function_call: (v) => v !== null && v !== 'none',
  response_format: (v) => v !== null && !(typeof v === 'object' && (v as { type?: unknown }).type === 'text'),
  reasoning_effort: (v) => v !== null,
  modalities: (v) => v !== null && !(Array.isArray(v) && v.every((m) => m === 'text')),
  audio: (v) => v !== null,
  prediction: (v) => v !== null,
  web_search_options: (v) => v !== null,
};

/** Accepted and without effect here (bookkeeping fields clients send). */
const IGNORED = new Set(['user', 'metadata', 'store', 'service_tier', 'parallel_tool_calls']);

const IMPLEMENTED = {
  completion: new Set(Object.keys(completionSchema.properties)),
  chat: new Set(Object.keys(chatSchema.properties)),
};

/** Throws a 400 naming the first parameter this server does not implement, or does not know. */
export function checkParameters(body: object, kind: 'completion' | 'chat'): void {
  for (const [name, value] of Object.entries(body)) {
    if (IMPLEMENTED[kind].has(name)) continue;
    const asks = NOT_IMPLEMENTED[name];
    if (asks !== undefined) {
      if (asks(value)) {
        throw badRequest(
          `${name} is not supported by this server (got ${JSON.stringify(value)?.slice(0, 100)}); leave it out or send its default`,
          name,
          'unsupported_parameter',
        );
      }
      continue;
    }
    if (IGNORED.has(name)) continue;
    throw badRequest(`Unrecognized request argument supplied: ${name.slice(0, 100)}`, name, 'unknown_parameter');
  }
}
