/**
 * Write-behind offload of evicted KV pages to a page store. `offer` is called synchronously from the
 * block pool's eviction (inside a step), so it only queues; pushes happen later on timers, one at a
 * time, in batches of at least `minBatchBytes`. Never on a step's critical path, never unbounded: past
 * `maxQueuedBytes` the oldest queued pages are dropped (they are a cache; dropping loses nothing).
 */
import type { KvPage } from '@switchyard/kv-cache';
import type { KvPageClient } from '@switchyard/rpc';
import { pagesToExtents } from './page-extents.ts';

export interface PageOffloaderOptions {
  /** The engine's KV namespace hex (salt ''). */
  readonly namespace: string;
  /** The page store to push to now, if any is live. */
  readonly target: () => Promise<KvPageClient> | undefined;
  readonly maxQueuedBytes: number;
  readonly minBatchBytes: number;
  readonly flushIntervalMs: number;
  readonly deadlineMs: number;
  readonly onError?: (error: Error) => void;
}

export interface OffloadCounters {
  numOffered: number;
  numPushed: number;
  numAccepted: number;
  numDropped: number;
  numBytesPushed: number;
  numFailedPushes: number;
}

export class PageOffloader {
  readonly #opts: PageOffloaderOptions;
  readonly counters: OffloadCounters = {
    numOffered: 0,
    numPushed: 0,
    numAccepted: 0,
    numDropped: 0,
    numBytesPushed: 0,
    numFailedPushes: 0,
  };
  #queue: KvPage[] = [];
  #queuedBytes = 0;
  #pushing: Promise<void> | undefined;
  readonly #timer: NodeJS.Timeout;
  #stopped = false;

  constructor(options: PageOffloaderOptions) {
    this.#opts = options;
    this.#timer = setInterval(() => this.#flush(), options.flushIntervalMs);
    this.#timer.unref();
  }

  get numQueuedBytes(): number {
    return this.#queuedBytes;
  }

  /** Queues an evicted page (O(1) amortised; drops the oldest past the byte bound). */
  readonly offer = (page: KvPage): void => {
    if (this.#stopped) return;
    this.counters.numOffered++;
    this.#queue.push(page);
    this.#queuedBytes += page.data.byteLength;
    while (this.#queuedBytes > this.#opts.maxQueuedBytes && this.#queue.length > 0) {
      const dropped = this.#queue.shift();
      this.#queuedBytes -= dropped?.data.byteLength ?? 0;
      this.counters.numDropped++;
    }
    if (this.#queuedBytes >= this.#opts.minBatchBytes) setImmediate(() => this.#flush());
  };

  /** Stops taking pages and waits for the push in flight (pages still queued are dropped). */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#timer);
    await this.#pushing;
    this.counters.numDropped += this.#queue.length;
    this.#queue = [];
    this.#queuedBytes = 0;
  }

  #flush(): void {
    if (this.#pushing !== undefined || this.#queue.length === 0 || this.#stopped) return;
    const target = this.#opts.target();
    if (target === undefined) {
      // No store live: what is queued has nowhere to go.
      this.counters.numDropped += this.#queue.length;
      this.#queue = [];
      this.#queuedBytes = 0;
      return;
    }
    const batch = this.#queue;
    this.#queue = [];
    this.#queuedBytes = 0;
    this.#pushing = this.#push(target, batch).finally(() => {
      this.#pushing = undefined;
    });
  }

  async #push(target: Promise<KvPageClient>, pages: KvPage[]): Promise<void> {
    try {
      const client = await target;
      const extents = pagesToExtents(pages, this.#opts.minBatchBytes);
      const result = await client.pushPages(
        { namespace: this.#opts.namespace, extents },
        { deadlineMs: this.#opts.deadlineMs },
      );
      this.counters.numPushed += pages.length;
      this.counters.numAccepted += result.acceptedHashes.length;
      this.counters.numBytesPushed += extents.reduce((n, e) => n + e.data.byteLength, 0);
    } catch (err) {
      this.counters.numFailedPushes++;
      this.counters.numDropped += pages.length;
      this.#opts.onError?.(err instanceof Error ? err : new Error(String(err)));
    }
  }
}
