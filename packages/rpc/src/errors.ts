/**
 * One error class per failure, each with a literal `code` (the gRPC status name it maps to) and an
 * optional `cause`. `status-map.ts` is the only place that turns these into gRPC statuses and back.
 */

interface ErrorOptionsWithCause {
  readonly cause?: unknown;
}

/** A request is malformed: bad tensor, bad routes, an expert id out of range, … */
export class InvalidArgumentError extends Error {
  override readonly name: string = 'InvalidArgumentError';
  readonly code = 'INVALID_ARGUMENT' as const;
  constructor(message: string, options?: ErrorOptionsWithCause) {
    super(message, options);
  }
}

/** A tensor's byte length, shape or dtype is inconsistent. A kind of invalid argument. */
export class TensorFormatError extends InvalidArgumentError {
  override readonly name: string = 'TensorFormatError';
}

/** Something the request names does not exist here (e.g. an expert this worker does not host). */
export class NotFoundError extends Error {
  override readonly name = 'NotFoundError';
  readonly code = 'NOT_FOUND' as const;
  constructor(message: string, options?: ErrorOptionsWithCause) {
    super(message, options);
  }
}

/** The request conflicts with the receiver's state (e.g. a placement revision older than applied). */
export class FailedPreconditionError extends Error {
  override readonly name = 'FailedPreconditionError';
  readonly code = 'FAILED_PRECONDITION' as const;
  constructor(message: string, options?: ErrorOptionsWithCause) {
    super(message, options);
  }
}

/** The peer cannot be reached, the stream broke, or the server is shutting down. Retry elsewhere. */
export class UnavailableError extends Error {
  override readonly name: string = 'UnavailableError';
  readonly code = 'UNAVAILABLE' as const;
  constructor(message: string, options?: ErrorOptionsWithCause) {
    super(message, options);
  }
}

/**
 * The peer could not be reached at all (connection refused or not made in time): nothing was sent, so
 * the same call may be tried over another transport or on another peer. A kind of unavailable.
 */
export class ConnectFailedError extends UnavailableError {
  override readonly name: string = 'ConnectFailedError';
}

/** The call's deadline passed before an answer arrived. */
export class DeadlineExceededError extends Error {
  override readonly name = 'DeadlineExceededError';
  readonly code = 'DEADLINE_EXCEEDED' as const;
  constructor(message: string, options?: ErrorOptionsWithCause) {
    super(message, options);
  }
}

/** The caller aborted the call (AbortSignal) or the peer cancelled it. */
export class CancelledError extends Error {
  override readonly name = 'CancelledError';
  readonly code = 'CANCELLED' as const;
  constructor(message: string, options?: ErrorOptionsWithCause) {
    super(message, options);
  }
}

/** A bound was hit: too many calls in flight, a message or transfer larger than allowed. */
export class ResourceExhaustedError extends Error {
  override readonly name = 'ResourceExhaustedError';
  readonly code = 'RESOURCE_EXHAUSTED' as const;
  constructor(message: string, options?: ErrorOptionsWithCause) {
    super(message, options);
  }
}

/** The peer sent bytes that break the protocol (e.g. KV chunks with a gap). */
export class DataLossError extends Error {
  override readonly name = 'DataLossError';
  readonly code = 'DATA_LOSS' as const;
  constructor(message: string, options?: ErrorOptionsWithCause) {
    super(message, options);
  }
}

/** Anything else. On the wire its message is generic; the detail stays in the server's log. */
export class InternalError extends Error {
  override readonly name = 'InternalError';
  readonly code = 'INTERNAL' as const;
  constructor(message: string, options?: ErrorOptionsWithCause) {
    super(message, options);
  }
}

export type RpcError =
  | InvalidArgumentError
  | NotFoundError
  | FailedPreconditionError
  | UnavailableError
  | DeadlineExceededError
  | CancelledError
  | ResourceExhaustedError
  | DataLossError
  | InternalError;

export type RpcErrorCode = RpcError['code'];

export function isRpcError(err: unknown): err is RpcError {
  return (
    err instanceof InvalidArgumentError ||
    err instanceof NotFoundError ||
    err instanceof FailedPreconditionError ||
    err instanceof UnavailableError ||
    err instanceof DeadlineExceededError ||
    err instanceof CancelledError ||
    err instanceof ResourceExhaustedError ||
    err instanceof DataLossError ||
    err instanceof InternalError
  );
}
