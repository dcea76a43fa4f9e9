/**
 * Peer page fetch (docs/architecture.md §6): before an engine admits a request, it looks for the
 * prompt's prefix blocks it lacks on other engines or a page store, and fetches them when the transfer
 * is estimated to beat recomputing that prefill. Every page is checked before use (CRC-32, the hash
 * chain of the prompt's own tokens, the tokens themselves); whatever is not fetched and verified is
 * simply recomputed by the engine, so the output never depends on a fetch.
 */
import type { KvPageAccess, PrefixHasher } from '@switchyard/engine';
import type { BlockHash, KvPage } from '@switchyard/kv-cache';
import type { FetchedPages } from '@switchyard/rpc';
import type { KvClients } from './kv-clients.ts';
import { decodeExtentPage, PageRejectedError, splitExtent, type PageRejection } from './page-extents.ts';
import { RateEstimator } from './rate-estimator.ts';

/** A holder of some of a prompt's leading blocks, per the cluster's prefix index. */
export interface PageSource {
  readonly id: string;
  /** host:port of its KvPageService. */
  readonly address: string;
  readonly kind: 'engine' | 'store';
  /** Leading blocks of the prompt it holds. */
  readonly numBlocks: number;
}

/** `auto`: fetch when the estimate says it is faster; `always`: whenever a holder has more; `never`. */
export type FetchMode = 'auto' | 'always' | 'never';
export const FETCH_MODES: readonly FetchMode[] = ['auto', 'always', 'never'];

export type PrefetchOutcome =
  /** No full block to reuse: the prompt is shorter than a block (plus the token that must be computed). */
  | 'no-prefix'
  /** Nobody holds more than this engine already has. */
  | 'local'
  /** Fetched and verified every block asked for. */
  | 'fetched'
  /** Fetched some, then a page failed its checks (the rest is recomputed). */
  | 'partial'
  /** A holder had more, but recomputing was estimated faster (or fetching is off). */
  | 'recompute'
  /** Every try failed (peer gone, timeout, refused, nothing verified): recomputed. */
  | 'failed';

export interface PrefetchResult {
  readonly outcome: PrefetchOutcome;
  /** Leading full blocks of the prompt that can be reused at most (one token is always computed). */
  readonly numPromptBlocks: number;
  /** Of those, already cached here. */
  readonly numLocalBlocks: number;
  /** Fetched, verified and imported now. */
  readonly numFetchedBlocks: number;
  readonly sourceKind?: 'engine' | 'store';
  readonly sourceId?: string;
  readonly bytes: number;
  readonly ms: number;
  readonly estimatedFetchMs?: number;
  readonly estimatedRecomputeMs?: number;
  /** Why a try failed or a page was refused. */
  readonly reason?: PageRejection | 'unavailable' | 'deadline' | 'refused' | 'error';
}

export interface PageFetcherOptions {
  readonly access: KvPageAccess;
  readonly hasher: PrefixHasher;
  /** This engine's KV namespace hex (salt ''), sent as the compatibility handshake. */
  readonly namespace: string;
  /** Holders of leading blocks of `hashes` other than this engine, best first is not required. */
  readonly sources: (hashes: readonly BlockHash[]) => readonly PageSource[];
  readonly clients: KvClients;
  readonly mode: FetchMode;
  /** Time allowed for one fetch. */
  readonly deadlineMs: number;
  /** Holders tried, best first, before giving up. Default 2. */
  readonly maxTries?: number;
  /** Transfer rate, bytes per ms (prior: 200 MB/s). */
  readonly bandwidth?: RateEstimator;
  /** This engine's prefill rate, tokens per ms (prior: 0.5, i.e. 500 tokens/s). */
  readonly prefillRate?: RateEstimator;
  readonly onResult?: (result: PrefetchResult) => void;
}

const PAGE_HEADER_BYTES = 12 + 44;

export class PageFetcher {
  readonly #opts: PageFetcherOptions;
  readonly bandwidth: RateEstimator;
  readonly prefillRate: RateEstimator;

  constructor(options: PageFetcherOptions) {
    this.#opts = options;
    this.bandwidth = options.bandwidth ?? new RateEstimator(200_000);
    this.prefillRate = options.prefillRate ?? new RateEstimator(0.5);
  }

  /** Encoded bytes of one page on the wire. */
  get pageWireBytes(): number {
    return PAGE_HEADER_BYTES + 4 * (this.#opts.access.blockSize + this.#opts.access.pageFloats);
  }

  /** The prompt length (in blocks) from which fetching beats recomputing, at the current estimates. */
  breakEvenBlocks(): number {
    const fetchMsPerBlock = this.bandwidth.msFor(this.pageWireBytes);
    const recomputeMsPerBlock = this.prefillRate.msFor(this.#opts.access.blockSize);
    return fetchMsPerBlock < recomputeMsPerBlock ? 1 : Number.POSITIVE_INFINITY;
  }

  /** Makes the prompt's best available prefix local before it is admitted. Never throws. */
  async prefetch(promptIds: readonly number[], cacheSalt = ''): Promise<PrefetchResult> {
    const result = await this.#prefetch(promptIds, cacheSalt, performance.now());
    this.#opts.onResult?.(result);
    return result;
  }

  async #prefetch(promptIds: readonly number[], salt: string, t0: number): Promise<PrefetchResult> {
    const { access, hasher } = this.#opts;
    const blockSize = access.blockSize;
    const usable = Math.floor(Math.max(promptIds.length - 1, 0) / blockSize);
    const wanted = hasher.hashTokens(promptIds, salt).slice(0, usable);
    const numLocal = access.numLeadingCached(wanted);
    const base = { numPromptBlocks: usable, numLocalBlocks: numLocal, numFetchedBlocks: 0, bytes: 0 };
    if (usable === 0) return { ...base, outcome: 'no-prefix', ms: 0 };
    const holders = [...this.#opts.sources(wanted)]
      .filter((s) => s.numBlocks > numLocal)
      .sort(
        (a, b) =>
          b.numBlocks - a.numBlocks || (a.kind === b.kind ? a.id.localeCompare(b.id) : a.kind === 'engine' ? -1 : 1),
      );
    const best = holders[0];
    if (best === undefined) return { ...base, outcome: 'local', ms: performance.now() - t0 };
    const numGain = Math.min(best.numBlocks, usable) - numLocal;
    const estimatedFetchMs = this.bandwidth.msFor(numGain * this.pageWireBytes);
    const estimatedRecomputeMs = this.prefillRate.msFor(numGain * blockSize);
    const estimates = { estimatedFetchMs, estimatedRecomputeMs };
    const { mode } = this.#opts;
    if (mode === 'never' || (mode === 'auto' && estimatedFetchMs >= estimatedRecomputeMs)) {
      return { ...base, ...estimates, outcome: 'recompute', ms: performance.now() - t0 };
    }
    let reason: PrefetchResult['reason'];
    for (const source of holders.slice(0, this.#opts.maxTries ?? 2)) {
      const tried = await this.#fetchFrom(source, wanted, numLocal, promptIds);
      if (tried.numFetched > 0) {
        const outcome = tried.reason === undefined && numLocal + tried.numFetched >= Math.min(source.numBlocks, usable);
        return {
          ...base,
          ...estimates,
          outcome: outcome ? 'fetched' : 'partial',
          numFetchedBlocks: tried.numFetched,
          sourceKind: source.kind,
          sourceId: source.id,
          bytes: tried.bytes,
          ms: performance.now() - t0,
          ...(tried.reason !== undefined ? { reason: tried.reason } : {}),
        };
      }
      reason = tried.reason ?? reason;
    }
    return { ...base, ...estimates, outcome: 'failed', ms: performance.now() - t0, ...(reason ? { reason } : {}) };
  }

  async #fetchFrom(
    source: PageSource,
    wanted: readonly BlockHash[],
    numLocal: number,
    promptIds: readonly number[],
  ): Promise<{ numFetched: number; bytes: number; reason?: PrefetchResult['reason'] }> {
    const hashes = wanted.slice(numLocal, Math.min(source.numBlocks, wanted.length));
    const started = performance.now();
    let fetched: FetchedPages;
    try {
      const client = await this.#opts.clients.get(source.address);
      fetched = await client.fetchPages(
        { namespace: this.#opts.namespace, blockHashes: hashes },
        { deadlineMs: this.#opts.deadlineMs },
      );
    } catch (err) {
      const code = err instanceof Error && 'code' in err ? String(err.code) : '';
      if (code === 'UNAVAILABLE' || code === 'DATA_LOSS' || code === 'CANCELLED')
        this.#opts.clients.forget(source.address);
      return { numFetched: 0, bytes: 0, reason: failureReason(code) };
    }
    const elapsedMs = performance.now() - started;
    if (fetched.sizeBytes > 0) this.bandwidth.observe(fetched.sizeBytes, elapsedMs);
    const { pages, reason } = verifiedPrefix(fetched, hashes, promptIds, numLocal, this.#opts.access.blockSize);
    const imported = this.#opts.access.importPages(pages);
    const numFetched = imported.numImported + imported.numPresent;
    return { numFetched, bytes: fetched.sizeBytes, ...(reason !== undefined ? { reason } : {}) };
  }
}

/**
 * The leading pages of a fetch that are exactly the blocks asked for, in order, each intact (CRC-32) and
 * holding the prompt's own tokens; stops at the first that is not, naming why.
 */
export function verifiedPrefix(
  fetched: FetchedPages,
  hashes: readonly BlockHash[],
  promptIds: readonly number[],
  firstBlock: number,
  blockSize: number,
): { pages: KvPage[]; reason?: PageRejection } {
  const pages: KvPage[] = [];
  for (const extent of fetched.extents) {
    for (const [i, encoded] of splitExtent(extent).entries()) {
      const expected = hashes[pages.length];
      if (expected === undefined || extent.blockHashes[i] !== expected) return { pages, reason: 'hash-mismatch' };
      let page: KvPage;
      try {
        page = decodeExtentPage(encoded, expected);
      } catch (err) {
        if (err instanceof PageRejectedError) return { pages, reason: err.code };
        throw err;
      }
      const start = (firstBlock + pages.length) * blockSize;
      for (let t = 0; t < blockSize; t++) {
        if (page.tokens[t] !== promptIds[start + t]) return { pages, reason: 'token-mismatch' };
      }
      pages.push(page);
    }
  }
  return { pages };
}

function failureReason(code: string): PrefetchResult['reason'] {
  if (code === 'DEADLINE_EXCEEDED') return 'deadline';
  if (code === 'FAILED_PRECONDITION') return 'refused';
  if (code === 'UNAVAILABLE' || code === 'CANCELLED') return 'unavailable';
  return 'error';
}
