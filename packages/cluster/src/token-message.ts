import {
  MAX_TOP_LOGPROBS,
  type FinishReason,
  type TokenEvent,
  type TokenLogprob,
  type TopLogprob,
  type Usage,
} from '@switchyard/engine';
import { InvalidMessageError, RemoteGenerationError } from './errors.ts';
import {
  asObject,
  parseJsonObject,
  readNumber,
  readOptionalString,
  readString,
  type JsonObject,
} from './json-shape.ts';

/** Wire form of a TokenEvent: JSON, with the error reduced to name, message and code. */
interface TokenWire {
  readonly requestId: string;
  readonly index: number;
  readonly tokenId: number;
  readonly text: string;
  readonly finishReason?: FinishReason;
  readonly usage?: Usage;
  readonly error?: { readonly name: string; readonly message: string; readonly code?: string };
  readonly logprob?: TokenLogprob;
  readonly promptLogprobs?: readonly (TokenLogprob | null)[];
}

const FINISH_REASONS: readonly FinishReason[] = ['stop', 'length', 'abort', 'error'];

export function encodeTokenEvent(event: TokenEvent): Uint8Array {
  const wire: TokenWire = {
    requestId: event.requestId,
    index: event.index,
    tokenId: event.tokenId,
    text: event.text,
    ...(event.finishReason !== undefined ? { finishReason: event.finishReason } : {}),
    ...(event.usage !== undefined ? { usage: event.usage } : {}),
    ...(event.error !== undefined ? { error: errorWire(event.error) } : {}),
    ...(event.logprob !== undefined ? { logprob: event.logprob } : {}),
    ...(event.promptLogprobs !== undefined ? { promptLogprobs: event.promptLogprobs } : {}),
  };
  return new TextEncoder().encode(JSON.stringify(wire));
}

/** Parses a token event; an engine error comes back as a RemoteGenerationError. */
export function decodeTokenEvent(data: Uint8Array | string): TokenEvent {
  const o = parseJsonObject(data, 'the token event');
  const finishReason = readOptionalString(o, 'finishReason');
  if (finishReason !== undefined && !(FINISH_REASONS as readonly string[]).includes(finishReason)) {
    throw new InvalidMessageError(`finishReason must be one of ${FINISH_REASONS.join(', ')}`);
  }
  const usage = o['usage'] === undefined ? undefined : decodeUsage(asObject(o['usage'], 'usage'));
  const error = o['error'] === undefined ? undefined : decodeError(asObject(o['error'], 'error'));
  const index = readNumber(o, 'index', { integer: true, min: 0 });
  const tokenId = readNumber(o, 'tokenId', { integer: true, min: -1 });
  const logprob = o['logprob'] === undefined ? undefined : decodeTokenLogprob(o['logprob'], 'logprob');
  if (logprob !== undefined && logprob.tokenId !== tokenId) {
    throw new InvalidMessageError(`logprob.tokenId must be the event's tokenId ${tokenId}`);
  }
  const promptLogprobs = o['promptLogprobs'] === undefined ? undefined : decodePromptLogprobs(o['promptLogprobs']);
  if (promptLogprobs !== undefined && index !== 0) {
    throw new InvalidMessageError('promptLogprobs may only ride on the event of index 0');
  }
  return Object.freeze({
    requestId: readString(o, 'requestId', { nonEmpty: true }),
    index,
    tokenId,
    text: readString(o, 'text'),
    ...(finishReason !== undefined ? { finishReason: finishReason as FinishReason } : {}),
    ...(usage ? { usage } : {}),
    ...(error ? { error } : {}),
    ...(logprob ? { logprob } : {}),
    ...(promptLogprobs ? { promptLogprobs } : {}),
  });
}

/**
 * A token's logprob exactly as the engine sends it: an integer id ≥ 0, a finite logprob ≤ 0 (a
 * log-probability; JSON has no -Infinity), at most MAX_TOP_LOGPROBS alternatives of the same shape, and
 * no other field.
 */
function decodeTokenLogprob(value: unknown, field: string): TokenLogprob {
  const o = asObject(value, field);
  onlyFields(o, field, ['tokenId', 'logprob', 'top']);
  const top = o['top'];
  if (!Array.isArray(top) || top.length > MAX_TOP_LOGPROBS) {
    throw new InvalidMessageError(`${field}.top must be an array of at most ${MAX_TOP_LOGPROBS} entries`);
  }
  return Object.freeze({
    ...readScore(o, field),
    top: Object.freeze(top.map((t, i) => decodeTopLogprob(t, `${field}.top[${i}]`))),
  });
}

function decodeTopLogprob(value: unknown, field: string): TopLogprob {
  const o = asObject(value, field);
  onlyFields(o, field, ['tokenId', 'logprob']);
  return Object.freeze(readScore(o, field));
}

function readScore(o: JsonObject, field: string): TopLogprob {
  const tokenId = readNumber(o, 'tokenId', { integer: true, min: 0 });
  const logprob = readNumber(o, 'logprob');
  if (logprob > 0) throw new InvalidMessageError(`${field}.logprob must be ≤ 0, got ${logprob}`);
  return { tokenId, logprob };
}

/** One entry per prompt token: the first null (nothing precedes it), every other a token logprob. */
function decodePromptLogprobs(value: unknown): readonly (TokenLogprob | null)[] {
  if (!Array.isArray(value) || value.length === 0 || value[0] !== null) {
    throw new InvalidMessageError('promptLogprobs must be a non-empty array whose first entry is null');
  }
  return Object.freeze(value.map((entry, i) => (i === 0 ? null : decodeTokenLogprob(entry, `promptLogprobs[${i}]`))));
}

function onlyFields(o: JsonObject, field: string, allowed: readonly string[]): void {
  const extra = Object.keys(o).find((key) => !allowed.includes(key));
  if (extra !== undefined) throw new InvalidMessageError(`${field} has an unknown field ${JSON.stringify(extra)}`);
}

function errorWire(error: Error): { name: string; message: string; code?: string } {
  const code = (error as { code?: unknown }).code;
  return { name: error.name, message: error.message, ...(typeof code === 'string' ? { code } : {}) };
}

function decodeError(o: JsonObject): RemoteGenerationError {
  return new RemoteGenerationError(readString(o, 'message'), readString(o, 'name'), readOptionalString(o, 'code'));
}

function decodeUsage(o: JsonObject): Usage {
  return Object.freeze({
    promptTokens: readNumber(o, 'promptTokens', { integer: true, min: 0 }),
    completionTokens: readNumber(o, 'completionTokens', { integer: true, min: 0 }),
    cachedPromptTokens: readNumber(o, 'cachedPromptTokens', { integer: true, min: 0 }),
  });
}
