import { describe, expect, it } from 'vitest';
import { computePlacement, expertsOfWorker, type Placement } from '@switchyard/routing';
import type { PlacementChange, PlacementState } from '@switchyard/rpc';
import { LocalPlacementStore, Rebalancer, predictedBalancedness, type RebalanceTarget } from '../src/rebalancer.ts';

const config = { name: 'm', numLayers: 2, numExperts: 8 };
const WORKERS = ['w0', 'w1', 'w2', 'w3'];
/** Expert 0 takes most pairs in both layers. */
const SKEWED = [
  [400, 20, 20, 20, 20, 20, 20, 20],
  [300, 40, 20, 20, 20, 20, 20, 20],
];
const FLAT = [new Array<number>(8).fill(50), new Array<number>(8).fill(50)];
const settings = { redundantExperts: 4, maxExpertsPerWorker: 3 };

/** A worker whose loads finish when the test says (or at once), and which records what it was told. */
class FakeWorker {
  readonly loads: PlacementChange[] = [];
  readonly unloads: PlacementChange[] = [];
  fail = false;
  #release: (() => void) | undefined;
  held = false;

  async load(change: PlacementChange): Promise<PlacementState> {
    this.loads.push(change);
    if (this.held) await new Promise<void>((resolve) => (this.#release = resolve));
    if (this.fail) throw new Error('worker died while loading');
    return { hosted: change.experts, placementRevision: change.placementRevision };
  }

  async unload(change: PlacementChange): Promise<PlacementState> {
    this.unloads.push(change);
    return { hosted: [], placementRevision: change.placementRevision };
  }

  release(): void {
    this.held = false;
    this.#release?.();
  }
}

function gateway(): RebalanceTarget & { workers: FakeWorker[]; switches: number[] } {
  const workers = WORKERS.map(() => new FakeWorker());
  const target = {
    placement: computePlacement({
      workers: WORKERS,
      numLayers: 2,
      numExperts: 8,
      strategy: 'contiguous',
      replication: 1,
      revision: 1,
    }),
    clients: new Map(workers.map((w, i) => [i, w])),
    workers,
    switches: [] as number[],
    setPlacement(p: Placement) {
      target.placement = p;
      target.switches.push(p.revision);
    },
  };
  return target;
}

const start = (
  store: LocalPlacementStore,
  target: RebalanceTarget,
  loads: readonly (readonly number[])[] | (() => readonly (readonly number[])[]) = SKEWED,
) =>
  Rebalancer.start({
    target,
    store,
    config,
    settings,
    loads: typeof loads === 'function' ? loads : () => loads,
    intervalMs: 0,
    loadDeadlineMs: 1_000,
    unloadGraceMs: 0,
    log: () => {},
  });

const settle = () => new Promise((resolve) => setTimeout(resolve, 20));

describe('predictedBalancedness', () => {
  it('is mean ÷ max worker load per layer, each expert split evenly among its replicas', () => {
    const p: Placement = { revision: 1, numLayers: 1, numExperts: 2, workers: ['a', 'b'], replicas: [[[0], [1]]] };
    expect(predictedBalancedness(p, [[30, 10]])).toBeCloseTo(20 / 30);
    const shared: Placement = { ...p, replicas: [[[0, 1], [1]]] };
    expect(predictedBalancedness(shared, [[30, 10]])).toBeCloseTo(20 / 25);
  });
});

describe('Rebalancer', () => {
  it('loads the gained experts first, then writes the next revision, switches, and unloads what workers lost', async () => {
    const store = new LocalPlacementStore();
    const target = gateway();
    const initial = target.placement;
    for (const w of target.workers) w.held = true;
    const rebalancer = await start(store, target);
    const pending = rebalancer.rebalanceNow();
    await settle();
    // While the workers load, serving goes on under revision 1, and the store still says 1.
    expect(target.placement.revision).toBe(1);
    expect((await store.get('m'))?.placement.revision).toBe(1);
    expect(target.workers.some((w) => w.loads.length > 0)).toBe(true);
    for (const w of target.workers) w.release();
    const result = await pending;
    expect(result.switched).toBe(true);
    expect(result.after).toBeGreaterThan(result.before + 0.05);
    expect(result.after).toBeGreaterThanOrEqual(0.9);
    expect(target.placement.revision).toBe(2);
    expect((await store.get('m'))?.placement.revision).toBe(2);
    // Every worker loaded exactly what it gained.
    for (const [w, worker] of target.workers.entries()) {
      const loaded = worker.loads.flatMap((c) => c.experts.map((e) => `${e.layer}:${e.expertId}`));
      const before = new Set(expertsOfWorker(initial, w).map(([l, e]) => `${l}:${e}`));
      const now = expertsOfWorker(target.placement, w).map(([l, e]) => `${l}:${e}`);
      expect(loaded.sort()).toEqual(now.filter((k) => !before.has(k)).sort());
    }
    await settle();
    // The lost experts are unloaded after the grace (0 here).
    expect(target.workers.reduce((n, w) => n + w.unloads.length, 0)).toBeGreaterThan(0);
    await rebalancer.stop();
  });

  it('loads in rounds: one expert per worker per call, all workers together, a round only after the last ended', async () => {
    const store = new LocalPlacementStore();
    const target = gateway();
    const log: string[] = [];
    for (const [w, worker] of target.workers.entries()) {
      const load = worker.load.bind(worker);
      worker.load = async (change) => {
        log.push(`start ${w}`);
        await new Promise((resolve) => setTimeout(resolve, 5 + 5 * w));
        log.push(`end ${w}`);
        return load(change);
      };
    }
    const rebalancer = await start(store, target);
    const result = await rebalancer.rebalanceNow();
    expect(result.switched).toBe(true);
    for (const worker of target.workers) for (const call of worker.loads) expect(call.experts).toHaveLength(1);
    // Split the log into rounds: a round's starts all come before any of its ends, and the next round's
    // first start comes after the last end of the one before.
    const counts = result.loaded ?? [];
    const rounds = Math.max(...counts);
    expect(rounds).toBeGreaterThan(1);
    let i = 0;
    for (let round = 0; round < rounds; round++) {
      const inRound = counts.filter((n) => n > round).length;
      const slice = log.slice(i, i + 2 * inRound);
      expect(slice.slice(0, inRound).every((e) => e.startsWith('start'))).toBe(true);
      expect(slice.slice(inRound).every((e) => e.startsWith('end'))).toBe(true);
      i += 2 * inRound;
    }
    expect(i).toBe(log.length);
    await rebalancer.stop();
  });

  it('does nothing when the gain is below the threshold, and nothing before any pair was routed', async () => {
    const flat = await start(new LocalPlacementStore(), gateway(), FLAT);
    expect(await flat.rebalanceNow()).toMatchObject({ switched: false, revision: 1 });
    expect((await flat.rebalanceNow()).reason).toMatch(/below the threshold/);
    await flat.stop();
    const idle = await start(new LocalPlacementStore(), gateway(), [new Array(8).fill(0), new Array(8).fill(0)]);
    expect((await idle.rebalanceNow()).reason).toMatch(/no pairs routed/);
    await idle.stop();
  });

  it('leaves the old revision in force everywhere when a worker fails during the re-placement', async () => {
    const store = new LocalPlacementStore();
    const target = gateway();
    const failing = target.workers[2];
    if (!failing) throw new Error('no worker 2');
    failing.fail = true;
    const rebalancer = await start(store, target);
    const result = await rebalancer.rebalanceNow();
    expect(result).toMatchObject({ switched: false, revision: 1 });
    expect(result.reason).toMatch(/revision 1 stays in force: w2: worker died while loading/);
    expect(target.placement.revision).toBe(1);
    expect((await store.get('m'))?.placement.revision).toBe(1);
    expect(target.switches).toEqual([]);
    await rebalancer.stop();
  });

  it('has two gateways agree through the store: one re-places, the other follows; racing, exactly one wins', async () => {
    const store = new LocalPlacementStore();
    const a = gateway();
    const b = gateway();
    let loads: readonly (readonly number[])[] = SKEWED;
    const ra = await start(store, a, () => loads);
    const rb = await start(store, b, () => loads);
    expect((await ra.rebalanceNow()).switched).toBe(true);
    await settle();
    expect(b.placement).toEqual(a.placement);
    expect(b.switches).toEqual([2]);
    // Both at revision 2; the load moves to expert 5 and both re-place at once: one writes revision 3,
    // the other adopts it.
    loads = SKEWED.map((row) => row.map((_, e) => (e === 5 ? 400 : 20)));
    const results = await Promise.all([ra.rebalanceNow(), rb.rebalanceNow()]);
    await settle();
    expect(results.filter((r) => r.switched)).toHaveLength(1);
    expect(results.find((r) => !r.switched)?.reason).toMatch(/another gateway re-placed first/);
    expect(a.placement.revision).toBe(3);
    expect(b.placement.revision).toBe(3);
    expect((await store.get('m'))?.placement.revision).toBe(3);
    await ra.stop();
    await rb.stop();
  });

  it('does not switch to the placement in force, even when forced', async () => {
    const store = new LocalPlacementStore();
    const target = gateway();
    const rebalancer = await start(store, target);
    expect((await rebalancer.rebalanceNow()).switched).toBe(true);
    const again = await rebalancer.rebalanceNow({ force: true });
    expect(again).toMatchObject({ switched: false, revision: 2 });
    expect(again.reason).toMatch(/the one in force/);
    await rebalancer.stop();
  });
});
