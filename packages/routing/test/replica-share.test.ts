import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  computePlacement,
  routesFromPairs,
  shareAmongReplicas,
  splitByPairWorker,
  usableReplicas,
  type TokenRoutes,
} from '../src/index.ts';

/** Every token routed to expert 0 (weight 1) and expert 1 (weight 0.5). */
const routesOf = (numTokens: number): TokenRoutes =>
  routesFromPairs(
    Array.from({ length: numTokens }, () => [
      [0, 1],
      [1, 0.5],
    ]),
  );

describe('shareAmongReplicas', () => {
  it("cuts an expert's pairs into contiguous chunks, one per replica in replica order, the first ones larger", () => {
    // Expert 0 on workers 2, 0, 1 (7 pairs: 3, 2, 2); expert 1 on worker 1 only.
    const workers = shareAmongReplicas(routesOf(7), [[2, 0, 1], [1]]);
    const ofExpert = (e: number) => Array.from(workers).filter((_, p) => p % 2 === e);
    expect(ofExpert(0)).toEqual([2, 2, 2, 0, 0, 1, 1]);
    expect(ofExpert(1)).toEqual([1, 1, 1, 1, 1, 1, 1]);
  });

  it('marks the pairs of an expert with no live replica as -1, and gives one pair to the first replica', () => {
    expect(Array.from(shareAmongReplicas(routesOf(1), [[3, 4], []]))).toEqual([3, -1]);
  });

  it('rejects an expert id outside the replica table', () => {
    expect(() => shareAmongReplicas(routesFromPairs([[[5, 1]]]), [[0]])).toThrow(RangeError);
  });

  it('balances any expert within one pair among its replicas, and is the same on every call', () => {
    fc.assert(
      fc.property(
        fc.array(fc.array(fc.integer({ min: 0, max: 5 }), { minLength: 1, maxLength: 3 }), { maxLength: 40 }),
        fc.array(fc.uniqueArray(fc.integer({ min: 0, max: 6 }), { minLength: 1, maxLength: 4 }), {
          minLength: 6,
          maxLength: 6,
        }),
        (tokens, replicasOf) => {
          const routes = routesFromPairs(tokens.map((es) => [...new Set(es)].map((e) => [e, 1] as const)));
          const workers = shareAmongReplicas(routes, replicasOf);
          expect(shareAmongReplicas(routes, replicasOf)).toEqual(workers);
          replicasOf.forEach((replicas, e) => {
            const mine = Array.from(workers).filter((_, p) => routes.expertIds[p] === e);
            const counts = replicas.map((w) => mine.filter((x) => x === w).length);
            if (mine.length === 0) return;
            expect(counts.reduce((a, b) => a + b, 0)).toBe(mine.length);
            expect(Math.max(...counts) - Math.min(...counts)).toBeLessThanOrEqual(1);
          });
        },
      ),
    );
  });
});

describe('splitByPairWorker', () => {
  it('sends a token to every worker one of its pairs went to, once each, with those pairs only', () => {
    const routes = routesOf(3);
    // Expert 0 shared by workers 0 and 1 (tokens 0–1, token 2), expert 1 on worker 1.
    const shards = splitByPairWorker(routes, shareAmongReplicas(routes, [[0, 1], [1]]), 2);
    expect(
      shards.map((s) => ({
        worker: s.workerIndex,
        rows: Array.from(s.tokenRows),
        offsets: Array.from(s.routes.offsets),
        experts: Array.from(s.routes.expertIds),
      })),
    ).toEqual([
      { worker: 0, rows: [0, 1], offsets: [0, 1, 2], experts: [0, 0] },
      { worker: 1, rows: [0, 1, 2], offsets: [0, 1, 2, 4], experts: [1, 1, 0, 1] },
    ]);
  });

  it('rejects a pair without a worker and a table of the wrong length', () => {
    const routes = routesOf(1);
    expect(() => splitByPairWorker(routes, Int32Array.from([0, -1]), 2)).toThrow(RangeError);
    expect(() => splitByPairWorker(routes, Int32Array.from([0]), 2)).toThrow(RangeError);
  });
});

describe('usableReplicas', () => {
  it('lists the usable replicas of each expert, primary first', () => {
    const placement = computePlacement({
      workers: ['a', 'b', 'c'],
      numLayers: 1,
      numExperts: 3,
      strategy: 'round-robin',
      replication: 2,
      revision: 1,
    });
    expect(usableReplicas(placement, 0, () => true)).toEqual([
      [0, 1],
      [1, 2],
      [2, 0],
    ]);
    expect(usableReplicas(placement, 0, (w) => w !== 1)).toEqual([[0], [2], [2, 0]]);
  });
});
