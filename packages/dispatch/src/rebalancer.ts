/**
 * Live re-placement (issue 14 item 4): from the loads a gateway routed over its window, a load-aware
 * placement is computed and, when it would raise balancedness by more than a threshold, put in force
 * without stalling serving:
 *
 * 1. every worker loads the experts the new placement gives it, in the background — requests keep
 *    being served on the current placement meanwhile, and never wait for a load (loads go in paced
 *    rounds, one expert per worker at a time, all workers together: `loadInRounds`);
 * 2. only when every load is done is the placement written to the placement store as the next revision,
 *    with a compare-and-set (two gateways that re-place at once: one wins, the other adopts its revision);
 * 3. every gateway following the store switches its executor at its next layer call (both placements
 *    are fully loaded then, so a step that spans the switch computes the same numbers);
 * 4. after a grace period, each worker unloads the experts the placement in force no longer gives it.
 *
 * A worker that fails to load leaves the old revision in force everywhere (nothing was written). The
 * balancedness compared is the predicted one: each expert's load split evenly among its replicas (as the
 * executor splits it), worker loads summed, mean ÷ max per layer, averaged over layers.
 */
import type { PlacementWrite, StoredPlacement, Watch } from '@switchyard/cluster';
import type { ModelConfig } from '@switchyard/model';
import { expertsOfWorker, type Placement } from '@switchyard/routing';
import type { ExpertStreamClient } from '@switchyard/rpc';
import { placeExperts, type LoadAwareSettings } from './expert-placement.ts';
import { loadInRounds } from './load-rounds.ts';

/** The part of the placement store the rebalancer uses (PlacementStore on NATS, or `LocalPlacementStore`). */
export interface PlacementStoreLike {
  get(model: string): Promise<StoredPlacement | undefined>;
  proposeInitial(model: string, placement: Placement): Promise<PlacementWrite>;
  update(next: Placement, expected: StoredPlacement): Promise<PlacementWrite>;
  watch(model: string): Promise<Watch<StoredPlacement>>;
}

/** What the rebalancer needs of the remote executor. */
export interface RebalanceTarget {
  readonly placement: Placement;
  readonly clients: ReadonlyMap<number, Pick<ExpertStreamClient, 'load' | 'unload'>>;
  setPlacement(placement: Placement): void;
}

export interface RebalancerOptions {
  readonly target: RebalanceTarget;
  readonly store: PlacementStoreLike;
  readonly config: Pick<ModelConfig, 'name' | 'numLayers' | 'numExperts'>;
  readonly settings: Omit<LoadAwareSettings, 'loads'>;
  /** Pairs routed per [layer][expert] over the window. */
  readonly loads: () => readonly (readonly number[])[];
  /** Re-place this often (0: only on demand, `rebalanceNow`). */
  readonly intervalMs: number;
  /** The least predicted balancedness gain worth a re-placement (default 0.05). */
  readonly threshold?: number;
  readonly loadDeadlineMs: number;
  /** How long experts a worker lost stay loaded after the switch (calls in flight may still use them). */
  readonly unloadGraceMs?: number;
  readonly log: (line: string) => void;
}

export interface RebalanceResult {
  readonly switched: boolean;
  /** The revision in force afterwards. */
  readonly revision: number;
  /** Predicted balancedness of the placement before and of the proposal. */
  readonly before: number;
  readonly after: number;
  /** Why nothing was switched, when nothing was. */
  readonly reason?: string;
  /** Per worker (index), experts loaded for the new placement and unloaded after it. */
  readonly loaded?: readonly number[];
}

/** Predicted balancedness (mean ÷ max worker load per layer, averaged over layers) of `placement` under `loads`. */
export function predictedBalancedness(placement: Placement, loads: readonly (readonly number[])[]): number {
  const numWorkers = placement.workers.length;
  let sum = 0;
  let layers = 0;
  for (let layer = 0; layer < placement.numLayers; layer++) {
    const perWorker = new Array<number>(numWorkers).fill(0);
    const row = loads[layer] ?? [];
    for (let e = 0; e < placement.numExperts; e++) {
      const replicas = placement.replicas[layer]?.[e] ?? [];
      for (const w of replicas) perWorker[w] = (perWorker[w] ?? 0) + (row[e] ?? 0) / replicas.length;
    }
    const max = Math.max(...perWorker);
    if (max <= 0) continue;
    sum += perWorker.reduce((a, b) => a + b, 0) / numWorkers / max;
    layers++;
  }
  return layers === 0 ? 1 : sum / layers;
}

const key = (layer: number, expert: number) => `${layer}:${expert}`;

/** Experts `placement` gives worker `w` and `other` does not. */
export function gainedBy(placement: Placement, other: Placement | undefined, w: number): [number, number][] {
  const had = new Set(other ? expertsOfWorker(other, w).map(([l, e]) => key(l, e)) : []);
  return expertsOfWorker(placement, w).filter(([l, e]) => !had.has(key(l, e)));
}

export class Rebalancer {
  readonly #opts: RebalancerOptions;
  readonly #watch: Watch<StoredPlacement>;
  readonly #following: Promise<void>;
  #timer: NodeJS.Timeout | undefined;
  #busy = false;
  #stopped = false;
  readonly #unloads = new Set<NodeJS.Timeout>();

  private constructor(opts: RebalancerOptions, watch: Watch<StoredPlacement>) {
    this.#opts = opts;
    this.#watch = watch;
    this.#following = this.#follow();
  }

  /**
   * Records the executor's placement as the first revision when the store has none, adopts a later one
   * the store holds over the same workers (another gateway re-placed before this one started: its
   * experts are loaded first), then follows the store and re-places every `intervalMs`.
   */
  static async start(opts: RebalancerOptions): Promise<Rebalancer> {
    const { store, target, config } = opts;
    const stored = await store.get(config.name);
    if (!stored) await store.proposeInitial(config.name, target.placement);
    const rebalancer = new Rebalancer(opts, await store.watch(config.name));
    if (opts.intervalMs > 0) rebalancer.#schedule();
    return rebalancer;
  }

  /** Computes a placement from the window and puts it in force if it gains enough (`force`: whatever it gains). */
  async rebalanceNow(options: { force?: boolean } = {}): Promise<RebalanceResult> {
    const { target } = this.#opts;
    const current = target.placement;
    const loads = this.#opts.loads();
    const before = predictedBalancedness(current, loads);
    const nothing = (reason: string, after = before): RebalanceResult => ({
      switched: false,
      revision: target.placement.revision,
      before,
      after,
      reason,
    });
    if (this.#stopped) return nothing('stopped');
    if (this.#busy) return nothing('a re-placement is under way');
    if (loads.every((row) => row.every((x) => x === 0))) return nothing('no pairs routed in the window yet');
    this.#busy = true;
    try {
      const stored = await this.#opts.store.get(this.#opts.config.name);
      if (!stored || stored.placement.revision !== current.revision)
        return nothing(`the store holds revision ${stored?.placement.revision ?? 'none'}; this gateway is catching up`);
      const next = placeExperts(
        current.workers,
        this.#opts.config,
        { strategy: 'contiguous', replication: 1, loadAware: { ...this.#opts.settings, loads } },
        current.revision + 1,
      );
      const after = predictedBalancedness(next, loads);
      if (JSON.stringify(next.replicas) === JSON.stringify(current.replicas))
        return nothing('the placement from this window is the one in force', after);
      const threshold = this.#opts.threshold ?? 0.05;
      if (!options.force && after - before < threshold)
        return nothing(`gain ${(after - before).toFixed(3)} below the threshold ${threshold}`, after);
      // 1. Loads in the background: serving goes on under `current`.
      const loaded = await this.#loadGained(next, current);
      if (typeof loaded === 'string') return nothing(loaded, after);
      // 2. Compare-and-set: the new revision is written only now that every worker holds its experts.
      const write = await this.#opts.store.update(next, stored);
      if (!write.ok) {
        this.#scheduleUnload(next);
        return nothing(`another gateway re-placed first (revision ${write.current?.placement.revision ?? '?'})`, after);
      }
      // 3. This gateway switches now; the others when their watch sees it.
      this.#apply(next);
      // 4. What the workers lost, after the grace.
      this.#scheduleUnload(current);
      this.#opts.log(
        `re-placed: revision ${next.revision}, predicted balancedness ${before.toFixed(3)} → ${after.toFixed(3)}`,
      );
      return { switched: true, revision: next.revision, before, after, loaded };
    } finally {
      this.#busy = false;
    }
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    for (const t of this.#unloads) clearTimeout(t);
    this.#unloads.clear();
    await this.#watch.stop();
    await this.#following;
  }

  #schedule(): void {
    this.#timer = setTimeout(() => {
      void this.rebalanceNow()
        .then((r) => {
          if (!r.switched && r.reason !== undefined && !r.reason.startsWith('gain '))
            this.#opts.log(`no re-placement: ${r.reason}`);
        })
        .finally(() => {
          if (!this.#stopped) this.#schedule();
        });
    }, this.#opts.intervalMs);
    this.#timer.unref();
  }

  /** Has every worker load what `next` gives it beyond `current` (`loadInRounds`); a failure names the worker. */
  async #loadGained(next: Placement, current: Placement): Promise<number[] | string> {
    const gained = next.workers.map((_, w) => gainedBy(next, current, w));
    const counts = gained.map((g) => g.length);
    const failures = await loadInRounds(
      { workers: next.workers, clients: this.#opts.target.clients },
      gained,
      next.revision,
      this.#opts.loadDeadlineMs,
    );
    if (failures.length === 0) return counts;
    // The old revision stays in force; what did load is not needed.
    this.#scheduleUnload(next, 0);
    return `a worker failed to load its new experts, revision ${current.revision} stays in force: ${failures.join('; ')}`;
  }

  /**
   * After `graceMs`, each worker unloads the experts `from` gave it that the placement then in force
   * (the executor's, which follows the store) does not.
   */
  #scheduleUnload(from: Placement, graceMs = this.#opts.unloadGraceMs ?? 10_000): void {
    const timer = setTimeout(() => {
      this.#unloads.delete(timer);
      const inForce = this.#opts.target.placement;
      if (inForce.workers.join(',') !== from.workers.join(',')) return;
      for (const [w, client] of this.#opts.target.clients) {
        const lost = gainedBy(from, inForce, w);
        if (lost.length === 0) continue;
        void client
          .unload(
            { experts: lost.map(([layer, expertId]) => ({ layer, expertId })), placementRevision: inForce.revision },
            { deadlineMs: this.#opts.loadDeadlineMs },
          )
          .catch((error: unknown) =>
            this.#opts.log(`unloading ${lost.length} expert(s) from ${from.workers[w]} failed: ${String(error)}`),
          );
      }
    }, graceMs);
    timer.unref();
    this.#unloads.add(timer);
  }

  #apply(placement: Placement): void {
    const { target } = this.#opts;
    if (placement.revision <= target.placement.revision) return;
    if (placement.workers.join(',') !== target.placement.workers.join(',')) {
      this.#opts.log(`placement revision ${placement.revision} names other workers; not followed`);
      return;
    }
    target.setPlacement(placement);
  }

  /** Follows the store: a revision another gateway wrote is put in force at the next layer call. */
  async #follow(): Promise<void> {
    for await (const stored of this.#watch) {
      if (this.#stopped) break;
      if (stored.placement.revision <= this.#opts.target.placement.revision) continue;
      this.#apply(stored.placement);
      this.#opts.log(`following placement revision ${stored.placement.revision} from the store`);
    }
  }
}

/** A placement store in this process, for a single gateway without NATS. */
export class LocalPlacementStore implements PlacementStoreLike {
  readonly #entries = new Map<string, StoredPlacement>();
  readonly #watchers = new Set<(s: StoredPlacement) => void>();

  async get(model: string): Promise<StoredPlacement | undefined> {
    return this.#entries.get(model);
  }

  async proposeInitial(model: string, placement: Placement): Promise<PlacementWrite> {
    const current = this.#entries.get(model);
    if (current) return { ok: false, reason: 'conflict', current };
    return { ok: true, stored: this.#put({ model, placement, kvRevision: 1 }) };
  }

  async update(next: Placement, expected: StoredPlacement): Promise<PlacementWrite> {
    const current = this.#entries.get(expected.model);
    if (current?.kvRevision !== expected.kvRevision) return { ok: false, reason: 'conflict', current };
    return {
      ok: true,
      stored: this.#put({ model: expected.model, placement: next, kvRevision: expected.kvRevision + 1 }),
    };
  }

  async watch(model: string): Promise<Watch<StoredPlacement>> {
    const queue: StoredPlacement[] = [];
    let wake: (() => void) | undefined;
    let stopped = false;
    const listener = (s: StoredPlacement) => {
      if (s.model !== model) return;
      queue.push(s);
      wake?.();
    };
    this.#watchers.add(listener);
    const current = this.#entries.get(model);
    if (current) queue.push(current);
    const watchers = this.#watchers;
    return {
      get current() {
        return queue.at(-1) ?? current;
      },
      async *[Symbol.asyncIterator]() {
        while (!stopped) {
          const next = queue.shift();
          if (next) {
            yield next;
            continue;
          }
          await new Promise<void>((resolve) => (wake = resolve));
        }
      },
      stop: async () => {
        stopped = true;
        watchers.delete(listener);
        wake?.();
      },
    };
  }

  #put(stored: StoredPlacement): StoredPlacement {
    this.#entries.set(stored.model, stored);
    for (const w of this.#watchers) w(stored);
    return stored;
  }
}
