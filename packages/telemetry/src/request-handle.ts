import type { KvTransferRecord } from './metrics.ts';
import {
  ATTR_KV_FETCH_BYTES,
  ATTR_KV_FETCH_DURATION_MS,
  ATTR_KV_FETCH_OUTCOME,
  ATTR_KV_FETCH_REASON,
  ATTR_KV_FETCH_SOURCE,
  ATTR_KV_FETCHED_TOKENS,
  ATTR_KV_LOCAL_TOKENS,
  ATTR_KV_RECOMPUTED_TOKENS,
} from './names.ts';
import type { RequestSpan, RequestSpanStart } from './request-tracer.ts';

/** Structurally the engine's `Usage`. */
export interface UsageLike {
  readonly promptTokens: number;
  readonly completionTokens: number;
  readonly cachedPromptTokens: number;
}

/** Structurally the engine's `TokenEvent` (only what telemetry reads: no text). */
export interface TokenEventLike {
  readonly tokenId: number;
  readonly finishReason?: string;
  readonly error?: Error;
  readonly usage?: UsageLike;
}

export interface RequestOutcome {
  readonly usage?: UsageLike;
  readonly finishReason?: string;
  readonly error?: Error;
}

/** What a handle reports while its request runs and when it ends. */
export interface RequestHandleSink {
  readonly finish: (handle: RequestHandle, outcome: RequestOutcome, endedAt: number) => void;
  /** Seconds between two consecutive output tokens. */
  readonly interToken?: (handle: RequestHandle, seconds: number) => void;
  /** Where the request's prompt KV came from (a fetch before admission, NATS mode). */
  readonly kv?: (kv: KvTransferRecord, handle: RequestHandle) => void;
}

/**
 * One request's telemetry: its span, its clock (queue time, time to first token, inter-token times) and,
 * at the end, its exact compute totals and the metrics. Ends once; later calls do nothing.
 */
export class RequestHandle {
  readonly span: RequestSpan;
  readonly requestId: string;
  readonly operation: RequestSpanStart['operation'];
  readonly model: string;
  readonly startedAt: number;
  readonly #now: () => number;
  readonly #sink: RequestHandleSink;
  #firstTokenAt: number | undefined;
  #lastTokenAt: number | undefined;
  #scheduledAt: number | undefined;
  #ended = false;

  constructor(span: RequestSpan, start: RequestSpanStart, now: () => number, sink: RequestHandleSink) {
    this.span = span;
    this.requestId = start.requestId;
    this.operation = start.operation;
    this.model = start.model;
    this.#now = now;
    this.#sink = sink;
    this.startedAt = now();
  }

  /** W3C context of the request span, for the NATS message that carries the request. */
  get traceparent(): string | undefined {
    return this.span.traceparent;
  }

  get firstTokenAt(): number | undefined {
    return this.#firstTokenAt;
  }

  /** When the engine computed the request's first row (undefined before). */
  get scheduledAt(): number | undefined {
    return this.#scheduledAt;
  }

  /** The engine computed a row of this request; the first call ends its queue time. */
  markScheduled(): void {
    this.#scheduledAt ??= this.#now();
  }

  get isEnded(): boolean {
    return this.#ended;
  }

  /** Feed every engine event of the request: marks the first token, ends on the final event. */
  onEvent(event: TokenEventLike): void {
    if (this.#ended) return;
    if (event.tokenId >= 0) {
      const now = this.#now();
      if (this.#firstTokenAt === undefined) {
        this.#firstTokenAt = now;
        this.span.markFirstToken();
      } else if (this.#lastTokenAt !== undefined) {
        this.#sink.interToken?.(this, (now - this.#lastTokenAt) / 1000);
      }
      this.#lastTokenAt = now;
    }
    if (event.finishReason !== undefined) {
      this.end({
        finishReason: event.finishReason,
        ...(event.usage ? { usage: event.usage } : {}),
        ...(event.error ? { error: event.error } : {}),
      });
    }
  }

  /** Where the prompt's KV came from (set before admission): span attributes and the KV metrics. */
  recordKvTransfer(kv: KvTransferRecord): void {
    if (this.#ended) return;
    this.span.setAttributes({
      [ATTR_KV_FETCH_OUTCOME]: kv.outcome,
      [ATTR_KV_LOCAL_TOKENS]: kv.localTokens,
      [ATTR_KV_FETCHED_TOKENS]: kv.fetchedTokens,
      [ATTR_KV_RECOMPUTED_TOKENS]: kv.recomputedTokens,
      [ATTR_KV_FETCH_BYTES]: kv.bytes,
      [ATTR_KV_FETCH_DURATION_MS]: kv.durationMs,
      ...(kv.source !== undefined ? { [ATTR_KV_FETCH_SOURCE]: kv.source } : {}),
      ...(kv.reason !== undefined ? { [ATTR_KV_FETCH_REASON]: kv.reason } : {}),
    });
    this.#sink.kv?.(kv, this);
  }

  /** `sink` with `onEvent` in front of it: `loop.submit(request, handle.wrapSink(sink))`. */
  wrapSink<E extends TokenEventLike>(sink: (event: E) => void): (event: E) => void {
    return (event) => {
      this.onEvent(event);
      sink(event);
    };
  }

  /** Ends the request (also for one rejected before it reached an engine: pass `error`). */
  end(outcome: RequestOutcome): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#sink.finish(this, outcome, this.#now());
  }
}
