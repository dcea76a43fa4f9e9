import { describe, expect, it } from 'vitest';
import { expertsOfWorker } from '@switchyard/routing';
import { placeExperts } from '../src/expert-placement.ts';

const model = { numLayers: 1, numExperts: 4 };
const hot = [[70, 10, 10, 10]];
const count = (p: ReturnType<typeof placeExperts>) => p.replicas[0]?.map((ws) => ws.length);

describe('placeExperts', () => {
  it('uses the static strategy, capping replication at the workers present', () => {
    const p = placeExperts(['a', 'b'], model, { strategy: 'round-robin', replication: 3 }, 7);
    expect(p.replicas[0]).toEqual([
      [0, 1],
      [1, 0],
      [0, 1],
      [1, 0],
    ]);
    expect(p.revision).toBe(7);
  });

  it('places from loads when asked, replicating the hot expert', () => {
    const settings = {
      strategy: 'contiguous',
      replication: 1,
      loadAware: { loads: hot, redundantExperts: 2 },
    } as const;
    const p = placeExperts(['a', 'b', 'c'], model, settings, 1);
    expect(count(p)).toEqual([3, 1, 1, 1]);
  });

  it('uses only the redundant experts the workers present can hold', () => {
    const loadAware = { loads: hot, redundantExperts: 8 };
    // Two workers hold at most one copy of each expert each: 4 extra replicas.
    expect(count(placeExperts(['a', 'b'], model, { strategy: 'contiguous', replication: 1, loadAware }, 1))).toEqual([
      2, 2, 2, 2,
    ]);
    // Three slots on each of two workers: 6 − 4 = 2 extra.
    const bounded = { ...loadAware, maxExpertsPerWorker: 3 };
    const p = placeExperts(['a', 'b'], model, { strategy: 'contiguous', replication: 1, loadAware: bounded }, 1);
    expect(p.replicas[0]?.flat()).toHaveLength(6);
    expect(expertsOfWorker(p, 0)).toHaveLength(3);
  });

  it('places flat while the workers present do not split into the nodes asked for', () => {
    const loadAware = { loads: hot, redundantExperts: 2, numNodes: 2 };
    const p = placeExperts(['a', 'b', 'c'], model, { strategy: 'contiguous', replication: 1, loadAware }, 1);
    expect(count(p)).toEqual([3, 1, 1, 1]);
  });

  it('refuses loads of another shape than the model', () => {
    const loadAware = { loads: [[1, 2, 3]], redundantExperts: 0 };
    expect(() => placeExperts(['a'], model, { strategy: 'contiguous', replication: 1, loadAware }, 1)).toThrow(
      /expert loads name 1 layers × 3 experts; the model has 1 × 4/,
    );
  });
});
