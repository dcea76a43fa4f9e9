/**
 * The one place a gateway turns its placement settings into a `Placement` over the workers it has: a
 * static strategy with a replication factor, or the load-aware placement from measured expert loads.
 * Used at start-up over a `--workers` list and by the placement controller whenever the live workers
 * change, so both read the settings the same way.
 */
import type { ModelConfig } from '@switchyard/model';
import {
  computeLoadAwarePlacement,
  computePlacement,
  PlacementError,
  type Placement,
  type PlacementStrategy,
} from '@switchyard/routing';

/** Load-aware placement settings (`--placement eplb`); docs/architecture.md §1 "Placement". */
export interface LoadAwareSettings {
  /** loads[layer][expert], e.g. `expertLoad` of `GET /v1/switchyard/stats` from an earlier run. */
  readonly loads: readonly (readonly number[])[];
  /** Extra replicas per layer; fewer are used when the workers present cannot hold them all. */
  readonly redundantExperts: number;
  readonly maxExpertsPerWorker?: number;
  /**
   * Hierarchical mode over this many nodes of consecutive workers (1 or absent: flat). When the workers
   * present do not split into that many equal nodes (one left), the placement is flat until they do.
   */
  readonly numNodes?: number;
}

export interface PlacementSettings {
  readonly strategy: PlacementStrategy;
  /** Wanted copies of each expert under `strategy`; capped at the number of workers. */
  readonly replication: number;
  /** When present, replaces `strategy` and `replication`. */
  readonly loadAware?: LoadAwareSettings;
}

/**
 * The placement of `config`'s experts over `workers` (ids, in the order their indices take). A
 * load-aware placement whose N redundant experts do not fit the workers present (a worker left) uses
 * as many as fit; loads of another shape than the model's are a PlacementError.
 */
export function placeExperts(
  workers: readonly string[],
  config: Pick<ModelConfig, 'numLayers' | 'numExperts'>,
  settings: PlacementSettings,
  revision: number,
): Placement {
  const { numLayers, numExperts } = config;
  const { loadAware } = settings;
  if (!loadAware) {
    const replication = Math.min(settings.replication, workers.length);
    return computePlacement({ workers, numLayers, numExperts, strategy: settings.strategy, replication, revision });
  }
  const { loads } = loadAware;
  if (loads.length !== numLayers || loads.some((row) => row.length !== numExperts)) {
    throw new PlacementError(
      `expert loads name ${loads.length} layers × ${loads[0]?.length ?? 0} experts; the model has ${numLayers} × ${numExperts}`,
    );
  }
  const numWorkers = workers.length;
  const wanted = loadAware.numNodes ?? 1;
  const numNodes = numWorkers % wanted === 0 && numExperts % wanted === 0 ? wanted : 1;
  // What the workers present can hold: one replica of an expert per worker (of its node, in
  // hierarchical mode), and the slot bound when one is given.
  const byDistinct = numExperts * (numWorkers / numNodes - 1);
  const bySlots =
    loadAware.maxExpertsPerWorker === undefined
      ? Number.POSITIVE_INFINITY
      : numWorkers * loadAware.maxExpertsPerWorker - numExperts;
  let redundantExperts = Math.max(0, Math.min(loadAware.redundantExperts, byDistinct, bySlots));
  redundantExperts -= redundantExperts % numNodes;
  return computeLoadAwarePlacement({
    workers,
    loads,
    redundantExperts,
    ...(loadAware.maxExpertsPerWorker !== undefined ? { maxExpertsPerWorker: loadAware.maxExpertsPerWorker } : {}),
    ...(numNodes > 1 ? { hierarchy: { numNodes } } : {}),
    revision,
  });
}
