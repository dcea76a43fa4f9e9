import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  computePlacement,
  routesFromPairs,
  routesRotation,
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

  it('rejects an expert id outside the replica table, and a rotation that is not an integer ≥ 0', () => {
    expect(() => shareAmongReplicas(routesFromPairs([[[5, 1]]]), [[0]])).toThrow(RangeError);
    expect(() => shareAmongReplicas(routesOf(1), [[0], [1]], -1)).toThrow(RangeError);
    expect(() => shareAmongReplicas(routesOf(1), [[0], [1]], 0.5)).toThrow(RangeError);
  });

  it('starts the chunks of expert e at replica (rotation + e) mod k, wrapping around', () => {
    // 7 pairs among 3 replicas: chunks of 3, 2, 2. Expert 0, rotation 1: the first chunk to replica 1 (worker 0).
    const routes = routesOf(7);
    const ofExpert = (w: Int32Array, e: number) => Array.from(w).filter((_, p) => p % 2 === e);
    expect(ofExpert(shareAmongReplicas(routes, [[2, 0, 1], [1]], 1), 0)).toEqual([0, 0, 0, 1, 1, 2, 2]);
    // Expert 1 on [5, 6], rotation 0: starts at replica (0 + 1) mod 2 = worker 6 (4 pairs, then 3).
    expect(ofExpert(shareAmongReplicas(routes, [[2], [5, 6]], 0), 1)).toEqual([6, 6, 6, 6, 5, 5, 5]);
  });

  it('spreads single pairs evenly over steps whose routings differ (routesRotation)', () => {
    // One token per step, routed to expert 0 (4 replicas) and one other expert: the step's routing varies
    // with the other expert, so its rotation does, and over many steps each replica takes about a quarter.
    const replicasOf = [[0, 1, 2, 3], ...Array.from({ length: 63 }, () => [0])];
    const taken = [0, 0, 0, 0];
    for (let step = 0; step < 4000; step++) {
      const routes = routesFromPairs([
        [
          [0, 1],
          [1 + (step % 63), 1],
        ],
      ]);
      const w = shareAmongReplicas(routes, replicasOf, routesRotation(routes, step % 2));
      taken[w[0] ?? -1] = (taken[w[0] ?? -1] ?? 0) + 1;
    }
    for (const n of taken) expect(n).toBeGreaterThan(800);
    // Without the rotation, the first replica takes every one.
    const plain = shareAmongReplicas(routesOf(1), [[0, 1, 2, 3], [0]]);
    expect(plain[0]).toBe(0);
  });

  it('gives the same rotation for the same routing and layer, and another for another layer', () => {
    const routes = routesOf(3);
    expect(routesRotation(routes, 0)).toBe(routesRotation(routesOf(3), 0));
    expect(routesRotation(routes, 0)).not.toBe(routesRotation(routes, 1));
    expect(Number.isInteger(routesRotation(routes, 5)) && routesRotation(routes, 5) >= 0).toBe(true);
  });

  it('balances any expert within one pair among its replicas, and is the same on every call', () => {
    fc.assert(
      fc.property(
        fc.array(fc.array(fc.integer({ min: 0, max: 5 }), { minLength: 1, maxLength: 3 }), { maxLength: 40 }),
        fc.array(fc.uniqueArray(fc.integer({ min: 0, max: 6 }), { minLength: 1, maxLength: 4 }), {
          minLength: 6,
          maxLength: 6,
        }),
        fc.nat(),
        (tokens, replicasOf, rotation) => {
          const routes = routesFromPairs(tokens.map((es) => [...new Set(es)].map((e) => [e, 1] as const)));
          const workers = shareAmongReplicas(routes, replicasOf, rotation);
          expect(shareAmongReplicas(routes, replicasOf, rotation)).toEqual(workers);
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
