/**
 * Adapts a plain async function to a grpc-js unary handler: the function gets the decoded request
 * and an AbortSignal (aborted when the call is cancelled or its deadline passes); whatever it
 * throws becomes a gRPC status through status-map.ts.
 */
import type { Metadata, ServerUnaryCall, handleUnaryCall, sendUnaryData } from '@grpc/grpc-js';
import { CancelledError } from './errors.ts';
import { isUnexpectedError, toWireStatus } from './status-map.ts';

export interface CallContext {
  /** Aborted when the call is cancelled by the client or its deadline passes. */
  readonly signal: AbortSignal;
  /** The caller's W3C trace context (`traceparent` metadata), when it sent one. */
  readonly traceparent?: string;
}

/** What every grpc-js server call has (ServerSurfaceCall, which grpc-js does not export). */
interface ServerCallLike {
  readonly metadata: Metadata;
  on(event: 'cancelled', listener: () => void): unknown;
}

/** The context of a server call: an AbortSignal tied to cancellation and the trace context. */
export function callContext(call: ServerCallLike): CallContext {
  const abort = new AbortController();
  call.on('cancelled', () => abort.abort(new CancelledError('call cancelled')));
  const [traceparent] = call.metadata.get('traceparent');
  return typeof traceparent === 'string' ? { signal: abort.signal, traceparent } : { signal: abort.signal };
}

export function unaryHandler<WireRequest, WireResponse>(
  name: string,
  body: (request: WireRequest, context: CallContext) => Promise<WireResponse>,
  logError: (message: string, err: unknown) => void,
): handleUnaryCall<WireRequest, WireResponse> {
  return (call: ServerUnaryCall<WireRequest, WireResponse>, callback: sendUnaryData<WireResponse>) => {
    body(call.request, callContext(call)).then(
      (response) => callback(null, response),
      (err: unknown) => {
        if (isUnexpectedError(err)) logError(`${name} failed`, err);
        callback(serviceError(err));
      },
    );
  };
}

/** The error object grpc-js turns into a status: `code` and `details`. */
export function serviceError(err: unknown): Error & { code: number; details: string } {
  const status = toWireStatus(err);
  return Object.assign(new Error(status.details), { code: status.code, details: status.details });
}
