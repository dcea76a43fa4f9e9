import { context, SpanKind, SpanStatusCode, trace, type Attributes, type Span, type Tracer } from '@opentelemetry/api';
import type { TokenCompute } from './accounting-observer.ts';
import {
  ATTR_DISPATCH_TOKENS,
  ATTR_ERROR_TYPE,
  ATTR_GEN_AI_OPERATION_NAME,
  ATTR_GEN_AI_PROVIDER_NAME,
  ATTR_GEN_AI_REQUEST_MAX_TOKENS,
  ATTR_GEN_AI_REQUEST_MODEL,
  ATTR_GEN_AI_REQUEST_SEED,
  ATTR_ROUTE_ENGINE,
  ATTR_ROUTE_MODE,
  ATTR_ROUTE_OVERLAP_BLOCKS,
  ATTR_ROUTE_PROMPT_BLOCKS,
  ATTR_ROUTE_SCORE,
  ATTR_ROUTE_TARGET,
  ATTR_GEN_AI_REQUEST_STREAM,
  ATTR_GEN_AI_REQUEST_TEMPERATURE,
  ATTR_GEN_AI_REQUEST_TOP_K,
  ATTR_GEN_AI_REQUEST_TOP_P,
  ATTR_LAYER,
  ATTR_REQUEST_ID,
  ATTR_TOKEN_ACTIVE_PARAMS,
  ATTR_TOKEN_DENSE_EQUIVALENT_FLOPS,
  ATTR_TOKEN_EXPERTS,
  ATTR_TOKEN_FLOPS,
  ATTR_TOKEN_PHASE,
  ATTR_TOKEN_POSITION,
  ATTR_TOKEN_SAMPLED,
  ATTR_WORKER_ID,
  ATTR_WORKER_INDEX,
  EVENT_FIRST_TOKEN,
  EVENT_TOKEN,
  requestSpanName,
  SPAN_ENGINE_STEP,
  SPAN_EXPERT_DISPATCH,
  SPAN_EXPERT_RUN,
  SWITCHYARD_PROVIDER_NAME,
  type GenAiOperation,
} from './names.ts';
import { contextFromTraceparent, traceparentOf, traceparentOfSpan } from './trace-context.ts';

/** `off`: no spans; `summary`: spans with aggregates; `tokens`: plus one span event per computed token. */
export type TraceDetail = 'off' | 'summary' | 'tokens';
export const TRACE_DETAILS: readonly TraceDetail[] = ['off', 'summary', 'tokens'];

/** What a request span starts with: ids, model and sampling parameters — never the prompt. */
export interface RequestSpanStart {
  readonly operation: GenAiOperation;
  readonly model: string;
  readonly requestId: string;
  /** The caller's trace context (HTTP `traceparent`, NATS header), so the request joins its trace. */
  readonly parentTraceparent?: string;
  readonly maxTokens?: number;
  readonly temperature?: number;
  readonly topP?: number;
  readonly topK?: number;
  readonly seed?: number;
  readonly stream?: boolean;
  /** How the frontend routed the request (NATS mode). */
  readonly route?: RouteAttributes;
}

/** A routing decision as span attributes see it (the cluster package's RouteDecision, plus the target). */
export interface RouteAttributes {
  readonly mode: string;
  readonly target: 'engine' | 'shared' | 'rerouted';
  readonly engineId?: string;
  readonly overlapBlocks: number;
  readonly promptBlocks: number;
  /** `kv` mode: the chosen engine's estimated cost in prompt-token equivalents (lower is better); else 0. */
  readonly score: number;
}

/** A live request span. `end` is idempotent. */
export interface RequestSpan {
  /** For the NATS message that carries the request to an engine. */
  readonly traceparent: string | undefined;
  markFirstToken(): void;
  /** Detail `tokens`: one event for a computed row of this request. */
  addToken(token: TokenCompute): void;
  /** Adds attributes known before the end (where the prompt's KV came from). */
  setAttributes(attributes: Attributes): void;
  /** Sets final attributes and ends the span (status error when `error`). */
  end(attributes: Attributes, error?: Error): void;
}

/** A live dispatch or worker span. `end` is idempotent. */
export interface CallSpan {
  /** For `RunRequest.traceparent` (dispatch spans); undefined when not tracing. */
  readonly traceparent: string | undefined;
  end(error?: Error): void;
}

const NOOP_REQUEST: RequestSpan = Object.freeze({
  traceparent: undefined,
  markFirstToken() {},
  addToken() {},
  setAttributes() {},
  end() {},
});
const NOOP_CALL: CallSpan = Object.freeze({ traceparent: undefined, end() {} });

/**
 * Switchyard's spans: request (`{operation} {model}`, GenAI conventions), engine step, per-layer
 * dispatch to a worker, and the worker's run joined to it through `traceparent`. At detail `off`
 * nothing touches OpenTelemetry, so tracing costs nothing.
 */
export class SwitchyardTracer {
  readonly #tracer: Tracer;
  readonly detail: TraceDetail;
  readonly #provider: string;

  constructor(tracer: Tracer, detail: TraceDetail, options: { readonly provider?: string } = {}) {
    this.#tracer = tracer;
    this.detail = detail;
    this.#provider = options.provider ?? SWITCHYARD_PROVIDER_NAME;
  }

  get isEnabled(): boolean {
    return this.detail !== 'off';
  }

  startRequestSpan(start: RequestSpanStart): RequestSpan {
    if (!this.isEnabled) return NOOP_REQUEST;
    const attributes: Attributes = {
      [ATTR_GEN_AI_OPERATION_NAME]: start.operation,
      [ATTR_GEN_AI_PROVIDER_NAME]: this.#provider,
      [ATTR_GEN_AI_REQUEST_MODEL]: start.model,
      [ATTR_REQUEST_ID]: start.requestId,
      ...optional(ATTR_GEN_AI_REQUEST_MAX_TOKENS, start.maxTokens),
      ...optional(ATTR_GEN_AI_REQUEST_TEMPERATURE, start.temperature),
      ...optional(ATTR_GEN_AI_REQUEST_TOP_P, start.topP),
      ...optional(ATTR_GEN_AI_REQUEST_TOP_K, start.topK),
      ...optional(ATTR_GEN_AI_REQUEST_SEED, start.seed),
      ...(start.route
        ? {
            [ATTR_ROUTE_MODE]: start.route.mode,
            [ATTR_ROUTE_TARGET]: start.route.target,
            [ATTR_ROUTE_OVERLAP_BLOCKS]: start.route.overlapBlocks,
            [ATTR_ROUTE_PROMPT_BLOCKS]: start.route.promptBlocks,
            [ATTR_ROUTE_SCORE]: start.route.score,
            ...optional(ATTR_ROUTE_ENGINE, start.route.engineId),
          }
        : {}),
      ...optional(ATTR_GEN_AI_REQUEST_STREAM, start.stream),
    };
    // NOTE: a root span unless the caller passes its context: a request started during a step must
    // not become a child of that step's span.
    const parent = contextFromTraceparent(start.parentTraceparent);
    const span = this.#tracer.startSpan(
      requestSpanName(start.operation, start.model),
      { kind: SpanKind.SERVER, attributes },
      parent,
    );
    return new LiveRequestSpan(span, this.detail === 'tokens');
  }

  /**
   * Runs one engine step inside a step span, so the dispatch spans the step makes are its children.
   * `attributesOf` gives the span's attributes from the step's result.
   */
  async traceStep<T>(run: () => Promise<T>, attributesOf: (result: T) => Attributes): Promise<T> {
    if (!this.isEnabled) return run();
    const span = this.#tracer.startSpan(SPAN_ENGINE_STEP, { kind: SpanKind.INTERNAL }, context.active());
    try {
      const result = await context.with(trace.setSpan(context.active(), span), run);
      span.setAttributes(attributesOf(result));
      return result;
    } catch (error) {
      fail(span, error);
      throw error;
    } finally {
      span.end();
    }
  }

  /** Gateway side: one layer's shard to one worker; send `traceparent` in the Run message. */
  startDispatchSpan(layer: number, workerIndex: number, numTokens: number): CallSpan {
    if (!this.isEnabled) return NOOP_CALL;
    const parent = context.active();
    const span = this.#tracer.startSpan(
      SPAN_EXPERT_DISPATCH,
      {
        kind: SpanKind.CLIENT,
        attributes: { [ATTR_LAYER]: layer, [ATTR_WORKER_INDEX]: workerIndex, [ATTR_DISPATCH_TOKENS]: numTokens },
      },
      parent,
    );
    return new LiveCallSpan(span, traceparentOf(trace.setSpan(parent, span)));
  }

  /**
   * Worker side: a Run message computed, as a child of the gateway's dispatch span. Without a valid
   * `traceparent` (the gateway is not tracing) no span is made: a root span per call would be noise.
   */
  startWorkerSpan(traceparent: string | undefined, layer: number, numTokens: number, workerId?: string): CallSpan {
    if (!this.isEnabled || !traceparent) return NOOP_CALL;
    const parent = contextFromTraceparent(traceparent);
    if (!trace.getSpanContext(parent)) return NOOP_CALL;
    const span = this.#tracer.startSpan(
      SPAN_EXPERT_RUN,
      {
        kind: SpanKind.SERVER,
        attributes: { [ATTR_LAYER]: layer, [ATTR_DISPATCH_TOKENS]: numTokens, ...optional(ATTR_WORKER_ID, workerId) },
      },
      parent,
    );
    return new LiveCallSpan(span, undefined);
  }
}

class LiveRequestSpan implements RequestSpan {
  readonly #span: Span;
  readonly #tokens: boolean;
  readonly traceparent: string | undefined;
  #ended = false;

  constructor(span: Span, tokens: boolean) {
    this.#span = span;
    this.#tokens = tokens;
    this.traceparent = traceparentOfSpan(span);
  }

  markFirstToken(): void {
    if (!this.#ended) this.#span.addEvent(EVENT_FIRST_TOKEN);
  }

  setAttributes(attributes: Attributes): void {
    if (!this.#ended) this.#span.setAttributes(attributes);
  }

  addToken(token: TokenCompute): void {
    if (this.#ended || !this.#tokens) return;
    this.#span.addEvent(EVENT_TOKEN, {
      [ATTR_TOKEN_POSITION]: token.position,
      [ATTR_TOKEN_PHASE]: token.phase,
      [ATTR_TOKEN_SAMPLED]: token.sampled,
      [ATTR_TOKEN_EXPERTS]: (token.experts ?? []).map((ids) => ids.join(',')),
      [ATTR_TOKEN_ACTIVE_PARAMS]: token.activeParams,
      [ATTR_TOKEN_FLOPS]: token.flops,
      [ATTR_TOKEN_DENSE_EQUIVALENT_FLOPS]: token.denseEquivalentFlops,
    });
  }

  end(attributes: Attributes, error?: Error): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#span.setAttributes(attributes);
    if (error) fail(this.#span, error);
    this.#span.end();
  }
}

class LiveCallSpan implements CallSpan {
  readonly #span: Span;
  readonly traceparent: string | undefined;
  #ended = false;

  constructor(span: Span, traceparent: string | undefined) {
    this.#span = span;
    this.traceparent = traceparent;
  }

  end(error?: Error): void {
    if (this.#ended) return;
    this.#ended = true;
    if (error) fail(this.#span, error);
    this.#span.end();
  }
}

/** Low-cardinality error identifier: a literal `code` when the error has one, else its name. */
export function errorTypeOf(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return typeof code === 'string' ? code : error.name;
  }
  return 'unknown';
}

/**
 * Marks `span` failed with the error's type only. NOTE: not `recordException`: an error message may
 * quote the prompt (a stop string, a rejected token), and spans carry counts, ids and names only.
 */
function fail(span: Span, error: unknown): void {
  const type = errorTypeOf(error);
  span.setAttribute(ATTR_ERROR_TYPE, type);
  span.setStatus({ code: SpanStatusCode.ERROR, message: type });
}

function optional(name: string, value: string | number | boolean | undefined): Attributes {
  return value === undefined ? {} : { [name]: value };
}
