import type { GenerateRequest, SamplingParams } from '@switchyard/engine';
import {
  asObject,
  parseJsonObject,
  readBoolean,
  readIntArray,
  readNumber,
  readOptionalString,
  readString,
  readStringArray,
  type JsonObject,
} from './json-shape.ts';
import { InvalidMessageError } from './errors.ts';

/**
 * A request as it travels through the work queue: the engine's GenerateRequest plus the model it is
 * for and when the frontend accepted it. JSON; ids and prompt token ids only (never tensors).
 */
export interface RequestMessage extends GenerateRequest {
  readonly model: string;
  /** Wall-clock time the frontend accepted the request (ms since the epoch), for queue-age metrics. */
  readonly createdAtMs: number;
  /** The API operation, for the serving engine's request span (`text_completion` when absent). */
  readonly operation?: 'chat' | 'text_completion';
}

export function encodeRequestMessage(message: RequestMessage): Uint8Array {
  const { id, promptIds, params, cacheSalt, model, createdAtMs, operation } = message;
  return new TextEncoder().encode(
    JSON.stringify({
      id,
      promptIds,
      params,
      ...(cacheSalt !== undefined ? { cacheSalt } : {}),
      model,
      createdAtMs,
      ...(operation ? { operation } : {}),
    }),
  );
}

/** Parses and checks a request message; throws InvalidMessageError naming the first bad field. */
export function decodeRequestMessage(data: Uint8Array | string): RequestMessage {
  const o = parseJsonObject(data, 'the request message');
  const cacheSalt = readOptionalString(o, 'cacheSalt');
  const operation = readOptionalString(o, 'operation');
  if (operation !== undefined && operation !== 'chat' && operation !== 'text_completion') {
    throw new InvalidMessageError(
      `the request message's operation must be chat or text_completion, got ${JSON.stringify(operation)}`,
    );
  }
  return Object.freeze({
    id: readString(o, 'id', { nonEmpty: true }),
    promptIds: Object.freeze(readIntArray(o, 'promptIds', 0)),
    params: decodeSamplingParams(asObject(o['params'], 'params')),
    ...(cacheSalt !== undefined ? { cacheSalt } : {}),
    model: readString(o, 'model', { nonEmpty: true }),
    createdAtMs: readNumber(o, 'createdAtMs', { min: 0 }),
    ...(operation !== undefined ? { operation } : {}),
  });
}

/** Shape check only: the engine's resolveSamplingParams checks ranges where the request is served. */
function decodeSamplingParams(p: JsonObject): SamplingParams {
  return Object.freeze({
    maxTokens: readNumber(p, 'maxTokens', { integer: true, min: 1 }),
    temperature: readNumber(p, 'temperature', { min: 0 }),
    topK: readNumber(p, 'topK', { integer: true, min: 0 }),
    topP: readNumber(p, 'topP'),
    seed: readNumber(p, 'seed', { integer: true }),
    stop: Object.freeze(readStringArray(p, 'stop')),
    stopAtEos: readBoolean(p, 'stopAtEos'),
  });
}
