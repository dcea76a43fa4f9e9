import {
  PlacementStore,
  WorkerRegistry,
  type ClusterConnection,
  type LiveWorkers,
  type Watch,
} from '@switchyard/cluster';
import type { ModelConfig } from '@switchyard/model';
import { expertsOfWorker, type Placement, type PlacementStrategy } from '@switchyard/routing';
import { connectExpertClient, type ClientTls, type ExpertStreamClient } from '@switchyard/rpc';
import { sameWeights } from './expert-cluster.ts';
import { placeExperts, type LoadAwareSettings } from './expert-placement.ts';

export interface PlacementControllerOptions {
  readonly conn: ClusterConnection;
  readonly config: ModelConfig;
  readonly strategy: PlacementStrategy;
  /** Wanted copies of each expert; capped at the number of live workers. */
  readonly replication: number;
  /** Load-aware placement from measured loads instead of `strategy` and `replication`. */
  readonly loadAware?: LoadAwareSettings;
  readonly deadlineMs: number;
  readonly log: (line: string) => void;
  /** TTL of the worker registry bucket when this gateway creates it. */
  readonly registryTtlMs?: number;
  /** SHA-256 (hex) of the gateway's weights: registered workers with other weights are left out. */
  readonly weightsDigest?: string;
  /** TLS to the workers (mutual TLS with this gateway's certificate); absent: plaintext. */
  readonly tls?: ClientTls;
}

export interface PlacedWorkers {
  readonly placement: Placement;
  readonly clients: ReadonlyMap<number, ExpertStreamClient>;
}

/**
 * Keeps the expert placement in step with the registered workers: waits for the first workers, and
 * whenever the live set changes (a worker registers, or leaves or falls silent for the registry's TTL)
 * computes a new placement over the live workers, records it in the placement store with a
 * compare-and-set on the revision (when several gateways race, one revision wins and the others adopt
 * it), has every worker load what it hosts, and only then hands it to `apply` — so the executor never
 * routes to a worker before its experts are ready, and requests in flight are not failed by the change.
 */
export class PlacementController {
  readonly #opts: PlacementControllerOptions;
  readonly #store: PlacementStore;
  readonly #watch: Watch<LiveWorkers>;
  readonly #clients = new Map<string, ExpertStreamClient>();
  #current: PlacedWorkers | undefined;
  #stopped = false;

  private constructor(opts: PlacementControllerOptions, store: PlacementStore, watch: Watch<LiveWorkers>) {
    this.#opts = opts;
    this.#store = store;
    this.#watch = watch;
  }

  static async open(opts: PlacementControllerOptions): Promise<PlacementController> {
    const registry = await WorkerRegistry.open(
      opts.conn,
      opts.registryTtlMs !== undefined ? { ttlMs: opts.registryTtlMs } : {},
    );
    const store = await PlacementStore.open(opts.conn);
    return new PlacementController(opts, store, await registry.watch());
  }

  get current(): PlacedWorkers | undefined {
    return this.#current;
  }

  /** Resolves with the first placement once at least `minWorkers` workers of this model are live. */
  async first(minWorkers: number, timeoutMs: number): Promise<PlacedWorkers> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const live = this.#liveWorkers(this.#watch.current);
      if (live.length >= minWorkers) return (this.#current = await this.#place(live));
      if (Date.now() > deadline) {
        throw new PlacementTimeoutError(
          `only ${live.length} of ${minWorkers} expert workers of ${this.#opts.config.name} registered within ${timeoutMs} ms`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  /** Follows the registry until stopped, calling `apply` with each new, loaded placement. */
  async follow(apply: (placed: PlacedWorkers) => void): Promise<void> {
    for await (const snapshot of this.#watch) {
      if (this.#stopped) break;
      const live = this.#liveWorkers(snapshot);
      const current = this.#current?.placement.workers.join(',');
      if (live.length === 0 || live.map((w) => w.id).join(',') === current) continue;
      try {
        const placed = await this.#place(live);
        this.#current = placed;
        apply(placed);
        this.#opts.log(
          `placement revision ${placed.placement.revision} over ${placed.placement.workers.length} worker(s)`,
        );
      } catch (error) {
        this.#opts.log(
          `placement change failed, keeping revision ${this.#current?.placement.revision}: ${error instanceof Error ? error.message : String(error)}`,
        );
      }
    }
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#watch.stop();
    for (const client of this.#clients.values()) client.close();
  }

  #liveWorkers(snapshot: LiveWorkers | undefined): { id: string; address: string }[] {
    return [...(snapshot?.values() ?? [])]
      .filter((w) => w.model === this.#opts.config.name && sameWeights(this.#opts.weightsDigest, w.weightsDigest))
      .map((w) => ({ id: w.id, address: w.address }))
      .sort((a, b) => a.id.localeCompare(b.id));
  }

  /** Computes (or adopts) the placement for `live`, loads it on the workers, and returns it with clients. */
  async #place(live: readonly { id: string; address: string }[]): Promise<PlacedWorkers> {
    const { config } = this.#opts;
    const stored = await this.#store.get(config.name);
    const { strategy, replication, loadAware } = this.#opts;
    const proposal = placeExperts(
      live.map((w) => w.id),
      config,
      { strategy, replication, ...(loadAware ? { loadAware } : {}) },
      (stored?.placement.revision ?? 0) + 1,
    );
    const write = stored
      ? await this.#store.update(proposal, stored)
      : await this.#store.proposeInitial(config.name, proposal);
    const placement = write.ok ? proposal : (write.current?.placement ?? proposal);
    const addressOf = new Map(live.map((w) => [w.id, w.address]));
    const clients = new Map<number, ExpertStreamClient>();
    await Promise.all(
      placement.workers.map(async (id, index) => {
        const address = addressOf.get(id);
        if (!address) return;
        const client = await this.#client(id, address);
        const experts = expertsOfWorker(placement, index).map(([layer, expertId]) => ({ layer, expertId }));
        await client.load(
          { experts, placementRevision: placement.revision },
          { deadlineMs: Math.max(this.#opts.deadlineMs, 120_000) },
        );
        clients.set(index, client);
      }),
    );
    return { placement, clients };
  }

  async #client(id: string, address: string): Promise<ExpertStreamClient> {
    const key = `${id}@${address}`;
    let client = this.#clients.get(key);
    if (!client) {
      client = await connectExpertClient(address, {
        deadlineMs: this.#opts.deadlineMs,
        connectDeadlineMs: 10_000,
        ...(this.#opts.tls ? { tls: this.#opts.tls } : {}),
      });
      this.#clients.set(key, client);
    }
    return client;
  }
}

export class PlacementTimeoutError extends Error {
  override readonly name = 'PlacementTimeoutError';
  readonly code = 'placement_timeout' as const;
}
