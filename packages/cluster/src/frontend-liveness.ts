/**
 * Frontend liveness: every frontend publishes a heartbeat on its own subject four times a second, and every
 * engine watches them, so an engine can stop a request whose frontend — the only one that would have
 * read its tokens — is gone, instead of generating (or, after the ack wait, replaying) it for nobody.
 */
import type { Subscription } from '@nats-io/transport-node';
import type { ClusterConnection } from './connect.ts';

/** A frontend's heartbeat: an empty message on its subject every `intervalMs` while it runs. */
export class FrontendHeartbeat {
  readonly #timer: NodeJS.Timeout;

  constructor(conn: ClusterConnection, frontendId: string, intervalMs = 250) {
    const subject = conn.names.frontendSubject(frontendId);
    const beat = () => {
      if (conn.isConnected) conn.nc.publish(subject);
    };
    beat();
    this.#timer = setInterval(beat, intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}

/**
 * An engine's view of which frontends are alive: when each was last heard from. The engine's own gateway
 * heartbeats too, so heartbeats arrive four times a second whenever this engine's path through the broker
 * works; when none has arrived for a second, the silence is the broker's (or this connection's), not the
 * frontends', and nobody counts as gone — and once heartbeats flow again every frontend gets a whole TTL
 * to be heard from anew.
 */
export class FrontendWatch {
  readonly #lastSeen = new Map<string, number>();
  readonly #subscription: Subscription;
  readonly #now: () => number;
  /** When any heartbeat last arrived, and when they started arriving again after a silence. */
  #lastAnyMs = Number.NEGATIVE_INFINITY;
  #resumedAtMs = Number.NEGATIVE_INFINITY;

  constructor(conn: ClusterConnection, now: () => number = Date.now) {
    this.#now = now;
    this.#subscription = conn.nc.subscribe(conn.names.frontendSubjects, {
      callback: (error, msg) => {
        if (error) return;
        // A subject no frontend could have used is ignored.
        const frontendId = conn.names.frontendIdOf(msg.subject);
        if (frontendId !== undefined) this.observe(frontendId);
      },
    });
  }

  /** Records a heartbeat (the subscription calls this; tests may too). */
  observe(frontendId: string): void {
    const now = this.#now();
    if (now - this.#lastAnyMs > SILENCE_MS) this.#resumedAtMs = now;
    this.#lastAnyMs = now;
    this.#lastSeen.set(frontendId, now);
  }

  /**
   * True when `frontendId` has said nothing for `ttlMs`, counting from `sinceMs` at the earliest (when
   * the engine took the request: a frontend it never heard from gets that long too) and from when
   * heartbeats last resumed after a silence; never while no heartbeat at all is arriving.
   */
  isGone(frontendId: string, sinceMs: number, ttlMs: number): boolean {
    const now = this.#now();
    if (now - this.#lastAnyMs > SILENCE_MS) return false;
    const last = Math.max(this.#lastSeen.get(frontendId) ?? 0, sinceMs, this.#resumedAtMs);
    return now - last > ttlMs;
  }

  stop(): void {
    this.#subscription.unsubscribe();
  }
}

/** No heartbeat from anyone for this long: the silence is the broker's, not the frontends'. */
const SILENCE_MS = 1_000;
