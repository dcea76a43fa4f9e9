/**
 * Load-aware placement after a warm-up (`--placement eplb --eplb-warmup-s n`): the gateway starts on a
 * static placement, counts the pairs it routes, and once some have been routed after `warmupMs` places
 * the experts from those loads, once. The switch follows the executor's rule (docs/architecture.md §1
 * "Placement"): every worker first loads what the new placement gives it, and only then does the executor
 * route by it, so no layer call meets a worker without its experts.
 */
import type { ModelConfig } from '@switchyard/model';
import type { Placement } from '@switchyard/routing';
import type { ExpertStreamClient } from '@switchyard/rpc';
import { placeExperts, type LoadAwareSettings } from './expert-placement.ts';
import { loadInRounds } from './load-rounds.ts';
import { gainedBy } from './rebalancer.ts';

/** What the warm-up needs of the remote executor. */
export interface PlacementTarget {
  readonly placement: Placement;
  readonly clients: ReadonlyMap<number, Pick<ExpertStreamClient, 'load'>>;
  setPlacement(placement: Placement): void;
}

export interface WarmupPlacementOptions {
  readonly target: PlacementTarget;
  readonly config: Pick<ModelConfig, 'numLayers' | 'numExperts'>;
  readonly settings: Omit<LoadAwareSettings, 'loads'>;
  /** Pairs routed so far per [layer][expert] (the gateway's sliding window). */
  readonly loads: () => readonly (readonly number[])[];
  readonly warmupMs: number;
  /** Deadline of one worker's LoadExperts. */
  readonly loadDeadlineMs: number;
  readonly log: (line: string) => void;
}

/**
 * Lifecycle: `waiting` (a check every `warmupMs`: nothing routed yet, or a worker failed to load, means
 * wait another period) → `placed` (switched once; it stops) or `stopped`. Experts of the old placement
 * stay loaded on the workers: a layer call in flight under it still finds them.
 */
export class WarmupPlacement {
  readonly #opts: WarmupPlacementOptions;
  #timer: NodeJS.Timeout | undefined;
  #state: 'waiting' | 'placed' | 'stopped' = 'waiting';

  private constructor(opts: WarmupPlacementOptions) {
    this.#opts = opts;
  }

  static start(opts: WarmupPlacementOptions): WarmupPlacement {
    const warmup = new WarmupPlacement(opts);
    warmup.#schedule();
    return warmup;
  }

  get state(): 'waiting' | 'placed' | 'stopped' {
    return this.#state;
  }

  stop(): void {
    if (this.#state === 'waiting') this.#state = 'stopped';
    clearTimeout(this.#timer);
  }

  #schedule(): void {
    this.#timer = setTimeout(() => void this.#tick(), this.#opts.warmupMs);
    this.#timer.unref();
  }

  async #tick(): Promise<void> {
    if (this.#state !== 'waiting') return;
    const { target, config, settings, log } = this.#opts;
    const loads = this.#opts.loads();
    const numPairs = loads.reduce((n, row) => n + row.reduce((a, b) => a + b, 0), 0);
    if (numPairs === 0) return this.#schedule();
    try {
      const current = target.placement;
      const next = placeExperts(
        current.workers,
        config,
        { strategy: 'contiguous', replication: 1, loadAware: { ...settings, loads } },
        current.revision + 1,
      );
      // Only what each worker gains, in paced rounds (serving goes on meanwhile).
      const failures = await loadInRounds(
        { workers: current.workers, clients: target.clients },
        current.workers.map((_id, w) => gainedBy(next, current, w)),
        next.revision,
        this.#opts.loadDeadlineMs,
      );
      if (failures.length > 0) throw new Error(failures.join('; '));
      if (this.#state !== 'waiting') return;
      target.setPlacement(next);
      this.#state = 'placed';
      log(`placement revision ${next.revision}: load-aware, from ${numPairs} routed pairs`);
    } catch (error) {
      log(
        `load-aware placement failed, keeping the current one: ${error instanceof Error ? error.message : String(error)}`,
      );
      this.#schedule();
    }
  }
}
