/**
 * A frontend's own record of the requests it has routed and that are not finished: per engine, the
 * prompt tokens still to be prefilled, the requests, and the prompt blocks those requests will leave
 * cached. Engines report their load four times a second; between two reports a burst of requests would
 * all see the same stale figures and land on one engine. The router reads this ledger beside the reports
 * (the larger figure counts), and counts a prefix as held by the engine a request for it was just sent to.
 *
 * Invariant: the per-engine totals are the sums over `#requests` of the entries on that engine; an entry
 * leaves at its request's final event, or after `maxAgeMs` if that event never reaches this frontend.
 */
import type { PendingWork } from './kv-router.ts';

export interface RouteLedgerOptions {
  /** An entry older than this is dropped (its final event was lost). Default 10 minutes. */
  readonly maxAgeMs?: number;
  readonly now?: () => number;
}

interface Entry {
  readonly engineId: string;
  prefillTokens: number;
  readonly hashes: readonly string[];
  readonly atMs: number;
}

interface EngineTotals {
  prefillTokens: number;
  sequences: number;
  /** Block hash → requests on this engine whose prompt has it. */
  readonly blocks: Map<string, number>;
}

export class RouteLedger {
  readonly #maxAgeMs: number;
  readonly #now: () => number;
  readonly #requests = new Map<string, Entry>();
  readonly #engines = new Map<string, EngineTotals>();
  /** Engine id → when this frontend last sent it a request or saw one of them prefill or end. */
  readonly #changedAt = new Map<string, number>();

  constructor(options: RouteLedgerOptions = {}) {
    this.#maxAgeMs = options.maxAgeMs ?? 600_000;
    this.#now = options.now ?? Date.now;
  }

  get size(): number {
    return this.#requests.size;
  }

  /** A request was sent to `engineId`, which is expected to compute `prefillTokens` of its prompt. */
  routed(requestId: string, engineId: string, prefillTokens: number, hashes: readonly string[]): void {
    this.finished(requestId);
    const entry: Entry = { engineId, prefillTokens, hashes, atMs: this.#now() };
    this.#requests.set(requestId, entry);
    this.#changedAt.set(engineId, this.#now());
    const totals = this.#totals(engineId);
    totals.prefillTokens += prefillTokens;
    totals.sequences++;
    for (const hash of hashes) totals.blocks.set(hash, (totals.blocks.get(hash) ?? 0) + 1);
  }

  /** The request's first token arrived: its prefill is done. */
  prefilled(requestId: string): void {
    const entry = this.#requests.get(requestId);
    if (!entry || entry.prefillTokens === 0) return;
    this.#changedAt.set(entry.engineId, this.#now());
    this.#totals(entry.engineId).prefillTokens -= entry.prefillTokens;
    entry.prefillTokens = 0;
  }

  /** The request ended (any way): it no longer loads its engine. */
  finished(requestId: string): void {
    const entry = this.#requests.get(requestId);
    if (!entry) return;
    this.#requests.delete(requestId);
    this.#changedAt.set(entry.engineId, this.#now());
    const totals = this.#totals(entry.engineId);
    totals.prefillTokens -= entry.prefillTokens;
    totals.sequences--;
    for (const hash of entry.hashes) {
      const n = (totals.blocks.get(hash) ?? 1) - 1;
      if (n > 0) totals.blocks.set(hash, n);
      else totals.blocks.delete(hash);
    }
    if (totals.sequences === 0) this.#engines.delete(entry.engineId);
  }

  /** Per engine, what this frontend has sent it and not seen finish. */
  pending(): Map<string, PendingWork> {
    this.#expire();
    return new Map(
      [...this.#engines].map(([id, t]) => [id, { prefillTokens: t.prefillTokens, sequences: t.sequences }]),
    );
  }

  /**
   * When this frontend's view of `engineId`'s work last changed (a request sent, prefilled or ended). A
   * load report that arrived before that is stale about this frontend's requests: the ledger knows better.
   */
  changedAtMs(engineId: string): number | undefined {
    return this.#changedAt.get(engineId);
  }

  /**
   * Per engine, the leading blocks of `hashes` that requests sent there share (they will be cached there
   * once those prompts are prefilled).
   */
  predictedOverlap(hashes: readonly string[]): Map<string, number> {
    const out = new Map<string, number>();
    for (const [id, totals] of this.#engines) {
      let n = 0;
      while (n < hashes.length && totals.blocks.has(hashes[n] ?? '')) n++;
      if (n > 0) out.set(id, n);
    }
    return out;
  }

  #totals(engineId: string): EngineTotals {
    let totals = this.#engines.get(engineId);
    if (!totals) {
      totals = { prefillTokens: 0, sequences: 0, blocks: new Map() };
      this.#engines.set(engineId, totals);
    }
    return totals;
  }

  #expire(): void {
    const oldest = this.#now() - this.#maxAgeMs;
    for (const [id, entry] of this.#requests) if (entry.atMs < oldest) this.finished(id);
    for (const [id, at] of this.#changedAt) if (at < oldest && !this.#engines.has(id)) this.#changedAt.delete(id);
  }
}
