import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  balancedness,
  computeLoadAwarePlacement,
  pack,
  workerLoads,
  type LoadAwarePlacementRequest,
} from '../src/load-aware-placement.ts';
import { computePlacement, PlacementError, type Placement } from '../src/placement.ts';

const names = (n: number) => Array.from({ length: n }, (_, i) => `w${i}`);

/** The experts of each worker in one layer, sorted: what a placement means for the workers. */
function expertsByWorker(placement: Placement, layer: number): number[][] {
  const out = placement.workers.map(() => [] as number[]);
  placement.replicas[layer]?.forEach((ws, expert) => ws.forEach((w) => out[w]?.push(expert)));
  return out.map((es) => es.sort((a, b) => a - b));
}

/** DeepSeek's phy2log (slot → expert, `perWorker` consecutive slots per GPU) as sorted experts per worker. */
function fromPhysical(phy2log: readonly number[], perWorker: number): number[][] {
  return Array.from({ length: phy2log.length / perWorker }, (_, w) =>
    phy2log.slice(w * perWorker, (w + 1) * perWorker).sort((a, b) => a - b),
  );
}

describe('load-aware placement', () => {
  // The example of github.com/deepseek-ai/EPLB's README: 2 layers of 12 experts in 4 groups, 4 redundant
  // experts, 16 replicas on 2 nodes of 4 GPUs (2 per GPU); its output is the hierarchical policy's.
  it("reproduces DeepSeek EPLB's published example in hierarchical mode", () => {
    const placement = computeLoadAwarePlacement({
      workers: names(8),
      loads: [
        [90, 132, 40, 61, 104, 165, 39, 4, 73, 56, 183, 86],
        [20, 107, 104, 64, 19, 197, 187, 157, 172, 86, 16, 27],
      ],
      redundantExperts: 4,
      maxExpertsPerWorker: 2,
      hierarchy: { numNodes: 2, numExpertGroups: 4 },
      revision: 3,
    });
    expect(expertsByWorker(placement, 0)).toEqual(fromPhysical([5, 6, 5, 7, 8, 4, 3, 4, 10, 9, 10, 2, 0, 1, 11, 1], 2));
    expect(expertsByWorker(placement, 1)).toEqual(fromPhysical([7, 10, 6, 8, 6, 11, 8, 9, 2, 4, 5, 1, 5, 0, 3, 1], 2));
    expect(placement.revision).toBe(3);
    expect(placement.numExperts).toBe(12);
  });

  it('gives each extra slot to the expert with the highest load per replica, and packs heaviest first', () => {
    // Expert 0 (60) gets the first extra slot (60 > 30), then still leads at 30 per replica against
    // expert 1's 30: the tie goes to the lower id, so 3 replicas of 20. Replicas then: 30 (e1) → w0,
    // 20 × 3 (e0) → w1, w2, w0 (the two lighter ones hold e0 already), 10 (e2) → w1, 5 (e3) → w2.
    const placement = computeLoadAwarePlacement({
      workers: names(3),
      loads: [[60, 30, 10, 5]],
      redundantExperts: 2,
      revision: 1,
    });
    expect(placement.replicas[0]).toEqual([[1, 2, 0], [0], [1], [2]]);
    expect(workerLoads(placement, [[60, 30, 10, 5]])).toEqual([[50, 30, 25]]);
  });

  it('evens out the skewed preset far better than the static placements', () => {
    // Pairs per expert of one layer of `skewed` (expert 0 takes 41%), 4 workers.
    const row = [410, 130, 80, 60, 50, 40, 35, 30, 28, 25, 22, 20, 18, 18, 16, 18];
    const loads = [row];
    const contiguous = computePlacement({
      workers: names(4),
      numLayers: 1,
      numExperts: 16,
      strategy: 'contiguous',
      replication: 1,
      revision: 1,
    });
    const eplb = computeLoadAwarePlacement({ workers: names(4), loads, redundantExperts: 4, revision: 1 });
    const [before] = workerLoads(contiguous, loads);
    const [after] = workerLoads(eplb, loads);
    expect(balancedness(before ?? [])).toBeLessThan(0.5);
    expect(balancedness(after ?? [])).toBeGreaterThan(0.95);
  });

  it('places each layer from its own loads', () => {
    const placement = computeLoadAwarePlacement({
      workers: names(2),
      loads: [
        [9, 1, 1, 1],
        [1, 1, 1, 9],
      ],
      redundantExperts: 0,
      maxExpertsPerWorker: 3,
      revision: 1,
    });
    expect(expertsByWorker(placement, 0)).toEqual([[0], [1, 2, 3]]);
    expect(expertsByWorker(placement, 1)).toEqual([[3], [0, 1, 2]]);
  });

  it('moves a replica aside when every worker with room already holds the expert', () => {
    // All loads equal, so ties put e0 and e1 on w0 (full), e2 on w1, and e2's second replica finds no
    // worker with room that lacks it: e0 (the first replica w0 took) moves to w1 and e2 takes its slot.
    const layer: number[][] = [[], [], []];
    const zero = (expert: number) => ({ expert, load: 0 });
    pack([zero(0), zero(1), zero(2), zero(2)], [0, 1], 2, layer);
    expect(layer).toEqual([[1], [0], [1, 0]]);
  });

  it('rejects inputs that cannot be placed, naming the problem', () => {
    const base: LoadAwarePlacementRequest = {
      workers: names(2),
      loads: [[1, 2, 3, 4]],
      redundantExperts: 0,
      revision: 1,
    };
    const fails = (change: Partial<LoadAwarePlacementRequest>, message: RegExp) =>
      expect(() => computeLoadAwarePlacement({ ...base, ...change })).toThrow(
        expect.objectContaining({ name: 'PlacementError', message: expect.stringMatching(message) }),
      );
    fails({ workers: [] }, /no expert workers/);
    fails({ workers: ['a', 'a'] }, /distinct/);
    fails({ loads: [] }, /at least one layer/);
    fails(
      {
        loads: [
          [1, 2, 3, 4],
          [1, 2],
        ],
      },
      /layer 1 name 2 experts/,
    );
    fails({ loads: [[1, Number.NaN, 3, 4]] }, /expert 1 is NaN/);
    fails({ loads: [[1, -2, 3, 4]] }, /expert 1 is -2/);
    fails({ redundantExperts: 1.5 }, /integer ≥ 0/);
    fails({ maxExpertsPerWorker: 0 }, /max experts per worker 0/);
    fails({ redundantExperts: 2, maxExpertsPerWorker: 2 }, /need 6 slots per layer; 2 workers × 2 have 4/);
    fails({ redundantExperts: 5, maxExpertsPerWorker: 8 }, /more than the workers can hold/);
    fails({ hierarchy: { numNodes: 3 } }, /2 workers do not split into 3 nodes/);
    fails({ hierarchy: { numNodes: 2, numExpertGroups: 3 } }, /4 experts do not split into 3 groups/);
    fails(
      { hierarchy: { numNodes: 2 }, redundantExperts: 1, maxExpertsPerWorker: 3 },
      /1 redundant experts do not split/,
    );
    expect(() => computeLoadAwarePlacement({ ...base, redundantExperts: 9 })).toThrow(PlacementError);
  });
});

/** What every load-aware placement guarantees, checked against its request. */
function checkInvariants(placement: Placement, request: LoadAwarePlacementRequest, workersPerNode?: number): void {
  const numWorkers = request.workers.length;
  const numExperts = request.loads[0]?.length ?? 0;
  const maxPerWorker = request.maxExpertsPerWorker ?? Math.ceil((numExperts + request.redundantExperts) / numWorkers);
  placement.replicas.forEach((experts, layer) => {
    const row = request.loads[layer] ?? [];
    // Every expert at least once, replicas on distinct workers, N extra replicas in all.
    for (const ws of experts) {
      expect(ws.length).toBeGreaterThanOrEqual(1);
      expect(new Set(ws).size).toBe(ws.length);
      for (const w of ws) expect(w >= 0 && w < numWorkers).toBe(true);
    }
    expect(experts.reduce((n, ws) => n + ws.length, 0)).toBe(numExperts + request.redundantExperts);
    // Slot bound per worker.
    for (const es of expertsByWorker(placement, layer)) expect(es.length).toBeLessThanOrEqual(maxPerWorker);
    // No worker above the ideal by more than the heaviest single replica.
    const perWorker = workerLoads(placement, request.loads)[layer] ?? [];
    // The ideal is the layer's (or, in hierarchical mode, the worker's node's) load ÷ its workers.
    const group = workersPerNode ?? numWorkers;
    const idealOf = (w: number) => {
      const node = Math.floor(w / group);
      return perWorker.slice(node * group, (node + 1) * group).reduce((a, b) => a + b, 0) / group;
    };
    const heaviestReplica = Math.max(...experts.map((ws, e) => (row[e] ?? 0) / ws.length));
    perWorker.forEach((load, w) => expect(load).toBeLessThanOrEqual(idealOf(w) + heaviestReplica + 1e-9));
  });
}

describe('load-aware placement on random loads', () => {
  const flat = fc
    .record({
      numWorkers: fc.integer({ min: 1, max: 8 }),
      numExperts: fc.integer({ min: 1, max: 24 }),
      numLayers: fc.integer({ min: 1, max: 3 }),
      extraSlots: fc.integer({ min: 0, max: 3 }),
      redundantFraction: fc.double({ min: 0, max: 1, noNaN: true }),
      seedLoads: fc.array(fc.integer({ min: 0, max: 1000 }), { minLength: 72, maxLength: 72 }),
      zipf: fc.boolean(),
    })
    .map(({ numWorkers, numExperts, numLayers, extraSlots, redundantFraction, seedLoads, zipf }) => {
      const maxN = numExperts * (numWorkers - 1);
      const redundantExperts = Math.floor(redundantFraction * maxN);
      const minSlots = Math.ceil((numExperts + redundantExperts) / numWorkers);
      const loads = Array.from({ length: numLayers }, (_, l) =>
        Array.from({ length: numExperts }, (_, e) => {
          const v = seedLoads[(l * numExperts + e) % seedLoads.length] ?? 0;
          return zipf ? Math.round(v / (e + 1)) : v;
        }),
      );
      return {
        workers: names(numWorkers),
        loads,
        redundantExperts,
        maxExpertsPerWorker: minSlots + extraSlots,
        revision: 1,
      } satisfies LoadAwarePlacementRequest;
    });

  it('places every expert, never twice on a worker, within the slots, near the ideal load', () => {
    fc.assert(
      fc.property(flat, (request) => checkInvariants(computeLoadAwarePlacement(request), request)),
      { numRuns: 500 },
    );
  });

  it('keeps the same guarantees in hierarchical mode, and keeps every expert inside one node', () => {
    const hierarchical = fc
      .record({
        numNodes: fc.integer({ min: 1, max: 3 }),
        workersPerNode: fc.integer({ min: 1, max: 4 }),
        groupsPerNode: fc.integer({ min: 1, max: 3 }),
        groupSize: fc.integer({ min: 1, max: 4 }),
        redundantPerNode: fc.integer({ min: 0, max: 6 }),
        loads: fc.array(fc.integer({ min: 0, max: 500 }), { minLength: 36, maxLength: 36 }),
      })
      .filter((r) => r.redundantPerNode <= r.groupsPerNode * r.groupSize * (r.workersPerNode - 1))
      .map((r) => {
        const numExperts = r.numNodes * r.groupsPerNode * r.groupSize;
        const numWorkers = r.numNodes * r.workersPerNode;
        const perNode = r.groupsPerNode * r.groupSize + r.redundantPerNode;
        return {
          workers: names(numWorkers),
          loads: [Array.from({ length: numExperts }, (_, e) => r.loads[e % r.loads.length] ?? 0)],
          redundantExperts: r.redundantPerNode * r.numNodes,
          maxExpertsPerWorker: Math.ceil(perNode / r.workersPerNode),
          hierarchy: { numNodes: r.numNodes, numExpertGroups: r.numNodes * r.groupsPerNode },
          revision: 1,
          workersPerNode: r.workersPerNode,
        };
      });
    fc.assert(
      fc.property(hierarchical, ({ workersPerNode, ...request }) => {
        const placement = computeLoadAwarePlacement(request);
        checkInvariants(placement, request, workersPerNode);
        for (const ws of placement.replicas[0] ?? []) {
          expect(new Set(ws.map((w) => Math.floor(w / workersPerNode))).size).toBe(1);
        }
      }),
      { numRuns: 300 },
    );
  });
});
