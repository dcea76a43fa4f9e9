/**
 * The cluster prefix index a frontend keeps from every engine's KV events: block hash → the engines
 * that hold it, so a request can go to the engine that already has the longest part of its prefix.
 * Pure and bounded: at most `maxEntries` (hash, engine) pairs; past that the least recently stored hashes
 * are forgotten (the index is a routing hint — forgetting costs a cache hit, never correctness).
 *
 * Invariants (kept by this class):
 * - `#holders.get(h)` contains engine e ⇔ `#engines.get(e).hashes` contains h; `#numEntries` counts the pairs.
 * - An engine is `trusted` only while it has seen every batch of its epoch since a snapshot or since
 *   batch 1; an untrusted engine holds no entries (a view with a hole in it would route wrongly) until a
 *   snapshot arrives.
 * - `#holders` iterates in the order hashes were last stored (oldest first), which is the eviction order.
 */
import type { BlockHash } from './block-hash.ts';
import type { KvEventBatch } from './kv-events.ts';

export interface PrefixIndexOptions {
  /** Hex of the KV namespace this frontend serves; batches of another namespace are refused. */
  readonly namespace: string;
  /** Largest number of (hash, engine) pairs kept. */
  readonly maxEntries: number;
}

/** What applying a batch did. A `gap` means the engine's entries were dropped until its next snapshot. */
export type ApplyOutcome =
  | { readonly ok: true; readonly kind: 'applied' | 'duplicate' }
  | {
      readonly ok: false;
      readonly reason: 'gap';
      readonly engineId: string;
      readonly expectedSeq: number;
      readonly seq: number;
    }
  | { readonly ok: false; readonly reason: 'untrusted'; readonly engineId: string }
  | { readonly ok: false; readonly reason: 'namespace'; readonly engineId: string };

interface EngineView {
  epoch: string;
  seq: number;
  trusted: boolean;
  readonly hashes: Set<BlockHash>;
}

export interface EngineIndexState {
  readonly epoch: string;
  readonly seq: number;
  readonly trusted: boolean;
  readonly numBlocks: number;
}

export class ClusterPrefixIndex {
  readonly #opts: PrefixIndexOptions;
  readonly #holders = new Map<BlockHash, Set<string>>();
  readonly #engines = new Map<string, EngineView>();
  #numEntries = 0;
  #numEvicted = 0;

  constructor(options: PrefixIndexOptions) {
    if (!Number.isInteger(options.maxEntries) || options.maxEntries < 1) {
      throw new RangeError(`maxEntries must be an integer ≥ 1, got ${options.maxEntries}`);
    }
    this.#opts = options;
  }

  /** (hash, engine) pairs held. */
  get numEntries(): number {
    return this.#numEntries;
  }

  /** Distinct block hashes held. */
  get numHashes(): number {
    return this.#holders.size;
  }

  /** Pairs forgotten to stay within `maxEntries`. */
  get numEvicted(): number {
    return this.#numEvicted;
  }

  engines(): ReadonlyMap<string, EngineIndexState> {
    return new Map(
      [...this.#engines].map(([id, v]) => [
        id,
        { epoch: v.epoch, seq: v.seq, trusted: v.trusted, numBlocks: v.hashes.size },
      ]),
    );
  }

  apply(batch: KvEventBatch): ApplyOutcome {
    const { engineId } = batch;
    if (batch.namespace !== this.#opts.namespace) return { ok: false, reason: 'namespace', engineId };
    let view = this.#engines.get(engineId);
    if (batch.snapshot) {
      view = this.#reset(engineId, batch.epoch, batch.seq, true);
    } else if (!view || view.epoch !== batch.epoch) {
      // A new engine, or a restarted one: only batch 1 of its epoch starts a complete view.
      view = this.#reset(engineId, batch.epoch, batch.seq, batch.seq === 1);
      if (!view.trusted) return { ok: false, reason: 'gap', engineId, expectedSeq: 1, seq: batch.seq };
    } else if (batch.seq <= view.seq) {
      return { ok: true, kind: 'duplicate' };
    } else if (batch.seq !== view.seq + 1) {
      const expectedSeq = view.seq + 1;
      this.#reset(engineId, batch.epoch, batch.seq, false);
      return { ok: false, reason: 'gap', engineId, expectedSeq, seq: batch.seq };
    } else {
      view.seq = batch.seq;
      if (!view.trusted) return { ok: false, reason: 'untrusted', engineId };
    }
    for (const op of batch.ops) {
      for (const hash of op.hashes) {
        if (op.type === 'stored') this.#store(hash, engineId, view);
        else this.#remove(hash, engineId, view);
      }
    }
    this.#evict();
    return { ok: true, kind: 'applied' };
  }

  /** Forgets an engine (it left the registry, or drained). */
  removeEngine(engineId: string): void {
    const view = this.#engines.get(engineId);
    if (!view) return;
    for (const hash of [...view.hashes]) this.#remove(hash, engineId, view);
    this.#engines.delete(engineId);
  }

  /**
   * For a request's block hashes (its prefix chain, in order), how many leading blocks each engine holds.
   * Engines holding none are absent.
   */
  overlap(hashes: readonly BlockHash[]): Map<string, number> {
    return this.runsFrom(hashes, 0);
  }

  /**
   * For a request's block hashes, the engines holding block `from` and, for each, the end (exclusive
   * block index) of its unbroken run from there: what a fetcher that already has blocks [0, from) can
   * get from each. Engines not holding block `from` are absent.
   */
  runsFrom(hashes: readonly BlockHash[], from: number): Map<string, number> {
    const result = new Map<string, number>();
    let alive: string[] = [...(this.#holders.get(hashes[from] ?? ('' as BlockHash)) ?? [])];
    for (let i = from; i < hashes.length && alive.length > 0; i++) {
      const holders = this.#holders.get(hashes[i] as BlockHash);
      alive = alive.filter((engine) => holders?.has(engine) === true);
      for (const engine of alive) result.set(engine, i + 1);
    }
    return result;
  }

  #reset(engineId: string, epoch: string, seq: number, trusted: boolean): EngineView {
    this.removeEngine(engineId);
    const view: EngineView = { epoch, seq, trusted, hashes: new Set() };
    this.#engines.set(engineId, view);
    return view;
  }

  #store(hash: BlockHash, engineId: string, view: EngineView): void {
    const holders = this.#holders.get(hash) ?? new Set<string>();
    // Re-insert to mark the hash as the most recently stored (eviction takes the oldest first).
    this.#holders.delete(hash);
    this.#holders.set(hash, holders);
    if (holders.has(engineId)) return;
    holders.add(engineId);
    view.hashes.add(hash);
    this.#numEntries++;
  }

  #remove(hash: BlockHash, engineId: string, view: EngineView): void {
    const holders = this.#holders.get(hash);
    if (!holders?.delete(engineId)) return;
    view.hashes.delete(hash);
    this.#numEntries--;
    if (holders.size === 0) this.#holders.delete(hash);
  }

  #evict(): void {
    for (const [hash, holders] of this.#holders) {
      if (this.#numEntries <= this.#opts.maxEntries) return;
      for (const engineId of holders) this.#engines.get(engineId)?.hashes.delete(hash);
      this.#numEntries -= holders.size;
      this.#numEvicted += holders.size;
      this.#holders.delete(hash);
    }
  }
}
