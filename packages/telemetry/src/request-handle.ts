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

/**
 * One request's telemetry: its span, its clock (time to first token, time per output token) and, at
 * the end, its exact compute totals and the GenAI metrics. Ends once; later calls do nothing.
 */
export class RequestHandle {
  readonly span: RequestSpan;
  readonly requestId: string;
  readonly operation: RequestSpanStart['operation'];
  readonly model: string;
  readonly startedAt: number;
  readonly #now: () => number;
  readonly #finish: (handle: RequestHandle, outcome: RequestOutcome, endedAt: number) => void;
  readonly #onKv: ((kv: KvTransferRecord, handle: RequestHandle) => void) | undefined;
  #firstTokenAt: number | undefined;
  #ended = false;

  constructor(
    span: RequestSpan,
    start: RequestSpanStart,
    now: () => number,
    finish: (handle: RequestHandle, outcome: RequestOutcome, endedAt: number) => void,
    onKv?: (kv: KvTransferRecord, handle: RequestHandle) => void,
  ) {
    this.#onKv = onKv;
    this.span = span;
    this.requestId = start.requestId;
    this.operation = start.operation;
    this.model = start.model;
    this.#now = now;
    this.#finish = finish;
    this.startedAt = now();
  }

  /** W3C context of the request span, for the NATS message that carries the request. */
  get traceparent(): string | undefined {
    return this.span.traceparent;
  }

  get firstTokenAt(): number | undefined {
    return this.#firstTokenAt;
  }

  get isEnded(): boolean {
    return this.#ended;
  }

  /** Feed every engine event of the request: marks the first token, ends on the final event. */
  onEvent(event: TokenEventLike): void {
    if (this.#ended) return;
    if (event.tokenId >= 0 && this.#firstTokenAt === undefined) {
      this.#firstTokenAt = this.#now();
      this.span.markFirstToken();
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
    this.#onKv?.(kv, this);
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
    this.#finish(this, outcome, this.#now());
  }
}
