/**
 * KvPageService over an engine's KV cache: peers fetch the pages of blocks this engine has computed.
 */
import type { KvPageAccess } from '@switchyard/engine';
import { FailedPreconditionError, InvalidArgumentError } from '@switchyard/rpc';
import type { FetchPagesRequest, KvExtent, KvPageServiceHandler } from '@switchyard/rpc';
import { asBlockHashes, pagesToExtents } from './page-extents.ts';

export interface PageServingCounters {
  numFetches: number;
  numPagesServed: number;
  numBytesServed: number;
  numRefused: number;
}

/**
 * Serves `access`'s pages to peers of the same KV namespace (`namespace`: hex of model, weights digest,
 * KV dtype and block size). A peer of another namespace is refused with FAILED_PRECONDITION: its hashes
 * could never match, and a page of another model would be wrong attention state. Engines take no
 * pushed pages (that is a page store's job): PushPages keeps nothing.
 *
 * `minExtentBytes` groups the encoded pages into extents of at least that size (a copy). By default each
 * page is its own extent (its encoding, no further copy) and each transport groups them its own way: the
 * gRPC KvPageService coalesces them into ≥ 1 MiB messages, the bulk data plane writes them back to back.
 */
export function enginePageHandler(
  access: KvPageAccess,
  namespace: string,
  counters: PageServingCounters = newServingCounters(),
  minExtentBytes = 1,
): KvPageServiceHandler {
  return {
    fetchPages: (request: FetchPagesRequest): KvExtent[] => {
      checkNamespace(request.namespace, namespace, counters);
      let hashes;
      try {
        hashes = asBlockHashes(request.blockHashes);
      } catch (err) {
        throw new InvalidArgumentError(err instanceof Error ? err.message : String(err));
      }
      const pages = access.exportPages(hashes);
      counters.numFetches++;
      counters.numPagesServed += pages.length;
      const extents = pagesToExtents(pages, minExtentBytes);
      counters.numBytesServed += extents.reduce((n, e) => n + e.data.byteLength, 0);
      return extents;
    },
    pushPages: (request) => {
      checkNamespace(request.namespace, namespace, counters);
      return Promise.resolve({ acceptedHashes: [] });
    },
  };
}

export function newServingCounters(): PageServingCounters {
  return { numFetches: 0, numPagesServed: 0, numBytesServed: 0, numRefused: 0 };
}

export function checkNamespace(theirs: string, ours: string, counters?: PageServingCounters): void {
  if (theirs === ours) return;
  if (counters) counters.numRefused++;
  throw new FailedPreconditionError(
    `KV namespace mismatch: the peer asks for ${theirs.slice(0, 16)}…, this node holds ${ours.slice(0, 16)}… ` +
      '(another model, weights digest, KV dtype or block size)',
  );
}
