/**
 * A unary gRPC call as a promise, with a deadline always and an AbortSignal optionally, failing with
 * the typed error of its status.
 */
import { Metadata } from '@grpc/grpc-js';
import type { Client, MethodDefinition } from '@grpc/grpc-js';
import { CancelledError, InternalError } from './errors.ts';
import { fromCallError } from './status-map.ts';

export interface CallOptions {
  /** Time allowed for the call, from now. */
  readonly deadlineMs: number;
  readonly signal?: AbortSignal;
  /** W3C trace context, sent as the `traceparent` metadata entry. */
  readonly traceparent?: string;
  /**
   * Wait (within the deadline) for the channel to connect instead of failing at once while it is
   * between reconnect attempts: for asking a peer that may be coming back whether it is back.
   */
  readonly waitForReady?: boolean;
}

/** Call metadata carrying the trace context, if any. */
export function callMetadata(traceparent: string | undefined, waitForReady = false): Metadata {
  const metadata = new Metadata();
  if (traceparent !== undefined) metadata.set('traceparent', traceparent);
  if (waitForReady) metadata.setOptions({ waitForReady: true });
  return metadata;
}

export function unaryCall<Request, Response>(
  client: Client,
  method: MethodDefinition<Request, Response>,
  request: Request,
  options: CallOptions,
): Promise<Response> {
  const { signal } = options;
  if (signal?.aborted === true)
    return Promise.reject(new CancelledError('aborted before the call', { cause: signal.reason }));
  return new Promise<Response>((resolve, reject) => {
    const call = client.makeUnaryRequest(
      method.path,
      method.requestSerialize,
      method.responseDeserialize,
      request,
      callMetadata(options.traceparent, options.waitForReady),
      { deadline: Date.now() + options.deadlineMs },
      (err, value) => {
        signal?.removeEventListener('abort', onAbort);
        if (err !== null) reject(fromCallError(err));
        else if (value === undefined) reject(new InternalError(`${method.path} answered without a message`));
        else resolve(value);
      },
    );
    function onAbort(): void {
      call.cancel();
    }
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
