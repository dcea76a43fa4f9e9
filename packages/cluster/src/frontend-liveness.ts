/**
 * Frontend liveness: every frontend publishes a heartbeat on its own subject four times a second, and every
 * engine watches them, so an engine can stop a request whose frontend — the only one that would have
 * read its tokens — is gone, instead of generating (or, after the ack wait, replaying) it for nobody.
 */
import { randomUUID } from 'node:crypto';
import type { Subscription } from '@nats-io/transport-node';
import type { ClusterConnection } from './connect.ts';

/**
 * A frontend's heartbeat: a message on its subject every `intervalMs` while it runs, carrying this
 * process's life (a random id), so a frontend restarted under the same name is told apart from the one
 * that died: the dead one's requests are orphans even though its name is heard again.
 */
export class FrontendHeartbeat {
  readonly #timer: NodeJS.Timeout;
  /** This process's life (random, per start). */
  readonly life = randomUUID();

  constructor(conn: ClusterConnection, frontendId: string, intervalMs = 250) {
    const subject = conn.names.frontendSubject(frontendId);
    const payload = new TextEncoder().encode(this.life);
    const beat = () => {
      if (conn.isConnected) conn.nc.publish(subject, payload);
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
  /** The life each frontend's latest heartbeat carried. */
  readonly #life = new Map<string, string>();
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
        const life = msg.data.length > 0 && msg.data.length <= 64 ? new TextDecoder().decode(msg.data) : undefined;
        if (frontendId !== undefined) this.observe(frontendId, life);
      },
    });
  }

  /** Records a heartbeat, with the life it carried (the subscription calls this; tests may too). */
  observe(frontendId: string, life?: string): void {
    const now = this.#now();
    if (now - this.#lastAnyMs > SILENCE_MS) this.#resumedAtMs = now;
    this.#lastAnyMs = now;
    this.#lastSeen.set(frontendId, now);
    if (life !== undefined) this.#life.set(frontendId, life);
  }

  /** The life `frontendId`'s latest heartbeat carried (undefined before any). */
  lifeOf(frontendId: string): string | undefined {
    return this.#life.get(frontendId);
  }

  /**
   * True when `frontendId` has said nothing for `ttlMs`, counting from `sinceMs` at the earliest (when
   * the engine took the request: a frontend it never heard from gets that long too) and from when
   * heartbeats last resumed after a silence; never while no heartbeat at all is arriving. Also true at once
   * when `life` (the life seen when the request was taken) is not the life heard now under that name.
   */
  isGone(frontendId: string, sinceMs: number, ttlMs: number, life?: string): boolean {
    // Another life heartbeats under its name: the frontend that queued the request died and restarted.
    const current = this.#life.get(frontendId);
    if (life !== undefined && current !== undefined && current !== life) return true;
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
