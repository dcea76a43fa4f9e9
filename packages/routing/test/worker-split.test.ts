import { describe, expect, it } from 'vitest';
import { routesFromPairs, splitByWorker } from '../src/index.ts';
import type { WorkerShard } from '../src/index.ts';

/** Experts 0 and 1 on worker 0, experts 2 and 3 on worker 1. */
const workerOfExpert = new Int32Array([0, 0, 1, 1]);
const routes = routesFromPairs([
  [
    [0, 0.5],
    [1, 0.25],
  ], // both on worker 0
  [
    [3, 0.75],
    [0, 0.125],
  ], // one on each worker
  [
    [2, 0.5],
    [3, 0.5],
  ], // both on worker 1
]);

function describeShard(s: WorkerShard): unknown {
  return {
    workerIndex: s.workerIndex,
    tokenRows: Array.from(s.tokenRows),
    offsets: Array.from(s.routes.offsets),
    expertIds: Array.from(s.routes.expertIds),
    weights: Array.from(s.routes.weights),
  };
}

describe('splitByWorker', () => {
  it('sends each token once per worker with only the pairs that worker hosts', () => {
    const shards = splitByWorker(routes, workerOfExpert, 2);
    expect(shards.map(describeShard)).toEqual([
      { workerIndex: 0, tokenRows: [0, 1], offsets: [0, 2, 3], expertIds: [0, 1, 0], weights: [0.5, 0.25, 0.125] },
      { workerIndex: 1, tokenRows: [1, 2], offsets: [0, 1, 3], expertIds: [3, 2, 3], weights: [0.75, 0.5, 0.5] },
    ]);
    expect(shards.map((s) => s.routes.numTokens)).toEqual([2, 2]);
  });

  it('omits workers that receive no token', () => {
    const shards = splitByWorker(routes, new Int32Array([2, 2, 0, 0]), 3);
    expect(shards.map((s) => s.workerIndex)).toEqual([0, 2]);
  });

  it('sends a top-2 token once when both experts share a worker', () => {
    const shards = splitByWorker(routes, new Int32Array([0, 0, 0, 0]), 1);
    expect(shards.map(describeShard)).toEqual([
      {
        workerIndex: 0,
        tokenRows: [0, 1, 2],
        offsets: [0, 2, 4, 6],
        expertIds: [0, 1, 3, 0, 2, 3],
        weights: [0.5, 0.25, 0.75, 0.125, 0.5, 0.5],
      },
    ]);
  });

  it('rejects an expert mapped outside the worker range', () => {
    expect(() => splitByWorker(routes, new Int32Array([0, 0, 1, 2]), 2)).toThrow(RangeError);
  });
});
