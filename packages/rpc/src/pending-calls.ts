/**
 * Requests sent on a stream and not yet answered, keyed by correlation id.
 *
 * Invariant: each entry settles exactly once — by its response, its deadline, its AbortSignal or
 * `failAll` — and is removed from the table (timer cleared, abort listener removed) when it does.
 */
import { CancelledError, DeadlineExceededError } from './errors.ts';

interface Entry<T> {
  readonly resolve: (value: T) => void;
  readonly reject: (err: Error) => void;
  readonly timer: NodeJS.Timeout;
  readonly signal: AbortSignal | undefined;
  readonly onAbort: () => void;
}

export class PendingCalls<T> {
  readonly #entries = new Map<number, Entry<T>>();

  get size(): number {
    return this.#entries.size;
  }

  /** Registers a call; the promise rejects with DeadlineExceededError after deadlineMs. */
  add(id: number, deadlineMs: number, signal: AbortSignal | undefined): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.reject(id, new DeadlineExceededError(`no answer to request ${id} within ${deadlineMs} ms`));
      }, deadlineMs);
      const onAbort = (): void => {
        this.reject(id, new CancelledError(`request ${id} aborted`, { cause: signal?.reason }));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#entries.set(id, { resolve, reject, timer, signal, onAbort });
    });
  }

  /** Settles a call with its answer. Returns false if it already settled (e.g. timed out). */
  resolve(id: number, value: T): boolean {
    const entry = this.#take(id);
    entry?.resolve(value);
    return entry !== undefined;
  }

  reject(id: number, err: Error): boolean {
    const entry = this.#take(id);
    entry?.reject(err);
    return entry !== undefined;
  }

  failAll(err: Error): void {
    for (const id of [...this.#entries.keys()]) this.reject(id, err);
  }

  #take(id: number): Entry<T> | undefined {
    const entry = this.#entries.get(id);
    if (entry === undefined) return undefined;
    this.#entries.delete(id);
    clearTimeout(entry.timer);
    entry.signal?.removeEventListener('abort', entry.onAbort);
    return entry;
  }
}
