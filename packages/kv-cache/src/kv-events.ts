/**
 * KV events: what one engine's cache stored and removed, in batches numbered per engine, so every
 * frontend can keep a cluster-wide view of which engine holds which prefix blocks (NVIDIA Dynamo's KV
 * events). Pure: the batcher collects the block pool's events and the caller publishes the batches.
 *
 * A batch carries the engine's `epoch` (a fresh id per engine start) and a sequence number that starts
 * at 1 in each epoch and grows by one per batch; a reader that sees a number it did not expect knows it
 * missed something and must not trust that engine's entries until a snapshot batch (`snapshot: true`,
 * every hash the engine holds) resets them.
 */
import type { BlockHash } from './block-hash.ts';
import type { BlockPoolEvent } from './block-pool.ts';

export interface KvEventOp {
  readonly type: 'stored' | 'removed';
  /** Block hashes in the order the pool reported them. */
  readonly hashes: readonly BlockHash[];
}

export interface KvEventBatch {
  readonly engineId: string;
  /** Fresh per engine start: a restarted engine's numbers start again at 1 under a new epoch. */
  readonly epoch: string;
  /** 1, 2, 3, … within the epoch. */
  readonly seq: number;
  /** Hex of the KV namespace (model, weights digest, KV dtype, block size, salt) the hashes belong to. */
  readonly namespace: string;
  /** True: `ops` is one `stored` op listing every block the engine holds; replaces what a reader knew. */
  readonly snapshot: boolean;
  /** When the engine took the batch (its wall clock, ms since the epoch): readers measure event lag. */
  readonly atMs: number;
  readonly ops: readonly KvEventOp[];
}

export interface KvEventBatcherOptions {
  readonly engineId: string;
  readonly epoch: string;
  readonly namespace: string;
}

/**
 * Collects block pool events between publishes. Consecutive events of one type share an op, so a prefill
 * that stores 32 blocks is one op of 32 hashes; order across types is kept (a hash stored then removed
 * in one batch ends removed).
 */
export class KvEventBatcher {
  readonly #opts: KvEventBatcherOptions;
  #ops: { type: 'stored' | 'removed'; hashes: BlockHash[] }[] = [];
  #seq = 0;

  constructor(options: KvEventBatcherOptions) {
    this.#opts = options;
  }

  /** Events waiting for the next batch. */
  get numPending(): number {
    return this.#ops.reduce((n, op) => n + op.hashes.length, 0);
  }

  /** The sequence number of the last batch handed out (0 before the first). */
  get seq(): number {
    return this.#seq;
  }

  readonly add = (event: BlockPoolEvent): void => {
    const last = this.#ops.at(-1);
    if (last?.type === event.type) last.hashes.push(event.blockHash);
    else this.#ops.push({ type: event.type, hashes: [event.blockHash] });
  };

  /** The events since the last batch, numbered, stamped `nowMs`; undefined when there are none. */
  takeBatch(nowMs: number): KvEventBatch | undefined {
    if (this.#ops.length === 0) return undefined;
    const ops = this.#ops;
    this.#ops = [];
    return this.#batch(false, ops, nowMs);
  }

  /**
   * A snapshot of everything the engine holds now (`held`), numbered in the same sequence. Pending
   * events are folded into it (they are part of what is held), so none is published twice.
   */
  takeSnapshot(held: readonly BlockHash[], nowMs: number): KvEventBatch {
    this.#ops = [];
    return this.#batch(true, [{ type: 'stored', hashes: [...held] }], nowMs);
  }

  #batch(snapshot: boolean, ops: readonly KvEventOp[], atMs: number): KvEventBatch {
    const { engineId, epoch, namespace } = this.#opts;
    return { engineId, epoch, seq: ++this.#seq, namespace, snapshot, atMs, ops };
  }
}
