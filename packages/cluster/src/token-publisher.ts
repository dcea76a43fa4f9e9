import type { Subscription } from '@nats-io/transport-node';
import type { TokenEvent } from '@switchyard/engine';
import type { ClusterConnection } from './connect.ts';
import { ClusterConfigError } from './errors.ts';
import { encodeTokenEvent } from './token-message.ts';

export interface TokenPublisherOptions {
  /** How long a finished request's events stay available for a resend (its final event may have been lost). */
  readonly lingerMs: number;
  /** Finished requests kept for resends, at most (oldest dropped first). */
  readonly maxLingering: number;
  /** A frontend asked to stop this request (client gone). */
  readonly onCancel: (requestId: string) => void;
}

interface Retained {
  /** The frontend that queued the request: its events go to its token subjects, and only it may cancel. */
  readonly frontendId: string | undefined;
  /** Encoded events by index: an attempt's indices are 0, 1, 2, … with no gap. */
  readonly events: Uint8Array[];
  finishedAtMs: number | undefined;
}

/**
 * The serving engine's side of the token streams: publishes each event on the request's core subject
 * and keeps the events of each request it serves, so a frontend that lost some (a broker restart) gets
 * them again on `switchyard.v1.<ns>.resend.<frontend>.<requestId>`. Also relays cancels from frontends —
 * only from the frontend that queued the request (the subject names it; NATS permissions let a frontend
 * publish only on its own), so one frontend cannot stop another's requests.
 *
 * Invariants: `#retained` holds every request in flight here plus at most `maxLingering` finished ones,
 * none finished longer than `lingerMs` ago (swept every lingerMs / 2); a request's retained events are
 * exactly the events published for its current attempt, in index order.
 */
export class TokenPublisher {
  readonly #conn: ClusterConnection;
  readonly #options: TokenPublisherOptions;
  readonly #retained = new Map<string, Retained>();
  readonly #subs: readonly Subscription[];
  readonly #sweep: NodeJS.Timeout;

  constructor(
    conn: ClusterConnection,
    options: Partial<TokenPublisherOptions> & Pick<TokenPublisherOptions, 'onCancel'>,
  ) {
    const resolved = {
      lingerMs: options.lingerMs ?? 30_000,
      maxLingering: options.maxLingering ?? 1_024,
      onCancel: options.onCancel,
    };
    if (!Number.isInteger(resolved.lingerMs) || resolved.lingerMs < 1)
      throw new ClusterConfigError(`token publisher lingerMs must be a positive integer, got ${resolved.lingerMs}`);
    if (!Number.isInteger(resolved.maxLingering) || resolved.maxLingering < 0)
      throw new ClusterConfigError(
        `token publisher maxLingering must be a non-negative integer, got ${resolved.maxLingering}`,
      );
    this.#conn = conn;
    this.#options = resolved;
    this.#subs = [
      conn.nc.subscribe(conn.names.cancelSubjects, { callback: (_error, msg) => this.#onCancel(msg.subject) }),
      conn.nc.subscribe(conn.names.resendSubjects, {
        callback: (_error, msg) => this.#onResend(msg.subject, msg.data),
      }),
    ];
    this.#sweep = setInterval(
      () => this.#dropLingering(Date.now()),
      Math.max(1, Math.floor(resolved.lingerMs / 2)),
    ).unref();
  }

  /** Requests whose events are kept (in flight here, or finished recently). */
  get numRetained(): number {
    return this.#retained.size;
  }

  /** True when this engine finished `requestId` recently (its events linger for resends). */
  hasFinished(requestId: string): boolean {
    return this.#retained.get(requestId)?.finishedAtMs !== undefined;
  }

  /**
   * Starts a new attempt at a request queued by `frontendId` (undefined: by no named frontend):
   * forgets the events of an earlier attempt here.
   */
  begin(requestId: string, frontendId: string | undefined): void {
    this.#retained.delete(requestId);
    this.#retained.set(requestId, { frontendId, events: [], finishedAtMs: undefined });
  }

  /** Publishes one event of a request begun here, and keeps it for resends. */
  publish(event: TokenEvent): void {
    const data = encodeTokenEvent(event);
    const retained = this.#retained.get(event.requestId);
    if (!retained) return; // not begun here (or dropped): nobody to address it to
    if (retained.events.length === event.index) {
      retained.events.push(data);
      if (event.finishReason !== undefined) this.#linger(event.requestId, retained);
    }
    this.#send(this.#conn.names.tokenSubject(retained.frontendId, event.requestId), data);
  }

  /** Drops a request's events without publishing anything (its attempt here was handed to another engine). */
  forget(requestId: string): void {
    this.#retained.delete(requestId);
  }

  close(): void {
    clearInterval(this.#sweep);
    for (const sub of this.#subs) sub.unsubscribe();
    this.#retained.clear();
  }

  #linger(requestId: string, retained: Retained): void {
    retained.finishedAtMs = Date.now();
    // Re-insert so Map order is finish order and the oldest finished request is found first.
    this.#retained.delete(requestId);
    this.#retained.set(requestId, retained);
    this.#dropLingering(retained.finishedAtMs);
  }

  #dropLingering(nowMs: number): void {
    let numLingering = 0;
    for (const r of this.#retained.values()) if (r.finishedAtMs !== undefined) numLingering++;
    for (const [id, r] of this.#retained) {
      if (r.finishedAtMs === undefined) continue;
      if (numLingering <= this.#options.maxLingering && nowMs - r.finishedAtMs <= this.#options.lingerMs) break;
      this.#retained.delete(id);
      numLingering--;
    }
  }

  /** The request a control subject names, if it is retained here and the subject's frontend queued it. */
  #controlled(subject: string): { requestId: string; retained: Retained } | undefined {
    const control = this.#conn.names.controlOf(subject);
    const retained = control === undefined ? undefined : this.#retained.get(control.requestId);
    if (control === undefined || retained === undefined || retained.frontendId !== control.frontendId) return undefined;
    return { requestId: control.requestId, retained };
  }

  #onCancel(subject: string): void {
    const controlled = this.#controlled(subject);
    if (controlled !== undefined && controlled.retained.finishedAtMs === undefined)
      this.#options.onCancel(controlled.requestId);
  }

  #onResend(subject: string, data: Uint8Array): void {
    const controlled = this.#controlled(subject);
    if (controlled === undefined) return;
    const { requestId, retained } = controlled;
    let fromIndex = 0;
    try {
      const parsed = JSON.parse(new TextDecoder().decode(data)) as { fromIndex?: unknown };
      if (typeof parsed.fromIndex === 'number' && Number.isInteger(parsed.fromIndex) && parsed.fromIndex >= 0)
        fromIndex = parsed.fromIndex;
    } catch {
      // A malformed resend asks for everything: duplicates are harmless to the frontend.
    }
    const tokens = this.#conn.names.tokenSubject(retained.frontendId, requestId);
    for (const event of retained.events.slice(fromIndex)) this.#send(tokens, event);
  }

  /**
   * NOTE: never throws. Events are produced inside the engine's step; a closed connection (the
   * engine is being cut off) must not fail the step for every other request. The queue's redelivery
   * and the frontend's resend cover what is not sent.
   */
  #send(subject: string, data: Uint8Array): void {
    if (this.#conn.nc.isClosed()) return;
    try {
      this.#conn.nc.publish(subject, data);
    } catch {
      // Closed or draining between the check and the publish: same as above.
    }
  }
}
