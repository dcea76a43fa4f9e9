/**
 * KvPageService over a page store: engines push pages they evict and fetch them back, like from a peer.
 */
import { InvalidArgumentError } from '@switchyard/rpc';
import type { FetchPagesRequest, KvExtent, KvPageServiceHandler, PushPagesRequest } from '@switchyard/rpc';
import type { LruPageStore } from './lru-page-store.ts';
import { asBlockHashes, decodeExtentPage, PageRejectedError, splitExtent } from './page-extents.ts';

export interface StoreCounters {
  numFetches: number;
  numPagesServed: number;
  numPagesPushed: number;
  numPagesRejected: number;
}

export function newStoreCounters(): StoreCounters {
  return { numFetches: 0, numPagesServed: 0, numPagesPushed: 0, numPagesRejected: 0 };
}

/**
 * Fetch: the leading run of requested blocks the store holds under the caller's namespace (pages of
 * another namespace are absent to it), one extent per page, each a view of the page as stored: no copy
 * here. The gRPC KvPageService coalesces them into ≥ 1 MiB messages (one copy); the bulk data plane
 * writes them back to back from these very buffers (none). Push: every page is checked (CRC-32, the
 * hash the extent names) before it is kept; a bad page is refused, the rest are kept.
 */
export function storePageHandler(
  store: LruPageStore,
  counters: StoreCounters = newStoreCounters(),
): KvPageServiceHandler {
  return {
    fetchPages: (request: FetchPagesRequest): KvExtent[] => {
      const hashes = parseHashes(request.blockHashes);
      const pages = store.getChain(request.namespace, hashes);
      counters.numFetches++;
      counters.numPagesServed += pages.length;
      // NOTE: views of stored pages stay valid: a stored page is never written, eviction only drops it.
      return pages.map((page) => ({ blockHashes: [page.hash], data: page.encoded }));
    },
    pushPages: (request: PushPagesRequest) => {
      const acceptedHashes: string[] = [];
      for (const extent of request.extents) {
        const hashes = parseHashes(extent.blockHashes);
        for (const [i, encoded] of splitExtent(extent).entries()) {
          const hash = hashes[i];
          if (hash === undefined) continue;
          try {
            decodeExtentPage(encoded, hash);
          } catch (err) {
            if (!(err instanceof PageRejectedError)) throw err;
            counters.numPagesRejected++;
            continue;
          }
          if (store.put(request.namespace, hash, encoded)) {
            acceptedHashes.push(hash);
            counters.numPagesPushed++;
          }
        }
      }
      return Promise.resolve({ acceptedHashes });
    },
  };
}

function parseHashes(hashes: readonly string[]) {
  try {
    return asBlockHashes(hashes);
  } catch (err) {
    throw new InvalidArgumentError(err instanceof Error ? err.message : String(err));
  }
}
