import { describe, expect, it } from 'vitest';
import { chooseWorkers, computePlacement, expertsOfWorker, PlacementError } from '../src/placement.ts';

const base = { numLayers: 2, numExperts: 8, revision: 1 } as const;

describe('placement', () => {
  it('places experts contiguously: worker w hosts a run of adjacent experts', () => {
    const p = computePlacement({ ...base, workers: ['a', 'b'], strategy: 'contiguous', replication: 1 });
    expect(p.replicas[0]).toEqual([[0], [0], [0], [0], [1], [1], [1], [1]]);
    expect(expertsOfWorker(p, 1)).toEqual([
      [0, 4],
      [0, 5],
      [0, 6],
      [0, 7],
      [1, 4],
      [1, 5],
      [1, 6],
      [1, 7],
    ]);
  });

  it('places experts round-robin', () => {
    const p = computePlacement({ ...base, workers: ['a', 'b', 'c'], strategy: 'round-robin', replication: 1 });
    expect(p.replicas[1]?.map((r) => r[0])).toEqual([0, 1, 2, 0, 1, 2, 0, 1]);
  });

  it('puts each replica on a different worker', () => {
    const p = computePlacement({ ...base, workers: ['a', 'b', 'c'], strategy: 'contiguous', replication: 2 });
    for (const experts of p.replicas) for (const workers of experts) expect(new Set(workers).size).toBe(2);
    expect(p.replicas[0]?.[7]).toEqual([2, 0]);
  });

  it('falls back to a live replica, and marks experts with none as -1', () => {
    const replicated = computePlacement({ ...base, workers: ['a', 'b'], strategy: 'contiguous', replication: 2 });
    expect(Array.from(chooseWorkers(replicated, 0, (w) => w !== 0))).toEqual([1, 1, 1, 1, 1, 1, 1, 1]);
    const single = computePlacement({ ...base, workers: ['a', 'b'], strategy: 'contiguous', replication: 1 });
    expect(Array.from(chooseWorkers(single, 0, (w) => w !== 0))).toEqual([-1, -1, -1, -1, 1, 1, 1, 1]);
  });

  it('rejects a replication factor larger than the number of workers, and no workers at all', () => {
    expect(() => computePlacement({ ...base, workers: ['a'], strategy: 'contiguous', replication: 2 })).toThrow(
      PlacementError,
    );
    expect(() => computePlacement({ ...base, workers: [], strategy: 'contiguous', replication: 1 })).toThrow(
      'no expert workers',
    );
  });
});
