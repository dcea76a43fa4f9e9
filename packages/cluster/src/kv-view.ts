import { ClusterPrefixIndex, type ApplyOutcome, type KvEventBatch } from '@switchyard/kv-cache';
import type { KvEventFollower, KvEventStream } from './kv-event-stream.ts';

export interface KvViewOptions {
  /** The KV namespace hex this frontend routes for (batches of other namespaces are ignored). */
  readonly namespace: string;
  /** Largest number of (block hash, engine) pairs the index keeps. */
  readonly maxEntries: number;
  /** At most one snapshot request per engine per this interval (a replay of old history meets many gaps). */
  readonly snapshotRequestIntervalMs: number;
  readonly now?: () => number;
}

/**
 * A frontend's view of every engine's KV cache: follows the KV event stream from its oldest kept batch
 * into a ClusterPrefixIndex, and asks an engine for a snapshot whenever the index reports a gap in that
 * engine's numbers (lost events, or a reader that started after the stream dropped the early ones).
 */
export class KvView {
  readonly index: ClusterPrefixIndex;
  readonly #stream: KvEventStream;
  readonly #opts: KvViewOptions;
  readonly #lastRequest = new Map<string, number>();
  #follower: KvEventFollower | undefined;
  #numGaps = 0;
  #numSnapshotRequests = 0;
  #lastBatchAtMs = 0;
  #lastLagMs: number | undefined;

  private constructor(stream: KvEventStream, options: KvViewOptions) {
    this.#stream = stream;
    this.#opts = options;
    this.index = new ClusterPrefixIndex({ namespace: options.namespace, maxEntries: options.maxEntries });
  }

  static async open(stream: KvEventStream, options: KvViewOptions): Promise<KvView> {
    const view = new KvView(stream, options);
    view.#follower = await stream.follow((batch) => view.#apply(batch));
    return view;
  }

  get numGaps(): number {
    return this.#numGaps;
  }

  get numSnapshotRequests(): number {
    return this.#numSnapshotRequests;
  }

  get numBatches(): number {
    return this.#follower?.numBatches ?? 0;
  }

  get numInvalid(): number {
    return this.#follower?.numInvalid ?? 0;
  }

  /** When the last batch arrived (ms, the view's clock); 0 before the first. */
  get lastBatchAtMs(): number {
    return this.#lastBatchAtMs;
  }

  /**
   * Milliseconds from the engine taking the latest batch applied to its application here (clocks of
   * two machines: meaningful to the extent they agree); undefined before the first batch. Batches
   * replayed from the stream's history count too, so it starts high on a frontend that starts late.
   */
  get lastLagMs(): number | undefined {
    return this.#lastLagMs;
  }

  async stop(): Promise<void> {
    await this.#follower?.stop();
  }

  #apply(batch: KvEventBatch): ApplyOutcome {
    const now = (this.#opts.now ?? Date.now)();
    this.#lastBatchAtMs = now;
    this.#lastLagMs = Math.max(0, now - batch.atMs);
    const outcome = this.index.apply(batch);
    if (!outcome.ok && (outcome.reason === 'gap' || outcome.reason === 'untrusted')) {
      if (outcome.reason === 'gap') this.#numGaps++;
      const last = this.#lastRequest.get(batch.engineId) ?? Number.NEGATIVE_INFINITY;
      if (now - last >= this.#opts.snapshotRequestIntervalMs) {
        this.#lastRequest.set(batch.engineId, now);
        this.#numSnapshotRequests++;
        this.#stream.requestSnapshot(batch.engineId);
      }
    }
    return outcome;
  }
}
