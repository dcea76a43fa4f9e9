/** A watched value: iterate for each change, read `current` any time, `stop` to end iteration. */
export interface Watch<T> extends AsyncIterable<T> {
  readonly current: T | undefined;
  stop(): Promise<void>;
}

/**
 * A single-reader async iterable of snapshots that coalesces: a slow reader gets the latest value, never
 * a backlog, so memory stays bounded however fast values are pushed.
 */
export class Snapshots<T> implements AsyncIterable<T> {
  #latest: { readonly value: T } | undefined;
  #version = 0;
  #closed = false;
  #wake: (() => void) | undefined;

  get current(): T | undefined {
    return this.#latest?.value;
  }

  get isClosed(): boolean {
    return this.#closed;
  }

  push(value: T): void {
    if (this.#closed) return;
    this.#latest = { value };
    this.#version++;
    this.#wake?.();
  }

  close(): void {
    this.#closed = true;
    this.#wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    let seen = 0;
    for (;;) {
      if (seen < this.#version && this.#latest) {
        seen = this.#version;
        yield this.#latest.value;
        continue;
      }
      if (this.#closed) return;
      await new Promise<void>((resolve) => (this.#wake = resolve));
      this.#wake = undefined;
    }
  }
}
