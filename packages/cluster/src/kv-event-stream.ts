import { DeliverPolicy, DiscardPolicy, RetentionPolicy, StorageType, type StreamConfig } from '@nats-io/jetstream';
import { nanos, type Subscription } from '@nats-io/transport-node';
import { KvEventBatcher, type BlockHash, type BlockPoolEvent, type KvEventBatch } from '@switchyard/kv-cache';
import type { ClusterConnection } from './connect.ts';
import { decodeKvEventBatch, encodeKvEventBatch } from './kv-event-message.ts';
import { ensureStream, storeError } from './streams.ts';

export interface KvEventStreamOptions {
  /** How long batches are kept for late readers (they start from the oldest kept, then a snapshot). */
  readonly maxAgeMs: number;
  /** Bytes kept at most (oldest batches go first). */
  readonly maxBytes: number;
  readonly numReplicas: number;
}

export const DEFAULT_KV_EVENT_STREAM_OPTIONS: KvEventStreamOptions = Object.freeze({
  maxAgeMs: 10 * 60_000,
  maxBytes: 256 * 2 ** 20,
  numReplicas: 1,
});

export interface KvEventFollower {
  /** Batches handed to `onBatch` so far. */
  readonly numBatches: number;
  /** Messages that were not valid batches (dropped, counted). */
  readonly numInvalid: number;
  stop(): Promise<void>;
}

/**
 * The KV event stream, SWITCHYARD_KV_EVENTS: every engine's batches on `switchyard.v1.kv.events.<engine>`,
 * kept with bounded age and size (limits retention, oldest dropped first) so that a frontend that starts
 * late, or sees a gap, rebuilds its view by replay and asks the engine for a snapshot where the replay
 * does not reach back far enough. Built by `open`, which creates or updates the stream.
 */
export class KvEventStream {
  readonly #conn: ClusterConnection;

  private constructor(conn: ClusterConnection) {
    this.#conn = conn;
  }

  static async open(conn: ClusterConnection, options: Partial<KvEventStreamOptions> = {}): Promise<KvEventStream> {
    const o = { ...DEFAULT_KV_EVENT_STREAM_OPTIONS, ...options };
    const config = {
      name: conn.names.kvEventStream,
      subjects: [conn.names.kvEventSubjects],
      retention: RetentionPolicy.Limits,
      storage: StorageType.File,
      discard: DiscardPolicy.Old,
      max_age: nanos(o.maxAgeMs),
      max_bytes: o.maxBytes,
      num_replicas: o.numReplicas,
    } as StreamConfig;
    await ensureStream(conn, config);
    return new KvEventStream(conn);
  }

  /** Stores a batch; resolves with its stream sequence number. */
  async publish(batch: KvEventBatch): Promise<number> {
    try {
      const ack = await this.#conn.js.publish(
        this.#conn.names.kvEventSubject(batch.engineId),
        encodeKvEventBatch(batch),
        {
          // Engine id, epoch and number identify a batch: a retried publish is stored once.
          msgID: `${batch.engineId}:${batch.epoch}:${batch.seq}`,
          timeout: this.#conn.requestTimeoutMs,
        },
      );
      return ack.seq;
    } catch (error) {
      throw storeError(`publish KV events of ${batch.engineId}`, this.#conn, error);
    }
  }

  /**
   * Replays every batch the stream still holds, oldest first, then follows new ones, handing each to
   * `onBatch` in stream order. Malformed messages are counted and skipped.
   */
  async follow(onBatch: (batch: KvEventBatch) => void): Promise<KvEventFollower> {
    const consumer = await this.#conn.js.consumers.get(this.#conn.names.kvEventStream, {
      filter_subjects: this.#conn.names.kvEventSubjects,
      deliver_policy: DeliverPolicy.All,
    });
    const messages = await consumer.consume();
    let numBatches = 0;
    let numInvalid = 0;
    const done = (async () => {
      for await (const m of messages) {
        let batch: KvEventBatch;
        try {
          batch = decodeKvEventBatch(m.data);
        } catch {
          numInvalid++;
          continue;
        }
        numBatches++;
        onBatch(batch);
      }
    })();
    return {
      get numBatches() {
        return numBatches;
      },
      get numInvalid() {
        return numInvalid;
      },
      async stop() {
        await messages.close();
        await done;
      },
    };
  }

  /** Asks an engine to publish a snapshot of its blocks (fire and forget: the snapshot arrives on the stream). */
  requestSnapshot(engineId: string): void {
    this.#conn.nc.publish(this.#conn.names.kvSnapshotSubject(engineId));
  }

  /** Engine side: calls `onRequest` whenever a frontend asks this engine for a snapshot. */
  onSnapshotRequest(engineId: string, onRequest: () => void): Subscription {
    return this.#conn.nc.subscribe(this.#conn.names.kvSnapshotSubject(engineId), {
      callback: (error) => {
        if (!error) onRequest();
      },
    });
  }
}

export interface KvEventPublisherOptions {
  readonly engineId: string;
  /** Fresh per engine start (a random id). */
  readonly epoch: string;
  /** The engine's KV namespace hex (no tenant salt). */
  readonly namespace: string;
  /** How often pending events are published. */
  readonly intervalMs: number;
  /** How often a full snapshot is published regardless (so readers recover from a gap without asking). */
  readonly snapshotIntervalMs: number;
  /** Every hash the engine's cache holds now. */
  readonly heldHashes: () => readonly BlockHash[];
  readonly log?: (line: string) => void;
}

/**
 * An engine's side of the KV events: collects its block pool's events (`add`, synchronous, on the step's
 * path, so it only appends), publishes them in numbered batches every `intervalMs`, publishes a
 * snapshot at start, every `snapshotIntervalMs` and when a frontend asks for one. Publishing never blocks
 * a step: a failed publish is logged and followed by a snapshot, so readers see the gap and recover.
 */
export class KvEventPublisher {
  readonly #stream: KvEventStream;
  readonly #opts: KvEventPublisherOptions;
  readonly #batcher: KvEventBatcher;
  readonly #timer: NodeJS.Timeout;
  readonly #snapshotTimer: NodeJS.Timeout;
  readonly #requests: Subscription;
  #chain: Promise<void> = Promise.resolve();
  #snapshotWanted = true;
  #numPublished = 0;
  #numFailed = 0;
  #stopped = false;

  constructor(stream: KvEventStream, options: KvEventPublisherOptions) {
    this.#stream = stream;
    this.#opts = options;
    this.#batcher = new KvEventBatcher({
      engineId: options.engineId,
      epoch: options.epoch,
      namespace: options.namespace,
    });
    this.#timer = setInterval(() => this.#flush(), options.intervalMs);
    this.#snapshotTimer = setInterval(() => (this.#snapshotWanted = true), options.snapshotIntervalMs);
    this.#requests = stream.onSnapshotRequest(options.engineId, () => {
      this.#snapshotWanted = true;
      this.#flush();
    });
    this.#flush();
  }

  readonly add = (event: BlockPoolEvent): void => this.#batcher.add(event);

  get numPublished(): number {
    return this.#numPublished;
  }

  get numFailed(): number {
    return this.#numFailed;
  }

  /** Publishes what is pending now and waits until every publish so far has finished. */
  async flush(): Promise<void> {
    this.#flush();
    await this.#chain;
  }

  /**
   * Publishes what is pending, then stops. With `cleared` (the engine is leaving) the last batch is an
   * empty snapshot instead, so every frontend drops this engine's blocks.
   */
  async stop(options: { readonly cleared?: boolean } = {}): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    clearInterval(this.#timer);
    clearInterval(this.#snapshotTimer);
    this.#requests.unsubscribe();
    this.#flush(true, options.cleared === true);
    await this.#chain;
  }

  #flush(final = false, cleared = false): void {
    if (this.#stopped && !final) return;
    const now = Date.now();
    const batch = cleared
      ? this.#batcher.takeSnapshot([], now)
      : this.#snapshotWanted
        ? this.#batcher.takeSnapshot(this.#opts.heldHashes(), now)
        : this.#batcher.takeBatch(now);
    this.#snapshotWanted = false;
    if (!batch) return;
    // Batches go out one after another, in number order.
    this.#chain = this.#chain.then(async () => {
      try {
        await this.#stream.publish(batch);
        this.#numPublished++;
      } catch (error) {
        this.#numFailed++;
        this.#snapshotWanted = true;
        this.#opts.log?.(
          `KV events: batch ${batch.seq} not published (${error instanceof Error ? error.message : String(error)}); a snapshot follows`,
        );
      }
    });
  }
}
