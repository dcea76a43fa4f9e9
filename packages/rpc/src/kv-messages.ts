/**
 * Plain TypeScript shapes of the KvPageService calls.
 */
import { InvalidArgumentError } from './errors.ts';
import type { KvExtent } from './kv-extents.ts';

export interface FetchPagesRequest {
  /** Hash namespace (hex), docs/architecture.md §6. */
  readonly namespace: string;
  /** Chained block hashes (hex), in prefix order. */
  readonly blockHashes: readonly string[];
}

export interface FetchedPages {
  /** Extents as received, in order. */
  readonly extents: readonly KvExtent[];
  /** Requested hashes the peer did not send (it does not hold them). */
  readonly missingHashes: readonly string[];
  readonly sizeBytes: number;
}

export interface PushPagesRequest {
  readonly namespace: string;
  readonly extents: readonly KvExtent[];
}

export interface PushPagesResult {
  /** The pushed blocks the receiver kept. */
  readonly acceptedHashes: readonly string[];
}

export function validateFetchRequest(request: FetchPagesRequest): void {
  if (request.blockHashes.some((hash) => hash.length === 0)) {
    throw new InvalidArgumentError('FetchPages names an empty block hash');
  }
}
