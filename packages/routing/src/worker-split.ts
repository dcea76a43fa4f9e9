/**
 * The wire split: which batch rows go to which expert worker, and with which local pairs.
 *
 * A token is sent once per worker that hosts at least one of its experts, not once per expert; the
 * worker applies its own gate weights and returns one partial sum per token (docs/architecture.md §4).
 */
import type { TokenRoutes, WorkerShard } from './types.ts';

/**
 * Splits routes by worker. Shards are ordered by ascending worker index and workers that receive no
 * token are omitted. Within a shard, token i is batch row tokenRows[i] (ascending) and its pairs keep
 * their order from `routes` (best first). Two passes over the pairs: count, then fill.
 */
export function splitByWorker(routes: TokenRoutes, workerOfExpert: Int32Array, numWorkers: number): WorkerShard[] {
  const workerOfPair = routes.expertIds.map((e) => workerOfExpert[e] ?? -1);
  return splitByPairWorker(routes, workerOfPair, numWorkers);
}

/**
 * Like `splitByWorker`, with the worker chosen per pair (`workerOfPair[p]` for `routes.expertIds[p]`):
 * the shape `shareAmongReplicas` produces, where one expert's pairs may go to several workers.
 */
export function splitByPairWorker(routes: TokenRoutes, workerOfPair: Int32Array, numWorkers: number): WorkerShard[] {
  if (workerOfPair.length !== routes.expertIds.length) {
    throw new RangeError(`${workerOfPair.length} pair workers for ${routes.expertIds.length} pairs`);
  }
  const workerOf = (pair: number) => {
    const w = workerOfPair[pair] ?? -1;
    if (w < 0 || w >= numWorkers) {
      throw new RangeError(`expert ${routes.expertIds[pair]} maps to worker ${w}, outside [0, ${numWorkers})`);
    }
    return w;
  };
  const numTokensOf = new Int32Array(numWorkers);
  const numPairsOf = new Int32Array(numWorkers);
  const lastToken = new Int32Array(numWorkers).fill(-1);
  forEachPair(routes, (t, p) => {
    const w = workerOf(p);
    numPairsOf[w] = (numPairsOf[w] ?? 0) + 1;
    if (lastToken[w] !== t) {
      lastToken[w] = t;
      numTokensOf[w] = (numTokensOf[w] ?? 0) + 1;
    }
  });

  const shards = Array.from({ length: numWorkers }, (_, w) => emptyShard(w, numTokensOf[w] ?? 0, numPairsOf[w] ?? 0));
  const tokenCursor = new Int32Array(numWorkers);
  const pairCursor = new Int32Array(numWorkers);
  lastToken.fill(-1);
  forEachPair(routes, (t, p) => {
    const w = workerOf(p);
    const shard = shards[w];
    if (shard === undefined) return;
    if (lastToken[w] !== t) {
      lastToken[w] = t;
      shard.tokenRows[tokenCursor[w] ?? 0] = t;
      tokenCursor[w] = (tokenCursor[w] ?? 0) + 1;
    }
    const q = pairCursor[w] ?? 0;
    shard.routes.expertIds[q] = routes.expertIds[p] ?? 0;
    shard.routes.weights[q] = routes.weights[p] ?? 0;
    pairCursor[w] = q + 1;
    shard.routes.offsets[tokenCursor[w] ?? 0] = q + 1;
  });
  return shards.filter((s) => s.tokenRows.length > 0);
}

function forEachPair(routes: TokenRoutes, visit: (token: number, pair: number) => void): void {
  for (let t = 0; t < routes.numTokens; t++) {
    for (let p = routes.offsets[t] ?? 0; p < (routes.offsets[t + 1] ?? 0); p++) visit(t, p);
  }
}

function emptyShard(workerIndex: number, numTokens: number, numPairs: number): WorkerShard {
  return {
    workerIndex,
    tokenRows: new Int32Array(numTokens),
    routes: {
      numTokens,
      offsets: new Int32Array(numTokens + 1),
      expertIds: new Int32Array(numPairs),
      weights: new Float32Array(numPairs),
    },
  };
}
