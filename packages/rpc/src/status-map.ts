/**
 * The one place where typed errors become gRPC statuses and gRPC statuses become typed errors.
 */
import { status as GrpcStatus } from '@grpc/grpc-js';
import {
  CancelledError,
  DataLossError,
  DeadlineExceededError,
  FailedPreconditionError,
  InternalError,
  InvalidArgumentError,
  NotFoundError,
  ResourceExhaustedError,
  UnavailableError,
  isRpcError,
} from './errors.ts';
import type { RpcError, RpcErrorCode } from './errors.ts';

export interface WireStatus {
  readonly code: GrpcStatus;
  readonly details: string;
}

const STATUS_BY_CODE: Readonly<Record<RpcErrorCode, GrpcStatus>> = {
  INVALID_ARGUMENT: GrpcStatus.INVALID_ARGUMENT,
  NOT_FOUND: GrpcStatus.NOT_FOUND,
  FAILED_PRECONDITION: GrpcStatus.FAILED_PRECONDITION,
  UNAVAILABLE: GrpcStatus.UNAVAILABLE,
  DEADLINE_EXCEEDED: GrpcStatus.DEADLINE_EXCEEDED,
  CANCELLED: GrpcStatus.CANCELLED,
  RESOURCE_EXHAUSTED: GrpcStatus.RESOURCE_EXHAUSTED,
  DATA_LOSS: GrpcStatus.DATA_LOSS,
  INTERNAL: GrpcStatus.INTERNAL,
};

/** Details sent for errors that are not ours: never leak a stack, a path or a library message. */
export const INTERNAL_DETAILS = 'internal error';

/**
 * Server side: the status to send for an error thrown by a handler. Typed errors keep their message
 * (handlers write those for the caller); InternalError and anything untyped become a generic INTERNAL.
 */
export function toWireStatus(err: unknown): WireStatus {
  if (!isRpcError(err) || err instanceof InternalError) {
    return { code: GrpcStatus.INTERNAL, details: INTERNAL_DETAILS };
  }
  return { code: STATUS_BY_CODE[err.code], details: err.message };
}

/** Whether the server should log this error: only the ones whose detail it hides from the caller. */
export function isUnexpectedError(err: unknown): boolean {
  return !isRpcError(err) || err instanceof InternalError;
}

/** Client side: the typed error for a status received from a peer (a call status or a Run error). */
export function fromWireStatus(code: number, details: string, cause?: unknown): RpcError {
  const options = cause === undefined ? undefined : { cause };
  switch (code) {
    case GrpcStatus.INVALID_ARGUMENT:
      return new InvalidArgumentError(details, options);
    case GrpcStatus.NOT_FOUND:
      return new NotFoundError(details, options);
    case GrpcStatus.FAILED_PRECONDITION:
      return new FailedPreconditionError(details, options);
    case GrpcStatus.UNAVAILABLE:
      return new UnavailableError(details, options);
    case GrpcStatus.DEADLINE_EXCEEDED:
      return new DeadlineExceededError(details, options);
    case GrpcStatus.CANCELLED:
      return new CancelledError(details, options);
    case GrpcStatus.RESOURCE_EXHAUSTED:
      return new ResourceExhaustedError(details, options);
    case GrpcStatus.DATA_LOSS:
      return new DataLossError(details, options);
    default:
      return new InternalError(`${statusName(code)}: ${details}`, options);
  }
}

/** A grpc-js call error (a ServiceError) as a typed error; anything else becomes INTERNAL. */
export function fromCallError(err: unknown): RpcError {
  if (isRpcError(err)) return err;
  if (isServiceError(err)) return fromWireStatus(err.code, err.details, err);
  return new InternalError('unexpected client failure', { cause: err });
}

function isServiceError(err: unknown): err is { code: number; details: string } {
  return (
    err instanceof Error &&
    'code' in err &&
    typeof err.code === 'number' &&
    'details' in err &&
    typeof err.details === 'string'
  );
}

function statusName(code: number): string {
  const name = (GrpcStatus as Record<number, string | undefined>)[code];
  return name ?? `status ${code}`;
}
