/**
 * The protobuf messages of `protos/switchyard/v1` as @grpc/proto-loader hands them over with this
 * package's options (camelCase fields, uint64 as number, enums as their names, bytes as Buffer,
 * defaults filled in, oneof members absent unless set). Outgoing messages use the same shapes.
 * Hand-written: change them together with the .proto files.
 */

/** tensor.proto `DType`. */
export type DType =
  'DTYPE_UNSPECIFIED' | 'DTYPE_F32' | 'DTYPE_BF16' | 'DTYPE_F16' | 'DTYPE_I8' | 'DTYPE_I32' | 'DTYPE_I64';

/** tensor.proto `Tensor`: little-endian, row-major, data.length = product(shape) × sizeof(dtype). */
export interface Tensor {
  readonly dtype: DType;
  readonly shape: readonly number[];
  readonly data: Buffer;
}

export interface WireTokenRoutes {
  /** int32 LE, numTokens + 1. */
  readonly offsets: Buffer;
  /** int32 LE, one per pair. */
  readonly expertIds: Buffer;
  /** float32 LE, one per pair. */
  readonly weights: Buffer;
}

export interface WireRunRequest {
  readonly correlationId: number;
  readonly layer: number;
  readonly hidden: Tensor | null;
  readonly routes: WireTokenRoutes | null;
  readonly outputDtype: DType;
  readonly traceparent: string;
  /**
   * Set (by the server's deserializer) on a frame that is not a valid message: why. The frame is
   * answered with INVALID_ARGUMENT under the correlation id read from its first field, if any, and the
   * stream goes on.
   */
  readonly undecodable?: string;
}

export interface WireErrorStatus {
  /** gRPC status code number. */
  readonly code: number;
  readonly message: string;
}

export interface WireRunResponse {
  readonly correlationId: number;
  readonly output?: Tensor | null;
  readonly error?: WireErrorStatus | null;
  /** Which member of the `result` oneof is set (absent when neither is). */
  readonly result?: 'output' | 'error';
  readonly computeTimeUs: number;
}

export interface WireExpertRef {
  readonly layer: number;
  readonly expertId: number;
}

export interface WirePlacementChangeRequest {
  readonly experts: readonly WireExpertRef[];
  readonly placementRevision: number;
}

export interface WirePlacementChangeResponse {
  readonly hosted: readonly WireExpertRef[];
  readonly placementRevision: number;
}

export type WireDescribeRequest = Record<string, never>;

export interface WireExpertTokens {
  readonly layer: number;
  readonly expertId: number;
  readonly tokens: number;
}

export interface WireDescribeResponse {
  readonly workerId: string;
  readonly hosted: readonly WireExpertRef[];
  readonly dtype: DType;
  readonly executionProvider: string;
  readonly modelName: string;
  readonly hiddenSize: number;
  readonly placementRevision: number;
  readonly weightsDigest?: string;
  readonly tokensServed?: readonly WireExpertTokens[];
}

export interface WireFetchPagesRequest {
  readonly blockHashes: readonly string[];
  readonly namespace: string;
}

export interface WireKvPageChunk {
  readonly namespace: string;
  readonly extentIndex: number;
  readonly blockHashes: readonly string[];
  readonly extentSizeBytes: number;
  readonly offsetBytes: number;
  readonly data: Buffer;
}

export interface WirePushPagesResponse {
  readonly acceptedHashes: readonly string[];
}
