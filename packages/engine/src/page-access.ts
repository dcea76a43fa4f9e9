import type { BlockHash, BlockPool, BlockPoolEvent, KvPage } from '@switchyard/kv-cache';
import type { PageStore } from './page-store.ts';

/** What an import did: pages now cached here, pages that already were, and why the rest were not taken. */
export interface ImportResult {
  readonly numImported: number;
  readonly numPresent: number;
  /** Pages left out: the pool had no free block for them (the prefix stops there). */
  readonly numNoRoom: number;
}

/** A cached block the pool is about to reuse, with its page (no longer referenced by the engine). */
export type EvictedPage = KvPage;

/**
 * The engine's KV pages as other nodes see them: export the pages of cached blocks by hash (a peer's
 * fetch), import pages fetched from a peer or a page store as cached blocks (so the scheduler's prefix
 * lookup finds them as if computed here), and hand over pages of evicted blocks (offload to a store).
 *
 * Invariants: an imported page is registered in the block pool under its hash and left free-but-cached
 * (ref count 0, at the free queue's tail, prefix head freed last so it is evicted last), exactly like a
 * block a finished sequence computed; the page data is written before the hash is findable by anyone
 * else (all of it happens in one synchronous call). Runs on the engine's thread between awaits, so a
 * step in flight never sees a block it holds change: only free blocks are taken.
 */
export class KvPageAccess {
  readonly #pool: BlockPool;
  readonly #pages: PageStore;
  #onEvicted: ((page: EvictedPage) => void) | undefined;

  constructor(pool: BlockPool, pages: PageStore) {
    this.#pool = pool;
    this.#pages = pages;
  }

  get blockSize(): number {
    return this.#pool.blockSize;
  }

  /** Floats per page (all layers' K and V of one block). */
  get pageFloats(): number {
    return this.#pages.pageFloats;
  }

  /** Bytes of one page's K/V data. */
  get pageBytes(): number {
    return 4 * this.#pages.pageFloats;
  }

  /** How many leading blocks of `hashes` are cached here (hash registered, page held). */
  numLeadingCached(hashes: readonly BlockHash[]): number {
    let n = 0;
    for (const hash of hashes) {
      const id = this.#pool.cachedBlockOf(hash);
      if (id === undefined || this.#pages.page(id) === undefined) break;
      n++;
    }
    return n;
  }

  /** The pages of the leading blocks of `hashes` cached here, in order, as copies (stops at the first miss). */
  exportPages(hashes: readonly BlockHash[]): KvPage[] {
    const out: KvPage[] = [];
    for (const hash of hashes) {
      const id = this.#pool.cachedBlockOf(hash);
      const data = id === undefined ? undefined : this.#pages.page(id);
      if (id === undefined || data === undefined) break;
      out.push({ hash, tokens: this.#pool.blockTokens(id), data: data.slice() });
    }
    return out;
  }

  /**
   * Caches `pages` (a prefix in order, already verified by the caller against the hashes and tokens it
   * expects) as free-but-cached blocks. Stops when the pool has no free block left. Throws RangeError
   * for a page of the wrong shape (a bug or a peer of another layout; nothing is changed for it).
   */
  importPages(pages: readonly KvPage[]): ImportResult {
    const taken: number[] = [];
    let numPresent = 0;
    let numNoRoom = 0;
    for (const [i, page] of pages.entries()) {
      if (page.tokens.length !== this.#pool.blockSize || page.data.length !== this.#pages.pageFloats) {
        this.#release(taken);
        throw new RangeError(
          `page ${i} has ${page.tokens.length} tokens and ${page.data.length} floats; this engine's pages hold ` +
            `${this.#pool.blockSize} tokens and ${this.#pages.pageFloats} floats`,
        );
      }
      if (this.#pool.cachedBlockOf(page.hash) !== undefined) {
        numPresent++;
        continue;
      }
      const got = this.#pool.allocate(1);
      const id = got.ok ? got.blockIds[0] : undefined;
      if (id === undefined) {
        numNoRoom = pages.length - i;
        break;
      }
      this.#pages.writePage(id, page.data);
      this.#pool.cacheFullBlock(id, page.hash, page.tokens, 0);
      taken.push(id);
    }
    this.#release(taken);
    return { numImported: taken.length, numPresent, numNoRoom };
  }

  /**
   * Hands every evicted block's page to `listener` (offload). Without a listener evicted pages are simply
   * overwritten in place; with one, the page's storage goes to the listener and the block gets fresh storage.
   */
  onEvicted(listener: ((page: EvictedPage) => void) | undefined): void {
    this.#onEvicted = listener;
  }

  /** Fed every block pool event by the engine. */
  readonly handlePoolEvent = (event: BlockPoolEvent): void => {
    if (event.type !== 'removed' || this.#onEvicted === undefined) return;
    const data = this.#pages.detach(event.blockId);
    if (data === undefined) return;
    this.#onEvicted({ hash: event.blockHash, tokens: this.#pool.blockTokens(event.blockId), data });
  };

  /** Frees imported blocks tail first, so the prefix's head stays cached longest. */
  #release(blockIds: readonly number[]): void {
    this.#pool.free(blockIds.toReversed());
  }
}
