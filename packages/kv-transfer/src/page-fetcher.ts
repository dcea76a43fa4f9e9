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
  /** host:port of its KV bulk data plane, when it serves one (fetches go there first, see KvClients). */
  readonly dataAddress?: string;
  readonly kind: 'engine' | 'store';
  /** End (exclusive block index) of the run of the prompt's blocks it holds from the block asked about. */
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
  readonly reason?: PageRejection | 'unavailable' | 'deadline' | 'refused' | 'no-room' | 'error';
}

export interface PageFetcherOptions {
  readonly access: KvPageAccess;
  readonly hasher: PrefixHasher;
  /** This engine's KV namespace hex (salt ''), sent as the compatibility handshake. */
  readonly namespace: string;
  /**
   * Holders (other than this engine) of block `from` of `hashes`, each with the end of its unbroken run
   * from there as `numBlocks` (any order).
   */
  readonly sources: (hashes: readonly BlockHash[], from: number) => readonly PageSource[];
  readonly clients: KvClients;
  readonly mode: FetchMode;
  /** Time allowed for one fetch. */
  readonly deadlineMs: number;
  /** Fetch calls per request at most (failed tries and follow-on runs). Default 3. */
  readonly maxTries?: number;
  /** Transfer rate, bytes per ms (prior: 200 MB/s). */
  readonly bandwidth?: RateEstimator;
  /** This engine's prefill rate, tokens per ms (prior: 0.5, i.e. 500 tokens/s). */
  readonly prefillRate?: RateEstimator;
  /** Fixed cost of one fetch call (round trip, stream setup), ms (prior: 2 ms). */
  readonly overheadMs?: number;
  readonly onResult?: (result: PrefetchResult) => void;
  readonly onError?: (error: Error) => void;
}

const PAGE_HEADER_BYTES = 12 + 44;

interface FetchTry {
  readonly numFetched: number;
  readonly bytes: number;
  readonly reason?: PrefetchResult['reason'];
}

export class PageFetcher {
  readonly #opts: PageFetcherOptions;
  readonly bandwidth: RateEstimator;
  readonly prefillRate: RateEstimator;
  /** Fixed cost per fetch call: an exponentially weighted mean of what transfers took beyond bytes ÷ bandwidth. */
  #overheadMs: number;

  constructor(options: PageFetcherOptions) {
    this.#opts = options;
    this.bandwidth = options.bandwidth ?? new RateEstimator(200_000);
    this.prefillRate = options.prefillRate ?? new RateEstimator(0.5);
    this.#overheadMs = options.overheadMs ?? 2;
  }

  get overheadMs(): number {
    return this.#overheadMs;
  }

  /** Estimated time to fetch `numBlocks` pages in one call, ms. */
  estimateFetchMs(numBlocks: number): number {
    return this.#overheadMs + this.bandwidth.msFor(numBlocks * this.pageWireBytes);
  }

  /** Estimated time to recompute `numBlocks` blocks of prompt, ms. */
  estimateRecomputeMs(numBlocks: number): number {
    return this.prefillRate.msFor(numBlocks * this.#opts.access.blockSize);
  }

  /** Records one transfer: splits its time into the fixed overhead and the bandwidth part. */
  observeTransfer(bytes: number, elapsedMs: number): void {
    if (!(bytes > 0) || !(elapsedMs > 0)) return;
    const streamingMs = this.bandwidth.msFor(bytes);
    this.#overheadMs = 0.7 * this.#overheadMs + 0.3 * Math.max(0, elapsedMs - streamingMs);
    this.bandwidth.observe(bytes, Math.max(elapsedMs - this.#overheadMs, elapsedMs / 10));
  }

  /** Encoded bytes of one page on the wire. */
  get pageWireBytes(): number {
    return PAGE_HEADER_BYTES + 4 * (this.#opts.access.blockSize + this.#opts.access.pageFloats);
  }

  /**
   * The fewest missing blocks for which fetching beats recomputing at the current estimates (the fixed
   * overhead must be paid back by the per-block saving); Infinity when a block is cheaper to recompute.
   */
  breakEvenBlocks(): number {
    const savingPerBlock = this.estimateRecomputeMs(1) - this.bandwidth.msFor(this.pageWireBytes);
    return savingPerBlock > 0
      ? Math.max(1, Math.floor(this.#overheadMs / savingPerBlock) + 1)
      : Number.POSITIVE_INFINITY;
  }

  /**
   * Makes the prompt's best available prefix local before it is admitted. Never throws. `mode`
   * overrides the configured one (a decode engine fetches `always` what a prefill engine computed for it).
   */
  async prefetch(promptIds: readonly number[], cacheSalt = '', mode = this.#opts.mode): Promise<PrefetchResult> {
    const result = await this.#prefetch(promptIds, cacheSalt, mode, performance.now());
    this.#opts.onResult?.(result);
    return result;
  }

  async #prefetch(promptIds: readonly number[], salt: string, mode: FetchMode, t0: number): Promise<PrefetchResult> {
    const { access, hasher } = this.#opts;
    const blockSize = access.blockSize;
    const usable = Math.floor(Math.max(promptIds.length - 1, 0) / blockSize);
    const wanted = hasher.hashTokens(promptIds, salt).slice(0, usable);
    const numLocal = access.numLeadingCached(wanted);
    const base = { numPromptBlocks: usable, numLocalBlocks: numLocal, numFetchedBlocks: 0, bytes: 0 };
    if (usable === 0) return { ...base, outcome: 'no-prefix', ms: 0 };
    const first = this.#holdersFrom(wanted, numLocal);
    const best = first[0];
    if (best === undefined) return { ...base, outcome: 'local', ms: performance.now() - t0 };
    // NOTE: decided once, on the best single run; later runs (a store holding the tail) only add to it.
    const numGain = best.numBlocks - numLocal;
    const estimatedFetchMs = this.estimateFetchMs(numGain);
    const estimatedRecomputeMs = this.estimateRecomputeMs(numGain);
    const estimates = { estimatedFetchMs, estimatedRecomputeMs };
    if (mode === 'never' || (mode === 'auto' && estimatedFetchMs >= estimatedRecomputeMs)) {
      return { ...base, ...estimates, outcome: 'recompute', ms: performance.now() - t0 };
    }
    let pos = numLocal;
    let bytes = 0;
    let reason: PrefetchResult['reason'];
    let source: PageSource | undefined;
    const failed = new Set<string>();
    const maxTries = this.#opts.maxTries ?? 3;
    for (let numTries = 0; numTries < maxTries && pos < usable; numTries++) {
      const holder = (numTries === 0 ? first : this.#holdersFrom(wanted, pos)).find((h) => !failed.has(h.id));
      if (holder === undefined) break;
      const tried = await this.#tryFetch(holder, wanted, pos, promptIds);
      bytes += tried.bytes;
      reason = tried.reason;
      pos += tried.numFetched;
      if (tried.numFetched > 0) source ??= holder;
      if (tried.reason === undefined) continue;
      // A page that failed its checks, or no room left here: stop; the rest is recomputed.
      if (tried.numFetched > 0 || tried.reason === 'no-room') break;
      failed.add(holder.id); // this holder is gone or refused: the next best one may serve the same run
    }
    const numFetched = pos - numLocal;
    const result = { ...base, ...estimates, numFetchedBlocks: numFetched, bytes, ms: performance.now() - t0 };
    const why = reason !== undefined ? { reason } : {};
    if (numFetched === 0) return { ...result, outcome: 'failed', ...why };
    const from = source === undefined ? {} : { sourceKind: source.kind, sourceId: source.id };
    return { ...result, ...from, outcome: reason === undefined ? 'fetched' : 'partial', ...why };
  }

  /** Holders of block `from` with runs reaching past it, longest run first (an engine before a store). */
  #holdersFrom(wanted: readonly BlockHash[], from: number): PageSource[] {
    return [...this.#opts.sources(wanted, from)]
      .map((s) => ({ ...s, numBlocks: Math.min(s.numBlocks, wanted.length) }))
      .filter((s) => s.numBlocks > from)
      .sort(
        (a, b) =>
          b.numBlocks - a.numBlocks || (a.kind === b.kind ? a.id.localeCompare(b.id) : a.kind === 'engine' ? -1 : 1),
      );
  }

  async #tryFetch(
    source: PageSource,
    wanted: readonly BlockHash[],
    from: number,
    promptIds: readonly number[],
  ): Promise<FetchTry> {
    try {
      return await this.#fetchFrom(source, wanted, from, promptIds);
    } catch (err) {
      // A page this engine cannot take (another layout) or a bug: recompute, never fail the request.
      this.#opts.onError?.(err instanceof Error ? err : new Error(String(err)));
      return { numFetched: 0, bytes: 0, reason: 'error' };
    }
  }

  async #fetchFrom(
    source: PageSource,
    wanted: readonly BlockHash[],
    numLocal: number,
    promptIds: readonly number[],
  ): Promise<FetchTry> {
    const hashes = wanted.slice(numLocal, Math.min(source.numBlocks, wanted.length));
    const started = performance.now();
    let fetched: FetchedPages;
    try {
      fetched = await this.#opts.clients.fetchPages(
        source,
        { namespace: this.#opts.namespace, blockHashes: hashes },
        { deadlineMs: this.#opts.deadlineMs },
      );
    } catch (err) {
      const code = err instanceof Error && 'code' in err ? String(err.code) : '';
      if (code === 'UNAVAILABLE' || code === 'DATA_LOSS' || code === 'CANCELLED') this.#opts.clients.forget(source);
      return { numFetched: 0, bytes: 0, reason: failureReason(code) };
    }
    this.observeTransfer(fetched.sizeBytes, performance.now() - started);
    const { pages, reason } = verifiedPrefix(fetched, hashes, promptIds, numLocal, this.#opts.access.blockSize);
    const imported = this.#opts.access.importPages(pages);
    const numFetched = imported.numImported + imported.numPresent;
    const why = imported.numNoRoom > 0 ? 'no-room' : reason;
    return { numFetched, bytes: fetched.sizeBytes, ...(why !== undefined ? { reason: why } : {}) };
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
