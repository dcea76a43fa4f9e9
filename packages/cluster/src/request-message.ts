import type { GenerateRequest, SamplingParams } from '@switchyard/engine';
import type { RouteAttributes } from '@switchyard/telemetry';
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
  /** The frontend's routing decision, for the serving engine's request span. */
  readonly route?: RouteAttributes;
  /** The frontend that reads its tokens (its heartbeats tell engines it is still there). */
  readonly frontendId?: string;
  /** SHA-256 (hex) of the weights the frontend serves: an engine with other weights refuses the request. */
  readonly weightsDigest?: string;
}

export function encodeRequestMessage(message: RequestMessage): Uint8Array {
  const { id, promptIds, params, cacheSalt, model, createdAtMs, operation, route, frontendId, weightsDigest } = message;
  return new TextEncoder().encode(
    JSON.stringify({
      id,
      promptIds,
      params,
      ...(cacheSalt !== undefined ? { cacheSalt } : {}),
      model,
      createdAtMs,
      ...(operation ? { operation } : {}),
      ...(route ? { route } : {}),
      ...(frontendId !== undefined ? { frontendId } : {}),
      ...(weightsDigest !== undefined ? { weightsDigest } : {}),
    }),
  );
}

/** Parses and checks a request message; throws InvalidMessageError naming the first bad field. */
export function decodeRequestMessage(data: Uint8Array | string): RequestMessage {
  const o = parseJsonObject(data, 'the request message');
  const cacheSalt = readOptionalString(o, 'cacheSalt');
  const operation = readOptionalString(o, 'operation');
  const frontendId = readOptionalString(o, 'frontendId');
  const weightsDigest = readOptionalString(o, 'weightsDigest');
  if (weightsDigest !== undefined && !/^[0-9a-f]{64}$/.test(weightsDigest)) {
    throw new InvalidMessageError("the request message's weightsDigest must be 64 lowercase hex digits");
  }
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
    ...(o['route'] !== undefined ? { route: decodeRoute(asObject(o['route'], 'route')) } : {}),
    ...(frontendId !== undefined && frontendId !== '' ? { frontendId } : {}),
    ...(weightsDigest !== undefined ? { weightsDigest } : {}),
  });
}

const ROUTE_TARGETS = ['engine', 'shared', 'rerouted'] as const;

function decodeRoute(r: JsonObject): RouteAttributes {
  const target = readString(r, 'target');
  const known = ROUTE_TARGETS.find((t) => t === target);
  if (known === undefined)
    throw new InvalidMessageError(`route.target must be engine, shared or rerouted, got ${JSON.stringify(target)}`);
  const engineId = readOptionalString(r, 'engineId');
  return Object.freeze({
    mode: readString(r, 'mode', { nonEmpty: true }),
    target: known,
    ...(engineId !== undefined ? { engineId } : {}),
    overlapBlocks: readNumber(r, 'overlapBlocks', { integer: true, min: 0 }),
    promptBlocks: readNumber(r, 'promptBlocks', { integer: true, min: 0 }),
    score: readNumber(r, 'score'),
  });
}

/** Shape check only: the engine's resolveSamplingParams checks ranges where the request is served. */
function decodeSamplingParams(p: JsonObject): SamplingParams {
  const logprobs = p['logprobs'] === undefined ? undefined : readNumber(p, 'logprobs', { integer: true, min: 0 });
  const promptLogprobs =
    p['promptLogprobs'] === undefined ? undefined : readNumber(p, 'promptLogprobs', { integer: true, min: 0 });
  return Object.freeze({
    maxTokens: readNumber(p, 'maxTokens', { integer: true, min: 1 }),
    temperature: readNumber(p, 'temperature', { min: 0 }),
    topK: readNumber(p, 'topK', { integer: true, min: 0 }),
    topP: readNumber(p, 'topP'),
    seed: readNumber(p, 'seed', { integer: true }),
    stop: Object.freeze(readStringArray(p, 'stop')),
    stopAtEos: readBoolean(p, 'stopAtEos'),
    ...(logprobs !== undefined ? { logprobs } : {}),
    ...(promptLogprobs !== undefined ? { promptLogprobs } : {}),
  });
}

/**
 * The request id of a message that failed `decodeRequestMessage`, when it has a usable one (a non-empty
 * string of at most 256 characters), so its sender can be told why; undefined otherwise.
 */
export function requestIdOfInvalid(data: Uint8Array | string): string | undefined {
  try {
    const o: unknown = JSON.parse(typeof data === 'string' ? data : new TextDecoder().decode(data));
    if (typeof o !== 'object' || o === null || !('id' in o)) return undefined;
    const id = o.id;
    return typeof id === 'string' && id.length > 0 && id.length <= 256 ? id : undefined;
  } catch {
    return undefined;
  }
}
