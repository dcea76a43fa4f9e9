import { ClusterConfigError } from './errors.ts';

/** Work-queue settings, resolved once (defaults filled, ranges checked) and frozen. */
export interface RequestQueueOptions {
  /** How long the broker waits for an ack or a `working()` before it redelivers to another engine. */
  readonly ackWaitMs: number;
  /** How often an engine tells the broker it is still working on a request (default ackWaitMs / 3). */
  readonly heartbeatIntervalMs: number;
  /** Deliveries of one request before the broker gives up on it (each nak counts). */
  readonly maxDeliver: number;
  /** Unacknowledged requests across all engines of a model, the broker-side bound on work in flight. */
  readonly maxAckPending: number;
  /** A request id published twice within this window is stored once. */
  readonly duplicateWindowMs: number;
  /** A request nobody served within this age is dropped by the broker. */
  readonly maxAgeMs: number;
  /** Requests the stream holds at most; publishing beyond fails (the frontend answers 503). */
  readonly maxQueuedRequests: number;
  /** How long one pull waits at the broker for work (nats.js minimum 1 s); bounds how long a drain waits. */
  readonly pullExpiresMs: number;
  /** Requests asked for in one pull, at most (fewer when the engine has fewer free slots). */
  readonly maxPullBatch: number;
  /** Deadline of one publish attempt (waiting for the stream's acknowledgement); a timed-out attempt is tried once more. */
  readonly publishTimeoutMs: number;
  /** Copies of the request stream in a clustered NATS (1 on a single server; 3 on a 3-server cluster). */
  readonly numReplicas: number;
}

export const DEFAULT_ACK_WAIT_MS = 30_000;

export function resolveRequestQueueOptions(input: Partial<RequestQueueOptions> = {}): RequestQueueOptions {
  const ackWaitMs = input.ackWaitMs ?? DEFAULT_ACK_WAIT_MS;
  const options: RequestQueueOptions = {
    ackWaitMs,
    heartbeatIntervalMs: input.heartbeatIntervalMs ?? Math.max(1, Math.floor(ackWaitMs / 3)),
    maxDeliver: input.maxDeliver ?? 5,
    maxAckPending: input.maxAckPending ?? 1_024,
    duplicateWindowMs: input.duplicateWindowMs ?? 120_000,
    maxAgeMs: input.maxAgeMs ?? 600_000,
    maxQueuedRequests: input.maxQueuedRequests ?? 100_000,
    pullExpiresMs: input.pullExpiresMs ?? 2_000,
    maxPullBatch: input.maxPullBatch ?? 16,
    publishTimeoutMs: input.publishTimeoutMs ?? 5_000,
    numReplicas: input.numReplicas ?? 1,
  };
  for (const [name, value] of Object.entries(options)) {
    if (!Number.isInteger(value) || value < 1)
      throw new ClusterConfigError(`request queue ${name} must be a positive integer, got ${value}`);
  }
  if (options.heartbeatIntervalMs >= options.ackWaitMs) {
    throw new ClusterConfigError(
      `request queue heartbeatIntervalMs (${options.heartbeatIntervalMs}) must be below ackWaitMs (${options.ackWaitMs})`,
    );
  }
  if (options.pullExpiresMs < 1_000)
    throw new ClusterConfigError(`request queue pullExpiresMs must be ≥ 1000, got ${options.pullExpiresMs}`);
  if (options.duplicateWindowMs > options.maxAgeMs) {
    throw new ClusterConfigError(
      `request queue duplicateWindowMs (${options.duplicateWindowMs}) must not exceed maxAgeMs (${options.maxAgeMs})`,
    );
  }
  return Object.freeze(options);
}
