import { describe, expect, it } from 'vitest';
import { computePlacement, expertsOfWorker, type Placement } from '@switchyard/routing';
import type { PlacementChange, PlacementState } from '@switchyard/rpc';
import { WarmupPlacement, type PlacementTarget } from '../src/warmup-placement.ts';

const model = { numLayers: 1, numExperts: 4 };
const WARMUP_MS = 5;
const settle = (ms = 40) => new Promise((resolve) => setTimeout(resolve, ms));

/** An executor stand-in: records loads per worker and the placements it is switched to, in order. */
function fakeTarget(failLoads = 0) {
  const events: string[] = [];
  let failures = failLoads;
  let placement: Placement = computePlacement({
    workers: ['a', 'b'],
    ...model,
    strategy: 'contiguous',
    replication: 1,
    revision: 1,
  });
  const client = (index: number) => ({
    load: async (change: PlacementChange): Promise<PlacementState> => {
      if (failures > 0) {
        failures--;
        throw new Error('worker gone');
      }
      events.push(`load ${index}: ${change.experts.map((e) => e.expertId).join(',')} @${change.placementRevision}`);
      return { hosted: change.experts, placementRevision: change.placementRevision };
    },
  });
  const target: PlacementTarget = {
    get placement() {
      return placement;
    },
    clients: new Map([
      [0, client(0)],
      [1, client(1)],
    ]),
    setPlacement: (next) => {
      events.push(`switch @${next.revision}`);
      placement = next;
    },
  };
  return { target, events };
}

const start = (target: PlacementTarget, loads: () => number[][], log: string[] = []) =>
  WarmupPlacement.start({
    target,
    config: model,
    settings: { redundantExperts: 2 },
    loads,
    warmupMs: WARMUP_MS,
    loadDeadlineMs: 1000,
    log: (line) => log.push(line),
  });

describe('WarmupPlacement', () => {
  it('waits while nothing has been routed, then loads the load-aware placement on every worker before switching, once', async () => {
    const { target, events } = fakeTarget();
    const initial = target.placement;
    let loads = [[0, 0, 0, 0]];
    const log: string[] = [];
    const warmup = start(target, () => loads, log);
    await settle();
    expect(events).toEqual([]);
    expect(warmup.state).toBe('waiting');
    loads = [[70, 10, 10, 10]];
    await settle();
    // Hot expert 0 gets both extra replicas' worth: it is on both workers.
    expect(target.placement.replicas[0]?.[0]).toHaveLength(2);
    expect(events.at(-1)).toBe('switch @2');
    // Each worker loaded only what it gained, one expert per call (paced rounds), all before the switch.
    const gained = [0, 1].map((w) => {
      const had = new Set(expertsOfWorker(initial, w).map(([, e]) => e));
      return expertsOfWorker(target.placement, w)
        .map(([, e]) => e)
        .filter((e) => !had.has(e));
    });
    expect(gained.flat().length).toBeGreaterThan(0);
    for (const w of [0, 1]) {
      expect(events.filter((e) => e.startsWith(`load ${w}:`))).toEqual(gained[w]?.map((e) => `load ${w}: ${e} @2`));
    }
    expect(warmup.state).toBe('placed');
    expect(log).toEqual(['placement revision 2: load-aware, from 100 routed pairs']);
    await settle();
    expect(events.filter((e) => e.startsWith('switch'))).toHaveLength(1);
  });

  it('keeps the current placement when a worker fails to load, and tries again after the next warm-up', async () => {
    const { target, events } = fakeTarget(1);
    const log: string[] = [];
    const warmup = start(target, () => [[70, 10, 10, 10]], log);
    await settle(80);
    expect(log[0]).toMatch(/failed, keeping the current one: a: worker gone/);
    expect(warmup.state).toBe('placed');
    expect(events.at(-1)).toBe('switch @2');
  });

  it('does nothing once stopped', async () => {
    const { target, events } = fakeTarget();
    const warmup = start(target, () => [[70, 10, 10, 10]]);
    warmup.stop();
    await settle();
    expect(events).toEqual([]);
    expect(warmup.state).toBe('stopped');
  });
});
