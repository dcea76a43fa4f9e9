/**
 * Every failure the cluster package reports, one class per failure with a literal `code` (as nats.js
 * does). Expected outcomes — losing a compare-and-set, an empty queue — are values, not errors.
 */

export type NatsConnectFailure = 'auth' | 'unreachable' | 'tls' | 'no_jetstream' | 'other';

/** Start-up could not reach a usable NATS server. The message names NATS and the URL, never the secret. */
export class NatsConnectError extends Error {
  override readonly name = 'NatsConnectError';
  readonly code = 'nats_connect_failed' as const;
  readonly reason: NatsConnectFailure;
  /** The server URL with any user:password removed. */
  readonly url: string;
  constructor(reason: NatsConnectFailure, url: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.reason = reason;
    this.url = url;
  }
}

/** A subject token (model name, request id, node id) that cannot be escaped (empty). */
export class InvalidSubjectTokenError extends Error {
  override readonly name = 'InvalidSubjectTokenError';
  readonly code = 'invalid_subject_token' as const;
}

/** A message or KV value that does not match its schema (bad JSON, a missing or mistyped field). */
export class InvalidMessageError extends Error {
  override readonly name = 'InvalidMessageError';
  readonly code = 'invalid_message' as const;
}

/** Publishing a request to the work queue failed (broker down, stream full, timeout). */
export class RequestPublishError extends Error {
  override readonly name = 'RequestPublishError';
  readonly code = 'request_publish_failed' as const;
}

/** No token event arrived for a request within its deadline: the engines serving it are gone. */
export class TokenStreamTimeoutError extends Error {
  override readonly name = 'TokenStreamTimeoutError';
  readonly code = 'token_stream_timeout' as const;
}

/** The frontend shut down while the request was still streaming. */
export class TokenStreamClosedError extends Error {
  override readonly name = 'TokenStreamClosedError';
  readonly code = 'token_stream_closed' as const;
}

/** Token events were lost (a core NATS message dropped, e.g. during a broker restart): indices skipped. */
export class TokenStreamGapError extends Error {
  override readonly name = 'TokenStreamGapError';
  readonly code = 'token_stream_gap' as const;
}

/** The engine that served a request reported an error; `remoteName` and `remoteCode` are the engine's. */
export class RemoteGenerationError extends Error {
  override readonly name = 'RemoteGenerationError';
  readonly code = 'remote_generation_failed' as const;
  readonly remoteName: string;
  readonly remoteCode: string | undefined;
  constructor(message: string, remoteName: string, remoteCode: string | undefined) {
    super(message);
    this.remoteName = remoteName;
    this.remoteCode = remoteCode;
  }
}

/** A placement update whose revision does not exceed the one it replaces (a caller's bug). */
export class StalePlacementError extends Error {
  override readonly name = 'StalePlacementError';
  readonly code = 'stale_placement_revision' as const;
}

/** A configuration value out of range (named), found when options are resolved. */
export class ClusterConfigError extends Error {
  override readonly name = 'ClusterConfigError';
  readonly code = 'invalid_cluster_config' as const;
}

/** A KV bucket or stream operation failed for a reason other than an expected conflict. */
export class ClusterStoreError extends Error {
  override readonly name = 'ClusterStoreError';
  readonly code = 'cluster_store_failed' as const;
}
