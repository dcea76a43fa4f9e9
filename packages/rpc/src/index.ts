/**
 * @switchyard/rpc — the only package that talks gRPC: the switchyard.v1 wire contract as typed
 * clients and servers, the tensor codec, deadlines, error ↔ status mapping and health; and beside
 * KvPageService, the KV bulk data plane (page fetches over plain TCP, kv-bulk-protocol.ts).
 */
export {
  CancelledError,
  ConnectFailedError,
  DataLossError,
  DeadlineExceededError,
  FailedPreconditionError,
  InternalError,
  InvalidArgumentError,
  NotFoundError,
  ResourceExhaustedError,
  TensorFormatError,
  UnavailableError,
  isRpcError,
} from './errors.ts';
export type { RpcError, RpcErrorCode } from './errors.ts';
export type { DType, Tensor } from './wire-types.ts';
export {
  DTYPE_SIZE_BYTES,
  decodeBf16,
  decodeF32,
  decodeFloat,
  encodeBf16,
  encodeF32,
  encodeFloat,
  numElements,
  validateTensor,
} from './tensor-codec.ts';
export type { FloatFormat } from './tensor-codec.ts';
export { roundToBf16 } from './bf16.ts';

export { validateRoutes, validateRunRequest } from './expert-messages.ts';
export type {
  ExpertRef,
  ExpertTokens,
  PlacementChange,
  PlacementState,
  RunReply,
  RunRequest,
  RunResult,
  TokenRoutes,
  WorkerDescription,
} from './expert-messages.ts';

export { createExpertServer } from './expert-server.ts';
export { checkTlsFiles, TlsConfigError, type ClientTls, type ServerTls } from './tls.ts';
export type { ExpertServer, ExpertServerOptions, ExpertServiceHandler } from './expert-server.ts';
export type { RunContext } from './run-stream-session.ts';
export type { CallContext } from './unary-handler.ts';
export type { ServerListenOptions } from './server-host.ts';

export { connectExpertClient } from './expert-client.ts';
export type { ExpertClientOptions, ExpertStreamClient, RunCallOptions, UnaryCallOptions } from './expert-client.ts';

export { OVERALL_SERVICE, checkHealth } from './health.ts';
export type { HealthStatus, ServingStatus } from './health.ts';

export { MAX_CHUNK_BYTES, MIN_EXTENT_BYTES } from './kv-extents.ts';
export type { KvExtent } from './kv-extents.ts';
export type { FetchPagesRequest, FetchedPages, PushPagesRequest, PushPagesResult } from './kv-messages.ts';
export { createKvPageServer } from './kv-server.ts';
export type { KvPageServer, KvPageServerOptions, KvPageServiceHandler } from './kv-server.ts';
export { connectKvPageClient } from './kv-client.ts';
export type { KvCallOptions, KvPageClient, KvPageClientOptions } from './kv-client.ts';

export { DEFAULT_MAX_MESSAGE_BYTES } from './channel-options.ts';
export { EXPERT_SERVICE_NAME, KV_PAGE_SERVICE_NAME } from './protos.ts';

export { createKvBulkServer } from './kv-bulk-server.ts';
export type { KvBulkServer, KvBulkServerOptions } from './kv-bulk-server.ts';
export { createKvBulkClient } from './kv-bulk-client.ts';
export type { KvBulkClient, KvBulkClientOptions } from './kv-bulk-client.ts';
export { MAX_REQUEST_HASHES as MAX_BULK_REQUEST_HASHES } from './kv-bulk-protocol.ts';
