import type { Subscription } from '@nats-io/transport-node';
import type { TokenEvent, TokenSink } from '@switchyard/engine';
import type { ClusterConnection } from './connect.ts';
import { TokenStreamClosedError, TokenStreamGapError, TokenStreamTimeoutError } from './errors.ts';
import { IndexDedup } from './index-dedup.ts';
import { decodeTokenEvent } from './token-message.ts';
import { resolveTokenStreamOptions, type TokenStreamOptions } from './token-stream-options.ts';

/** An open token stream. */
export interface TokenStream {
  readonly requestId: string;
  readonly numForwarded: number;
  /** Unsubscribes without a final event (the caller ended the request). */
  close(): void;
  /** Ends the stream with a final error event carrying `error` (e.g. the request could not be queued). */
  fail(error: Error): void;
}

/**
 * The frontend's side of the token streams: one core subscription per request on
 * `switchyard.v1.<namespace>.tokens.<frontend>.<requestId>`, opened BEFORE the request is published so no event can precede it.
 * Each index reaches the sink once and in order (IndexDedup); the last event the sink sees is always a
 * final one — the engine's, or a synthetic error when the deadlines pass. Lost events (a gap, or silence
 * after a broker reconnect) are asked for again on `switchyard.v1.<ns>.resend.<frontend>.<requestId>`; the serving engine
 * keeps each request's events and resends them.
 *
 * Invariant: a stream is in `#open` from `open` until its final event or `close`; one shared timer
 * checks the deadlines of all of them, so the work per tick is bounded by the number of open streams.
 */
export class TokenSubscriber {
  readonly options: TokenStreamOptions;
  readonly #conn: ClusterConnection;
  readonly #open = new Map<string, OpenStream>();
  readonly #timer: NodeJS.Timeout;
  readonly #stopListening: () => void;

  /** The frontend whose requests these are: its token, cancel and resend subjects (undefined: `_`). */
  readonly frontendId: string | undefined;

  constructor(conn: ClusterConnection, options: Partial<TokenStreamOptions> = {}, frontendId?: string) {
    this.#conn = conn;
    this.frontendId = frontendId;
    this.options = resolveTokenStreamOptions(options);
    this.#timer = setInterval(() => this.#tick(Date.now()), this.options.tickMs).unref();
    this.#stopListening = conn.onStateChange((state) => {
      // Core messages published while either side was away are gone: ask for them once everyone is back.
      if (state === 'connected') for (const stream of this.#open.values()) stream.suspectLoss();
    });
  }

  get numOpen(): number {
    return this.#open.size;
  }

  /** Subscribes to a request's events; call before publishing the request. */
  open(requestId: string, sink: TokenSink): TokenStream {
    this.#open.get(requestId)?.close();
    const stream = new OpenStream(requestId, this.frontendId, sink, this.#conn, this.options, () =>
      this.#open.delete(requestId),
    );
    this.#open.set(requestId, stream);
    return stream;
  }

  /**
   * Asks the engine serving `requestId` to stop it (its client went away) and closes the stream
   * without a final event. Fire-and-forget: an engine that never hears it finishes the request anyway.
   */
  cancel(requestId: string): void {
    this.#open.get(requestId)?.close();
    try {
      this.#conn.nc.publish(this.#conn.names.cancelSubject(this.frontendId, requestId));
    } catch {
      // Closed connection: the engine finishes the request unheard, which costs compute, not correctness.
    }
  }

  /** Ends every open stream with an error event (the frontend is shutting down), then stops the timer. */
  close(reason = 'the frontend closed'): void {
    clearInterval(this.#timer);
    this.#stopListening();
    for (const stream of [...this.#open.values()]) stream.fail(new TokenStreamClosedError(reason));
  }

  #tick(nowMs: number): void {
    for (const stream of [...this.#open.values()]) stream.tick(nowMs);
  }
}

class OpenStream implements TokenStream {
  readonly requestId: string;
  readonly #frontendId: string | undefined;
  readonly #sink: TokenSink;
  readonly #conn: ClusterConnection;
  readonly #options: TokenStreamOptions;
  readonly #onClosed: () => void;
  readonly #sub: Subscription;
  readonly #dedup = new IndexDedup();
  readonly #openedAtMs = Date.now();
  #lastProgressMs = Date.now();
  #lastResendMs = 0;
  #resendDelayMs: number;
  #suspectLoss = false;
  #sawGap = false;
  #closed = false;

  constructor(
    requestId: string,
    frontendId: string | undefined,
    sink: TokenSink,
    conn: ClusterConnection,
    options: TokenStreamOptions,
    onClosed: () => void,
  ) {
    this.requestId = requestId;
    this.#frontendId = frontendId;
    this.#sink = sink;
    this.#conn = conn;
    this.#options = options;
    this.#onClosed = onClosed;
    this.#resendDelayMs = options.resendAfterMs;
    this.#sub = conn.nc.subscribe(conn.names.tokenSubject(frontendId, requestId), {
      callback: (error, msg) => {
        if (error) return this.fail(error);
        let event: TokenEvent;
        try {
          event = decodeTokenEvent(msg.data);
        } catch {
          return; // NOTE: a garbled event is treated as lost; the gap logic asks for it again.
        }
        this.#receive(event);
      },
    });
  }

  get numForwarded(): number {
    return this.#dedup.nextIndex;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#sub.unsubscribe();
    this.#onClosed();
  }

  suspectLoss(): void {
    this.#suspectLoss = true;
  }

  fail(error: Error): void {
    if (this.#closed) return;
    const index = this.#dedup.nextIndex;
    this.close();
    this.#deliver({ requestId: this.requestId, index, tokenId: -1, text: '', finishReason: 'error', error });
  }

  tick(nowMs: number): void {
    const started = this.#dedup.nextIndex > 0;
    const quietMs = nowMs - this.#lastProgressMs;
    const limitMs = started ? this.#options.idleTimeoutMs : this.#options.firstEventTimeoutMs;
    if (quietMs > limitMs) {
      const what = started
        ? `no token event for ${quietMs} ms after index ${this.#dedup.nextIndex - 1}`
        : `no engine started it within ${nowMs - this.#openedAtMs} ms`;
      this.fail(
        this.#sawGap
          ? new TokenStreamGapError(
              `request ${this.requestId}: events from index ${this.#dedup.nextIndex} were lost (${what})`,
            )
          : new TokenStreamTimeoutError(`request ${this.requestId}: ${what}`),
      );
      return;
    }
    const mayHaveLost = started || this.#suspectLoss || this.#sawGap;
    if (mayHaveLost && quietMs >= this.#resendDelayMs && nowMs - this.#lastResendMs >= this.#resendDelayMs) {
      this.#askResend(nowMs);
      this.#resendDelayMs = Math.min(this.#resendDelayMs * 2, this.#options.resendAfterMs * 4);
    }
  }

  #receive(event: TokenEvent): void {
    if (this.#closed) return;
    const expected = this.#dedup.nextIndex;
    const verdict = this.#dedup.accept(event);
    if (verdict === 'gap') {
      this.#sawGap = true;
      const nowMs = Date.now();
      if (nowMs - this.#lastResendMs >= this.#options.tickMs) this.#askResend(nowMs);
      return;
    }
    this.#lastProgressMs = Date.now();
    this.#resendDelayMs = this.#options.resendAfterMs;
    if (verdict === 'duplicate') return;
    this.#suspectLoss = false;
    this.#sawGap = false;
    if (event.finishReason !== undefined) this.close();
    this.#deliver(event.index === expected ? event : { ...event, index: expected });
  }

  #askResend(nowMs: number): void {
    this.#lastResendMs = nowMs;
    if (!this.#conn.isConnected) return;
    try {
      this.#conn.nc.publish(
        this.#conn.names.resendSubject(this.#frontendId, this.requestId),
        JSON.stringify({ fromIndex: this.#dedup.nextIndex }),
      );
    } catch {
      // Closing: the deadline ends the stream.
    }
  }

  #deliver(event: TokenEvent): void {
    try {
      this.#sink(event);
    } catch {
      // The sink's failure is its own (a closed socket); it must not break the subscription callback.
    }
  }
}
