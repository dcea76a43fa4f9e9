/**
 * W3C trace context as a single `traceparent` string: what travels in gRPC `RunRequest.traceparent`,
 * gRPC metadata and NATS headers. Uses the W3C propagator directly (not the global one), so the hop
 * between a gateway and a worker works whatever OTEL_PROPAGATORS says.
 */
import {
  context,
  defaultTextMapGetter,
  defaultTextMapSetter,
  ROOT_CONTEXT,
  trace,
  type Context,
  type Span,
} from '@opentelemetry/api';
import { TRACE_PARENT_HEADER, W3CTraceContextPropagator } from '@opentelemetry/core';

// NOTE: a module-level constant, not a singleton with state: the propagator holds no data.
const propagator = new W3CTraceContextPropagator();

/** The `traceparent` of the span in `ctx` (the active context by default); undefined when none is recording. */
export function traceparentOf(ctx: Context = context.active()): string | undefined {
  const carrier: Record<string, string> = {};
  propagator.inject(ctx, carrier, defaultTextMapSetter);
  return carrier[TRACE_PARENT_HEADER];
}

/** The `traceparent` of `span`. */
export function traceparentOfSpan(span: Span): string | undefined {
  return traceparentOf(trace.setSpan(ROOT_CONTEXT, span));
}

/** A context whose parent is the remote span named by `traceparent` (ROOT_CONTEXT when absent or invalid). */
export function contextFromTraceparent(traceparent: string | undefined): Context {
  if (!traceparent) return ROOT_CONTEXT;
  return propagator.extract(ROOT_CONTEXT, { [TRACE_PARENT_HEADER]: traceparent }, defaultTextMapGetter);
}

/** Whether `traceparent` names a valid remote span. */
export function isValidTraceparent(traceparent: string | undefined): boolean {
  return trace.getSpanContext(contextFromTraceparent(traceparent)) !== undefined;
}
