import type { RequestQueue } from './request-queue.ts';

/**
 * The JetStream backlog of one model's shared consumer (requests no engine has taken yet), polled every
 * `intervalMs` so a metrics callback can read it synchronously. A failed poll keeps the last value: the
 * backlog is a gauge, and a stale value for one interval beats a gap. One poll in flight at a time, each
 * bounded by the connection's JetStream timeout.
 */
export class QueueBacklog {
  readonly #queue: RequestQueue;
  readonly #model: string;
  readonly #timer: NodeJS.Timeout;
  #value = 0;
  #polling = false;

  constructor(queue: RequestQueue, model: string, intervalMs: number) {
    this.#queue = queue;
    this.#model = model;
    this.#timer = setInterval(() => void this.poll(), intervalMs);
    this.#timer.unref();
  }

  /** Requests waiting in the queue at the last successful poll. */
  get numWaiting(): number {
    return this.#value;
  }

  async poll(): Promise<void> {
    if (this.#polling) return;
    this.#polling = true;
    try {
      this.#value = await this.#queue.numWaiting(this.#model);
    } catch {
      // Keep the last value (see the class comment).
    } finally {
      this.#polling = false;
    }
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}
