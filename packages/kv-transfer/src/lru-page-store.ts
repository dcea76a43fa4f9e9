/**
 * A page store's memory: encoded KV pages (the page codec, CRC-32 included) by block hash, bounded in
 * bytes, least recently used evicted first (LMCache's local store; Mooncake's page store). Pure: no I/O,
 * no clock. Pages are kept encoded, so serving one is a copy into an extent, never a decode.
 *
 * Invariants: `#bytes` is the sum of the byte lengths of the pages held and never exceeds the capacity
 * after `put` returns; the Map's iteration order is least recently used first (`get` and `put` move an
 * entry to the end); every page held was verified (CRC-32, hash) when it was put.
 */
import type { BlockHash } from '@switchyard/kv-cache';

export interface StoredPage {
  readonly namespace: string;
  readonly encoded: Uint8Array;
}

export type StoreEvent = {
  readonly type: 'stored' | 'removed';
  readonly namespace: string;
  readonly blockHash: BlockHash;
};

export interface LruPageStoreOptions {
  readonly capacityBytes: number;
  /** Told synchronously of each page stored and evicted (feeds the store's KV events). */
  readonly onEvent?: (event: StoreEvent) => void;
}

export class LruPageStore {
  readonly capacityBytes: number;
  readonly #onEvent: ((event: StoreEvent) => void) | undefined;
  readonly #pages = new Map<BlockHash, StoredPage>();
  #bytes = 0;
  #numEvicted = 0;

  constructor(options: LruPageStoreOptions) {
    if (!Number.isSafeInteger(options.capacityBytes) || options.capacityBytes < 1)
      throw new RangeError(`capacityBytes must be a positive integer, got ${options.capacityBytes}`);
    this.capacityBytes = options.capacityBytes;
    this.#onEvent = options.onEvent;
  }

  get numBytes(): number {
    return this.#bytes;
  }

  get numPages(): number {
    return this.#pages.size;
  }

  /** Pages evicted to stay under the capacity since start. */
  get numEvicted(): number {
    return this.#numEvicted;
  }

  /**
   * Keeps a copy of an encoded page (already verified by the caller). False when it cannot fit at all;
   * re-putting a held hash only marks it recently used.
   */
  put(namespace: string, hash: BlockHash, encoded: Uint8Array): boolean {
    if (encoded.byteLength > this.capacityBytes) return false;
    const held = this.#pages.get(hash);
    if (held) {
      this.#touch(hash, held);
      return true;
    }
    while (this.#bytes + encoded.byteLength > this.capacityBytes) this.#evictOldest();
    // NOTE: a copy, so a page never pins the whole multi-megabyte network buffer it arrived in.
    this.#pages.set(hash, { namespace, encoded: encoded.slice() });
    this.#bytes += encoded.byteLength;
    this.#onEvent?.({ type: 'stored', namespace, blockHash: hash });
    return true;
  }

  /** The leading run of `hashes` held under `namespace`, marked recently used; stops at the first miss. */
  getChain(namespace: string, hashes: readonly BlockHash[]): { hash: BlockHash; encoded: Uint8Array }[] {
    const out: { hash: BlockHash; encoded: Uint8Array }[] = [];
    for (const hash of hashes) {
      const page = this.#pages.get(hash);
      if (page?.namespace !== namespace) break;
      this.#touch(hash, page);
      out.push({ hash, encoded: page.encoded });
    }
    return out;
  }

  /** Every hash held under `namespace` (for a KV-event snapshot). */
  hashesOf(namespace: string): BlockHash[] {
    const out: BlockHash[] = [];
    for (const [hash, page] of this.#pages) if (page.namespace === namespace) out.push(hash);
    return out;
  }

  /** The namespaces of the pages held. */
  namespaces(): Set<string> {
    return new Set([...this.#pages.values()].map((p) => p.namespace));
  }

  #touch(hash: BlockHash, page: StoredPage): void {
    this.#pages.delete(hash);
    this.#pages.set(hash, page);
  }

  #evictOldest(): void {
    const oldest = this.#pages.entries().next();
    if (oldest.done === true) throw new Error('internal: store over capacity with no page to evict');
    const [hash, page] = oldest.value;
    this.#pages.delete(hash);
    this.#bytes -= page.encoded.byteLength;
    this.#numEvicted++;
    this.#onEvent?.({ type: 'removed', namespace: page.namespace, blockHash: hash });
  }
}
