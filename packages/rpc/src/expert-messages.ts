/**
 * Plain TypeScript shapes of the ExpertService calls and their conversion to and from the wire.
 * Everything received is validated here, before any handler or caller sees it.
 */
import { InvalidArgumentError } from './errors.ts';
import { decodeFloat, encodeFloat, validateTensor } from './tensor-codec.ts';
import type { FloatFormat } from './tensor-codec.ts';
import { bytesOf, float32View, int32View } from './typed-views.ts';
import type {
  DType,
  WireDescribeResponse,
  WireExpertRef,
  WirePlacementChangeRequest,
  WirePlacementChangeResponse,
  WireRunRequest,
} from './wire-types.ts';

/**
 * Per-token (expert id, gate weight) pairs, CSR: token t's pairs are [offsets[t], offsets[t+1]).
 * Structurally the same as `TokenRoutes` of @switchyard/routing, so either can be passed.
 */
export interface TokenRoutes {
  readonly numTokens: number;
  readonly offsets: Int32Array;
  readonly expertIds: Int32Array;
  readonly weights: Float32Array;
}

/** One Run message: the tokens routed to one worker for one layer, each token once. */
export interface RunRequest {
  readonly layer: number;
  readonly hiddenSize: number;
  /** [routes.numTokens, hiddenSize], row-major. */
  readonly hidden: Float32Array;
  readonly routes: TokenRoutes;
  /** W3C trace context of the caller's span, when tracing. */
  readonly traceparent?: string;
}

/** What a worker computes for a RunRequest. */
export interface RunResult {
  /** [numTokens, hiddenSize]: row t = Σ over token t's pairs of weight × expert(hidden[t]). */
  readonly output: Float32Array;
}

/** What the client gets back: the result plus the worker's own compute time. */
export interface RunReply extends RunResult {
  readonly computeTimeUs: number;
}

export interface ExpertRef {
  readonly layer: number;
  readonly expertId: number;
}

export interface PlacementChange {
  readonly experts: readonly ExpertRef[];
  readonly placementRevision: number;
}

export interface PlacementState {
  /** Sorted by (layer, expertId). */
  readonly hosted: readonly ExpertRef[];
  readonly placementRevision: number;
}

/** (token, expert) pairs a worker has computed for one expert since it started. */
export interface ExpertTokens {
  readonly layer: number;
  readonly expertId: number;
  readonly tokens: number;
}

export interface WorkerDescription {
  readonly workerId: string;
  readonly hosted: readonly ExpertRef[];
  /** Element type of the expert weights. */
  readonly dtype: DType;
  readonly executionProvider: string;
  readonly modelName: string;
  readonly hiddenSize: number;
  readonly placementRevision: number;
  /** SHA-256 (hex) of the model's weights; '' when the worker does not know it. */
  readonly weightsDigest: string;
  /** The worker's own load counter, sorted by (layer, expertId); experts that computed nothing omitted. */
  readonly tokensServed: readonly ExpertTokens[];
}

/** Throws InvalidArgumentError unless the CSR arrays are consistent with each other. */
export function validateRoutes(routes: TokenRoutes): void {
  const { numTokens, offsets, expertIds, weights } = routes;
  if (!Number.isSafeInteger(numTokens) || numTokens < 0) {
    throw new InvalidArgumentError(`routes.numTokens ${numTokens} is not a count`);
  }
  if (offsets.length !== numTokens + 1) {
    throw new InvalidArgumentError(`routes.offsets has ${offsets.length} entries, expected ${numTokens + 1}`);
  }
  if (offsets[0] !== 0) throw new InvalidArgumentError('routes.offsets[0] must be 0');
  for (let t = 0; t < numTokens; t++) {
    if ((offsets[t + 1] ?? 0) < (offsets[t] ?? 0)) {
      throw new InvalidArgumentError(`routes.offsets decreases at token ${t}`);
    }
  }
  const numPairs = offsets[numTokens] ?? 0;
  if (expertIds.length !== numPairs || weights.length !== numPairs) {
    throw new InvalidArgumentError(
      `routes have ${numPairs} pairs by offsets but ${expertIds.length} expert ids and ${weights.length} weights`,
    );
  }
  for (const expertId of expertIds) {
    if (expertId < 0) throw new InvalidArgumentError(`routes name a negative expert id ${expertId}`);
  }
}

/** Throws InvalidArgumentError unless the request's arrays agree with each other. */
export function validateRunRequest(request: RunRequest): void {
  const { layer, hiddenSize, hidden, routes } = request;
  if (!Number.isSafeInteger(layer) || layer < 0) throw new InvalidArgumentError(`layer ${layer} is not an index`);
  if (!Number.isSafeInteger(hiddenSize) || hiddenSize <= 0) {
    throw new InvalidArgumentError(`hiddenSize ${hiddenSize} is not a positive size`);
  }
  validateRoutes(routes);
  if (hidden.length !== routes.numTokens * hiddenSize) {
    throw new InvalidArgumentError(
      `hidden has ${hidden.length} values, expected ${routes.numTokens} tokens × ${hiddenSize}`,
    );
  }
}

/**
 * The wire message for a request. Hidden (in f32) and the routes are views, not copies: the caller
 * must not mutate them until the call settles.
 */
export function encodeRunRequest(correlationId: number, request: RunRequest, format: FloatFormat): WireRunRequest {
  return {
    correlationId,
    layer: request.layer,
    hidden: encodeFloat(request.hidden, [request.routes.numTokens, request.hiddenSize], format),
    routes: {
      offsets: bytesOf(request.routes.offsets),
      expertIds: bytesOf(request.routes.expertIds),
      weights: bytesOf(request.routes.weights),
    },
    outputDtype: format === 'bf16' ? 'DTYPE_BF16' : 'DTYPE_F32',
    traceparent: request.traceparent ?? '',
  };
}

/** A received request, validated, as plain arrays (views into the message where aligned). */
export function decodeRunRequest(message: WireRunRequest): RunRequest {
  if (message.undecodable !== undefined) {
    throw new InvalidArgumentError(`the Run frame is not a valid message: ${message.undecodable}`);
  }
  if (message.hidden === null) throw new InvalidArgumentError('request has no hidden tensor');
  if (message.routes === null) throw new InvalidArgumentError('request has no routes');
  validateTensor(message.hidden);
  const [numTokens, hiddenSize, ...rest] = message.hidden.shape;
  if (numTokens === undefined || hiddenSize === undefined || rest.length > 0) {
    throw new InvalidArgumentError(`hidden must be [numTokens, hiddenSize], got [${message.hidden.shape.join(', ')}]`);
  }
  const routes: TokenRoutes = {
    numTokens,
    offsets: int32View(message.routes.offsets, 'routes.offsets'),
    expertIds: int32View(message.routes.expertIds, 'routes.expertIds'),
    weights: float32View(message.routes.weights, 'routes.weights'),
  };
  const request = {
    layer: message.layer,
    hiddenSize,
    hidden: decodeFloat(message.hidden),
    routes,
    ...(message.traceparent === '' ? {} : { traceparent: message.traceparent }),
  };
  validateRunRequest(request);
  return request;
}

/** The float format a request asks its output in. */
export function outputFormatOf(message: WireRunRequest): FloatFormat {
  switch (message.outputDtype) {
    case 'DTYPE_UNSPECIFIED':
    case 'DTYPE_F32':
      return 'f32';
    case 'DTYPE_BF16':
      return 'bf16';
    default:
      throw new InvalidArgumentError(`output dtype ${message.outputDtype} is not F32 or BF16`);
  }
}

export function toExpertRefs(refs: readonly WireExpertRef[]): ExpertRef[] {
  return refs.map(({ layer, expertId }) => ({ layer, expertId }));
}

export function toPlacementChange(message: WirePlacementChangeRequest): PlacementChange {
  return { experts: toExpertRefs(message.experts), placementRevision: message.placementRevision };
}

export function toPlacementState(message: WirePlacementChangeResponse): PlacementState {
  return { hosted: toExpertRefs(message.hosted), placementRevision: message.placementRevision };
}

export function toWorkerDescription(message: WireDescribeResponse): WorkerDescription {
  return {
    workerId: message.workerId,
    hosted: toExpertRefs(message.hosted),
    dtype: message.dtype,
    executionProvider: message.executionProvider,
    modelName: message.modelName,
    hiddenSize: message.hiddenSize,
    placementRevision: message.placementRevision,
    weightsDigest: message.weightsDigest ?? '',
    tokensServed: (message.tokensServed ?? []).map(({ layer, expertId, tokens }) => ({ layer, expertId, tokens })),
  };
}
