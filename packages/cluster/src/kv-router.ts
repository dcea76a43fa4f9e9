/**
 * Choosing the engine for a request (pure): KV-aware by default — the engine with the least estimated
 * work before the request's first token, counting the prefix it holds (or can fetch) against what is
 * queued and running there — or round-robin or random over the live engines. When every engine is full,
 * the shared queue (the first engine with a free slot takes it).
 */
import type { EngineLoad } from './engine-load.ts';

export type RouterMode = 'kv' | 'round-robin' | 'random';
export const ROUTER_MODES: readonly RouterMode[] = ['kv', 'round-robin', 'random'];

export interface RouterWeights {
  /** Cost of one prompt token the engine must compute (the unit of every other weight). */
  readonly prefill: number;
  /**
   * Cost of one prompt token the engine lacks but can fetch from another holder (a peer or a page store),
   * relative to computing it; used only when the request says fetching is on. Fetching 512 tokens took
   * 27 ms against 173 ms to compute them in `bench:kv` (b): ≈ 0.15.
   */
  readonly fetch: number;
  /** Fixed cost of a fetch (a round trip, verification), in prompt tokens; paid when anything is fetched. */
  readonly fetchCall: number;
  /** Cost of one prompt token already queued for prefill on the engine (it is computed first). */
  readonly queued: number;
  /** Cost, in prompt tokens, of one sequence running on the engine (it shares every step with the request). */
  readonly running: number;
  /** Cost, in prompt tokens, of a full KV cache (scaled by the engine's usage, 0–1). */
  readonly kvUsage: number;
}

export const DEFAULT_ROUTER_WEIGHTS: RouterWeights = Object.freeze({
  prefill: 1,
  fetch: 0.15,
  fetchCall: 8,
  queued: 1,
  running: 16,
  kvUsage: 64,
});

export interface RouteDecision {
  readonly mode: RouterMode;
  /** The chosen engine, or undefined for the shared queue. */
  readonly engineId: string | undefined;
  /** Leading prompt blocks the chosen engine holds (0 for the shared queue or a load-only choice). */
  readonly overlapBlocks: number;
  readonly numPromptBlocks: number;
  /**
   * `kv` mode: the chosen engine's estimated cost (prompt-token equivalents to wait for and compute
   * before the first token; lower is better). 0 in the other modes and for the shared queue.
   */
  readonly score: number;
  /** `kv` mode: prompt tokens the chosen engine is expected to compute (not cached, not fetched). */
  readonly computeTokens?: number;
}

/** What this frontend has sent an engine that the engine's last load report may not show yet. */
export interface PendingWork {
  /** Prompt tokens of requests sent there that have not had their first token. */
  readonly prefillTokens: number;
  /** Requests sent there that have not finished. */
  readonly sequences: number;
}

export interface RouteInput {
  readonly mode: RouterMode;
  readonly engines: readonly EngineLoad[];
  /**
   * Leading blocks of the prompt each holder has (holders with none are absent). Holders that take no
   * requests (page stores, prefill engines, engines not live) count only as sources to fetch from.
   */
  readonly overlap: ReadonlyMap<string, number>;
  readonly numPromptBlocks: number;
  /** Prompt length in tokens. Default: numPromptBlocks × blockSize. */
  readonly promptTokens?: number;
  /** Tokens per block. Default 16. */
  readonly blockSize?: number;
  /** True when engines fetch a prefix another holder has (`--kv-fetch` auto or always). */
  readonly fetch?: boolean;
  /** This frontend's requests per engine not yet visible in its load report. */
  readonly pending?: ReadonlyMap<string, PendingWork>;
  /**
   * The hash of the prompt's first full block, when it has one: among engines of equal cost, the one
   * this hash picks (rendezvous hashing), so requests with a new shared prefix meet on one engine.
   */
  readonly firstBlockHash?: string;
  readonly weights?: RouterWeights;
  /** A number in [0, 1) (random mode) or a counter (round-robin mode) supplied by the caller. */
  readonly pick: number;
}

export interface EngineCost {
  /** Total, in prompt-token equivalents (lower is better). */
  readonly cost: number;
  /** Prompt tokens it would compute. */
  readonly computeTokens: number;
  /** Prompt tokens it would fetch from another holder. */
  readonly fetchTokens: number;
}

/**
 * An engine's estimated cost for a request in `kv` mode — roughly the prefill work it has to get through
 * before the request's first token, in prompt tokens: what is queued there (the larger of its own report
 * and what this frontend sent it since), what the request itself needs computed (the prompt less the
 * engine's cached prefix, or less the longest prefix held anywhere when fetching is on — the fetched part
 * at the fetch weight, plus a fixed charge per fetch), and a charge per running sequence and for KV usage.
 */
export function engineCost(
  engine: EngineLoad,
  input: {
    readonly localBlocks: number;
    readonly fetchableBlocks: number;
    readonly promptTokens: number;
    readonly blockSize: number;
    readonly pending?: PendingWork | undefined;
  },
  w: RouterWeights,
): EngineCost {
  const { localBlocks, blockSize, promptTokens } = input;
  const reusable = (blocks: number) => Math.min(blocks * blockSize, Math.max(promptTokens - 1, 0));
  const local = reusable(localBlocks);
  const reachable = Math.max(local, reusable(input.fetchableBlocks));
  const computeTokens = promptTokens - reachable;
  const fetchTokens = reachable - local;
  const queuedTokens = Math.max(engine.numPrefillTokens ?? 0, input.pending?.prefillTokens ?? 0);
  const sequences = Math.max(engine.numRunning + engine.numWaiting, input.pending?.sequences ?? 0);
  const cost =
    w.queued * queuedTokens +
    w.prefill * computeTokens +
    (fetchTokens > 0 ? w.fetch * fetchTokens + w.fetchCall : 0) +
    w.running * sequences +
    w.kvUsage * engine.kvUsage;
  return { cost, computeTokens, fetchTokens };
}

/** True when an engine has no free sequence slot, counting what this frontend sent it. */
function isFull(engine: EngineLoad, pending: PendingWork | undefined): boolean {
  return Math.max(engine.numRunning + engine.numWaiting, pending?.sequences ?? 0) >= engine.maxRunning;
}

export function chooseEngine(input: RouteInput): RouteDecision {
  const { mode, engines, overlap, numPromptBlocks } = input;
  const shared: RouteDecision = { mode, engineId: undefined, overlapBlocks: 0, numPromptBlocks, score: 0 };
  if (engines.length === 0) return shared;
  if (mode === 'round-robin' || mode === 'random') {
    const index = mode === 'random' ? Math.floor(input.pick * engines.length) : Math.abs(Math.trunc(input.pick));
    const engine = engines[index % engines.length];
    if (!engine) return shared;
    return {
      mode,
      engineId: engine.engineId,
      overlapBlocks: overlap.get(engine.engineId) ?? 0,
      numPromptBlocks,
      score: 0,
    };
  }
  const weights = input.weights ?? DEFAULT_ROUTER_WEIGHTS;
  const blockSize = input.blockSize ?? 16;
  const promptTokens = input.promptTokens ?? numPromptBlocks * blockSize;
  const fetchableBlocks = input.fetch === true ? Math.max(0, ...overlap.values()) : 0;
  const open = engines.filter((e) => !isFull(e, input.pending?.get(e.engineId)));
  // Every engine is full: the shared queue, where the first engine with a free slot takes it.
  if (open.length === 0) return shared;
  const home = input.firstBlockHash !== undefined ? rendezvous(open, input.firstBlockHash)?.engineId : undefined;
  let best: RouteDecision = shared;
  let bestHome = false;
  for (const engine of open) {
    const localBlocks = overlap.get(engine.engineId) ?? 0;
    const { cost, computeTokens } = engineCost(
      engine,
      { localBlocks, fetchableBlocks, promptTokens, blockSize, pending: input.pending?.get(engine.engineId) },
      weights,
    );
    const isHome = engine.engineId === home;
    // Ties go to the prefix's home engine, then to the engine listed first.
    if (best.engineId === undefined || cost < best.score || (cost === best.score && isHome && !bestHome)) {
      best = {
        mode,
        engineId: engine.engineId,
        overlapBlocks: localBlocks,
        numPromptBlocks,
        score: cost,
        computeTokens,
      };
      bestHome = isHome;
    }
  }
  return best;
}

/** The engine with the highest hash of (engine id, key) (FNV-1a, mixed): stable as engines come and go. */
export function rendezvous(engines: readonly EngineLoad[], key: string): EngineLoad | undefined {
  let best: EngineLoad | undefined;
  let bestHash = -1;
  for (const engine of engines) {
    let h = 0x811c9dc5;
    for (const ch of `${engine.engineId}\u0000${key}`) {
      h ^= ch.charCodeAt(0);
      h = Math.imul(h, 0x01000193) >>> 0;
    }
    // Final avalanche (MurmurHash3's fmix32): without it, keys that differ in their last character
    // differ only in low bits, and the engine id alone would decide.
    h ^= h >>> 16;
    h = Math.imul(h, 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    h = (h ^ (h >>> 16)) >>> 0;
    if (h > bestHash) {
      bestHash = h;
      best = engine;
    }
  }
  return best;
}
