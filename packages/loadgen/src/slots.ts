/**
 * A counting semaphore for `--max-concurrency`: at most `capacity` holders; waiters are served first in,
 * first out. Invariant: `#inUse ≤ capacity`, and a waiter exists only while every slot is in use.
 */
export class Slots {
  readonly #capacity: number;
  #inUse = 0;
  readonly #waiters: (() => void)[] = [];

  /** `Infinity` never makes anyone wait. */
  constructor(capacity: number) {
    if (!(capacity >= 1)) throw new RangeError(`capacity must be ≥ 1, got ${capacity}`);
    this.#capacity = capacity;
  }

  /** Resolves true once a slot is held, or false if `signal` aborts first (no slot is then held). */
  acquire(signal: AbortSignal): Promise<boolean> {
    if (signal.aborted) return Promise.resolve(false);
    if (this.#inUse < this.#capacity) {
      this.#inUse++;
      return Promise.resolve(true);
    }
    return new Promise((resolve) => {
      const grant = () => {
        signal.removeEventListener('abort', onAbort);
        resolve(true);
      };
      const onAbort = () => {
        const i = this.#waiters.indexOf(grant);
        if (i >= 0) this.#waiters.splice(i, 1);
        resolve(false);
      };
      this.#waiters.push(grant);
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Hands the slot to the longest waiter, or frees it. */
  release(): void {
    const next = this.#waiters.shift();
    if (next !== undefined) next();
    else this.#inUse--;
  }

  get inUse(): number {
    return this.#inUse;
  }
}
