import type { FinishReason, TokenEvent, Usage } from '@switchyard/engine';
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
  return Object.freeze({
    requestId: readString(o, 'requestId', { nonEmpty: true }),
    index: readNumber(o, 'index', { integer: true, min: 0 }),
    tokenId: readNumber(o, 'tokenId', { integer: true, min: -1 }),
    text: readString(o, 'text'),
    ...(finishReason !== undefined ? { finishReason: finishReason as FinishReason } : {}),
    ...(usage ? { usage } : {}),
    ...(error ? { error } : {}),
  });
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
