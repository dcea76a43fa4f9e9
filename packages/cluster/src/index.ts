export { NatsConnectError, RemoteGenerationError, TokenStreamTimeoutError } from './errors.ts';
export { ClusterNames, DEFAULT_NAMESPACE, freshNamespace, validateNamespace } from './subjects.ts';
export { redactUrl } from './redact-url.ts';
export {
  probeNats,
  natsAuthFromEnv,
  type ClusterConnectOptions,
  type ClusterTlsOptions,
  type ConnectionState,
  ClusterConnection,
} from './connect.ts';
export { chooseBroker, describeBrokerChoice } from './broker-choice.ts';
export { type RequestMessage } from './request-message.ts';
export { type RequestQueueOptions } from './request-queue-options.ts';
export { RequestQueue } from './request-queue.ts';
export { QueueBacklog } from './queue-backlog.ts';
export { type QueueDelivery } from './queue-delivery.ts';

export { encodeTokenEvent } from './token-message.ts';

export { TokenSubscriber } from './token-subscriber.ts';
export { TokenPublisher } from './token-publisher.ts';
export { type Watch } from './snapshots.ts';
export { type WorkerRecord, type LiveWorkers, WorkerRegistry } from './worker-registry.ts';
export { type PlacementWrite, type StoredPlacement, PlacementStore } from './placement-store.ts';
export { NatsBackend } from './nats-backend.ts';
export { QueueWorker } from './queue-worker.ts';
export {
  DEFAULT_KV_EVENT_STREAM_OPTIONS,
  KvEventPublisher,
  KvEventStream,
  type KvEventFollower,
  type KvEventPublisherOptions,
  type KvEventStreamOptions,
} from './kv-event-stream.ts';
export { decodeKvEventBatch, encodeKvEventBatch } from './kv-event-message.ts';
export { KvView, type KvViewOptions } from './kv-view.ts';
export {
  ANY_MODEL,
  ENGINE_ROLES,
  EngineLoadReporter,
  EngineLoads,
  decodeEngineLoad,
  encodeEngineLoad,
  roleOf,
  takesRequests,
  type EngineLoad,
  type EngineLoadsOptions,
  type EngineRole,
} from './engine-load.ts';
export {
  ExpertLoadExchange,
  decodeExpertLoad,
  encodeExpertLoad,
  type ExpertLoadExchangeOptions,
  type ExpertLoadReport,
} from './expert-load-exchange.ts';
export {
  chooseEngine,
  DEFAULT_ROUTER_WEIGHTS,
  engineCost,
  rendezvous,
  ROUTER_MODES,
  type RouteDecision,
  type RouteInput,
  type RouterMode,
  type RouterWeights,
  type EngineCost,
  type PendingWork,
} from './kv-router.ts';
export { RouteLedger, type RouteLedgerOptions } from './route-ledger.ts';
export { FrontendHeartbeat, FrontendWatch } from './frontend-liveness.ts';
export {
  NATS_ROLES,
  ANY_NAME,
  createNatsUserKey,
  natsPermissions,
  natsServerAuthorization,
  type NatsPermissions,
  type NatsRole,
  type NatsUser,
} from './permissions.ts';
