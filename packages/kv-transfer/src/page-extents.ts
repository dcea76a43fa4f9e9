/**
 * KV pages ↔ KvPageService extents. An extent is the concatenation of equally sized encoded pages (the
 * page codec, one page per buffer, so each carries its own CRC-32); extents are built to at least
 * `minExtentBytes` so a transfer moves megabytes per message, not one 16-token block at a time.
 */
import { decodePages, encodePages, isBlockHash, type BlockHash, type KvPage } from '@switchyard/kv-cache';
import type { KvExtent } from '@switchyard/rpc';

/** Groups pages, in order, into extents of at least minExtentBytes (the last may be smaller). */
export function pagesToExtents(pages: readonly KvPage[], minExtentBytes: number): KvExtent[] {
  const encoded = pages.map((page) => encodePages([page]));
  const extents: KvExtent[] = [];
  let start = 0;
  while (start < encoded.length) {
    const size = encoded[start]?.byteLength ?? 0;
    let end = start;
    let bytes = 0;
    // NOTE: a run stops where the page size changes, since an extent's pages must be equally sized.
    while (end < encoded.length && encoded[end]?.byteLength === size && (bytes < minExtentBytes || end === start)) {
      bytes += size;
      end++;
    }
    extents.push(encodedToExtent(pages.slice(start, end), encoded.slice(start, end)));
    start = end;
  }
  return extents;
}

/** An extent made of already encoded pages, copied into one buffer (a single page is used as it is). */
export function encodedToExtent(pages: readonly { readonly hash: string }[], encoded: readonly Uint8Array[]): KvExtent {
  const [only, ...rest] = encoded;
  if (only !== undefined && rest.length === 0) return { blockHashes: pages.map((p) => p.hash), data: only };
  const total = encoded.reduce((n, e) => n + e.byteLength, 0);
  const data = new Uint8Array(total);
  let offset = 0;
  for (const page of encoded) {
    data.set(page, offset);
    offset += page.byteLength;
  }
  return { blockHashes: pages.map((p) => p.hash), data };
}

/** The encoded pages of an extent, as views into it (no copy, no decode). */
export function splitExtent(extent: KvExtent): Uint8Array[] {
  const n = extent.blockHashes.length;
  const size = extent.data.byteLength / n;
  return Array.from({ length: n }, (_, i) => extent.data.subarray(i * size, (i + 1) * size));
}

/** Why a received page was not used. */
export type PageRejection = 'checksum' | 'malformed' | 'hash-mismatch' | 'token-mismatch';

export class PageRejectedError extends Error {
  override readonly name = 'PageRejectedError';
  readonly code: PageRejection;
  constructor(code: PageRejection, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

/**
 * Decodes one encoded page and checks it is the block the extent says it is: a valid CRC-32, exactly one
 * page, and the hash the extent names. Throws PageRejectedError.
 */
export function decodeExtentPage(encoded: Uint8Array, expectedHash: string): KvPage {
  let pages: KvPage[];
  try {
    pages = decodePages(encoded);
  } catch (err) {
    const code = err instanceof Error && err.name === 'PageChecksumError' ? 'checksum' : 'malformed';
    throw new PageRejectedError(code, err instanceof Error ? err.message : String(err), { cause: err });
  }
  const page = pages[0];
  if (pages.length !== 1 || page === undefined) {
    throw new PageRejectedError('malformed', `an extent page holds ${pages.length} pages, not 1`);
  }
  if (page.hash !== expectedHash) {
    throw new PageRejectedError('hash-mismatch', `page is block ${page.hash}, the extent says ${expectedHash}`);
  }
  return page;
}

/** The hashes of a request as block hashes; throws on one that is not 64 hex digits. */
export function asBlockHashes(hashes: readonly string[]): BlockHash[] {
  return hashes.map((hash) => {
    if (!isBlockHash(hash)) throw new RangeError(`not a block hash: ${JSON.stringify(hash.slice(0, 80))}`);
    return hash;
  });
}
