/**
 * Frontend liveness: every frontend publishes a heartbeat on its own subject twice a second, and every
 * engine watches them, so an engine can stop a request whose frontend — the only one that would have
 * read its tokens — is gone, instead of generating (or, after the ack wait, replaying) it for nobody.
 */
import type { Subscription } from '@nats-io/transport-node';
import type { ClusterConnection } from './connect.ts';
import { FRONTEND_SUBJECTS, frontendSubject, unescapeToken } from './subjects.ts';

/** A frontend's heartbeat: an empty message on its subject every `intervalMs` while it runs. */
export class FrontendHeartbeat {
  readonly #timer: NodeJS.Timeout;

  constructor(conn: ClusterConnection, frontendId: string, intervalMs = 500) {
    const subject = frontendSubject(frontendId);
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

/** An engine's view of which frontends are alive: when each was last heard from. */
export class FrontendWatch {
  readonly #lastSeen = new Map<string, number>();
  readonly #subscription: Subscription;
  readonly #now: () => number;

  constructor(conn: ClusterConnection, now: () => number = Date.now) {
    this.#now = now;
    this.#subscription = conn.nc.subscribe(FRONTEND_SUBJECTS, {
      callback: (error, msg) => {
        if (error) return;
        const token = msg.subject.slice(msg.subject.lastIndexOf('.') + 1);
        try {
          this.observe(unescapeToken(token));
        } catch {
          // Not a subject a frontend could have used: ignored.
        }
      },
    });
  }

  /** Records a heartbeat (the subscription calls this; tests may too). */
  observe(frontendId: string): void {
    this.#lastSeen.set(frontendId, this.#now());
  }

  /**
   * True when `frontendId` has said nothing for `ttlMs`, counting from `sinceMs` at the earliest (when
   * the engine took the request: a frontend it never heard from gets that long too).
   */
  isGone(frontendId: string, sinceMs: number, ttlMs: number): boolean {
    const last = Math.max(this.#lastSeen.get(frontendId) ?? 0, sinceMs);
    return this.#now() - last > ttlMs;
  }

  stop(): void {
    this.#subscription.unsubscribe();
  }
}
