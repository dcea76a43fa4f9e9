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
  return best.engineId !== undefined && best.score >= idle ? best : shared;
}
