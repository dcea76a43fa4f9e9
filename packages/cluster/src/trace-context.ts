import { headers, type MsgHdrs } from '@nats-io/transport-node';

/** W3C trace context as it travels in NATS headers (`traceparent`, optional `tracestate`). */
export interface TraceContext {
  readonly traceparent: string;
  readonly tracestate?: string;
}

const TRACEPARENT = /^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/;

/** True for a well-formed W3C `traceparent` (version-traceid-parentid-flags, lowercase hex). */
export function isTraceparent(value: string): boolean {
  return TRACEPARENT.test(value) && !/^[0-9a-f]{2}-0{32}-/.test(value) && !/-0{16}-[0-9a-f]{2}$/.test(value);
}

/** Writes the trace context into `target` (or new headers); a malformed traceparent is left out. */
export function setTraceContext(context: TraceContext | undefined, target: MsgHdrs = headers()): MsgHdrs {
  if (!context || !isTraceparent(context.traceparent)) return target;
  target.set('traceparent', context.traceparent);
  if (context.tracestate) target.set('tracestate', context.tracestate);
  return target;
}

/** Reads the trace context from message headers; undefined when absent or malformed. */
export function getTraceContext(source: MsgHdrs | undefined): TraceContext | undefined {
  const traceparent = source?.get('traceparent') ?? '';
  if (!isTraceparent(traceparent)) return undefined;
  const tracestate = source?.get('tracestate') ?? '';
  return tracestate ? { traceparent, tracestate } : { traceparent };
}
