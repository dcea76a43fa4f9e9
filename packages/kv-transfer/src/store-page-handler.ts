/**
 * KvPageService over a page store: engines push pages they evict and fetch them back, like from a peer.
 */
import { InvalidArgumentError, MIN_EXTENT_BYTES } from '@switchyard/rpc';
import type { FetchPagesRequest, KvExtent, KvPageServiceHandler, PushPagesRequest } from '@switchyard/rpc';
import type { LruPageStore } from './lru-page-store.ts';
import { asBlockHashes, decodeExtentPage, encodedToExtent, PageRejectedError, splitExtent } from './page-extents.ts';

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
 * another namespace are absent to it). Push: every page is checked (CRC-32, the hash the extent names)
 * before it is kept; a bad page is refused, the rest are kept.
 */
export function storePageHandler(
  store: LruPageStore,
  counters: StoreCounters = newStoreCounters(),
  minExtentBytes = MIN_EXTENT_BYTES,
): KvPageServiceHandler {
  return {
    fetchPages: (request: FetchPagesRequest): KvExtent[] => {
      const hashes = parseHashes(request.blockHashes);
      const pages = store.getChain(request.namespace, hashes);
      counters.numFetches++;
      counters.numPagesServed += pages.length;
      return groupEncoded(pages, minExtentBytes);
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

function groupEncoded(pages: readonly { hash: string; encoded: Uint8Array }[], minExtentBytes: number): KvExtent[] {
  const extents: KvExtent[] = [];
  let run: { hash: string; encoded: Uint8Array }[] = [];
  let bytes = 0;
  const flush = () => {
    if (run.length === 0) return;
    extents.push(
      encodedToExtent(
        run,
        run.map((p) => p.encoded),
      ),
    );
    run = [];
    bytes = 0;
  };
  for (const page of pages) {
    const first = run[0];
    if (first !== undefined && (bytes >= minExtentBytes || first.encoded.byteLength !== page.encoded.byteLength))
      flush();
    run.push(page);
    bytes += page.encoded.byteLength;
  }
  flush();
  return extents;
}
