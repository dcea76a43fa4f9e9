/**
 * Choosing the engine for a request (pure): KV-aware by default — the engine that already holds the
 * longest part of the request's prefix, weighed against how busy it is — or round-robin or random over
 * the live engines. A request with no useful overlap goes to the shared queue (any engine with a free
 * slot takes it), which balances load by itself.
 */
import type { EngineLoad } from './engine-load.ts';

export type RouterMode = 'kv' | 'round-robin' | 'random';
export const ROUTER_MODES: readonly RouterMode[] = ['kv', 'round-robin', 'random'];

export interface RouterWeights {
  /** Weight of the fraction of the prompt's blocks the engine holds. */
  readonly overlap: number;
  /** Weight of (running + waiting) ÷ maxRunning. */
  readonly load: number;
  /** Weight of the engine's KV usage (0–1). */
  readonly kvUsage: number;
}

export const DEFAULT_ROUTER_WEIGHTS: RouterWeights = Object.freeze({ overlap: 1, load: 0.5, kvUsage: 0.1 });

export interface RouteDecision {
  readonly mode: RouterMode;
  /** The chosen engine, or undefined for the shared queue. */
  readonly engineId: string | undefined;
  /** Leading prompt blocks the chosen engine holds (0 for the shared queue or a load-only choice). */
  readonly overlapBlocks: number;
  readonly numPromptBlocks: number;
  readonly score: number;
}

export interface RouteInput {
  readonly mode: RouterMode;
  readonly engines: readonly EngineLoad[];
  /** Leading blocks of the prompt each engine holds (engines holding none are absent). */
  readonly overlap: ReadonlyMap<string, number>;
  readonly numPromptBlocks: number;
  /**
   * The hash of the prompt's first full block, when it has one: a prompt no engine holds yet goes to
   * the engine this hash picks (rendezvous hashing), so concurrent requests with a new shared prefix
   * meet on one engine instead of each computing it where it lands.
   */
  readonly firstBlockHash?: string;
  readonly weights?: RouterWeights;
  /** A number in [0, 1) (random mode) or a counter (round-robin mode) supplied by the caller. */
  readonly pick: number;
}

/** The engine's score in `kv` mode: higher is better. */
export function kvScore(engine: EngineLoad, overlapBlocks: number, numPromptBlocks: number, w: RouterWeights): number {
  const overlap = numPromptBlocks > 0 ? overlapBlocks / numPromptBlocks : 0;
  const load = (engine.numRunning + engine.numWaiting) / engine.maxRunning;
  return w.overlap * overlap - w.load * load - w.kvUsage * engine.kvUsage;
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
  let best: RouteDecision = shared;
  for (const engine of engines) {
    const blocks = overlap.get(engine.engineId) ?? 0;
    if (blocks === 0) continue;
    const score = kvScore(engine, blocks, numPromptBlocks, weights);
    if (best.engineId === undefined || score > best.score) {
      best = { mode, engineId: engine.engineId, overlapBlocks: blocks, numPromptBlocks, score };
    }
  }
  // A cached prefix is worth a queue only while its engine is not much busier than an idle one would be:
  // below the best idle score, the shared queue (any free engine) is the better bet.
  const idle = Math.max(...engines.map((e) => kvScore(e, 0, numPromptBlocks, weights)));
  if (best.engineId !== undefined && best.score >= idle) return best;
  if (best.engineId === undefined && input.firstBlockHash !== undefined) {
    // No engine holds it: the prefix's home engine, unless it is already full (then any free engine).
    const home = rendezvous(engines, input.firstBlockHash);
    if (home && home.numRunning + home.numWaiting < home.maxRunning) {
      return {
        mode,
        engineId: home.engineId,
        overlapBlocks: 0,
        numPromptBlocks,
        score: kvScore(home, 0, numPromptBlocks, weights),
      };
    }
  }
  return shared;
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
