/**
 * Placement: which expert workers host each (layer, expert). Plain data, computed from the workers
 * present (the static strategies here) or from measured loads (`load-aware-placement.ts`).
 */

export type PlacementStrategy = 'contiguous' | 'round-robin';

export interface Placement {
  /** Increases with every new placement; gateways and workers compare revisions. */
  readonly revision: number;
  readonly numLayers: number;
  readonly numExperts: number;
  /** Worker ids; a worker's index in this list is how the rest of the placement names it. */
  readonly workers: readonly string[];
  /** replicas[layer][expert]: indices of the workers hosting it, primary first. */
  readonly replicas: readonly (readonly (readonly number[])[])[];
}

export interface PlacementRequest {
  readonly workers: readonly string[];
  readonly numLayers: number;
  readonly numExperts: number;
  readonly strategy: PlacementStrategy;
  /** Copies of each expert (1 = no replica); at most the number of workers. */
  readonly replication: number;
  readonly revision: number;
}

export class PlacementError extends Error {
  override readonly name = 'PlacementError';
  readonly code = 'invalid_placement' as const;
}

/**
 * Contiguous: worker w hosts experts [w·E/W, (w+1)·E/W) (fewest workers per token for adjacent
 * experts); round-robin: expert e on worker e mod W. Replica r of an expert sits on the next r-th
 * worker, so replicas never share a worker.
 */
export function computePlacement(request: PlacementRequest): Placement {
  const { workers, numLayers, numExperts, strategy, replication, revision } = request;
  const numWorkers = workers.length;
  if (numWorkers === 0) throw new PlacementError('no expert workers to place experts on');
  if (!Number.isInteger(replication) || replication < 1 || replication > numWorkers) {
    throw new PlacementError(`replication ${replication} must be between 1 and the number of workers (${numWorkers})`);
  }
  const primaryOf = (e: number) =>
    strategy === 'contiguous' ? Math.floor((e * numWorkers) / numExperts) : e % numWorkers;
  const layer = Array.from({ length: numExperts }, (_, e) =>
    Array.from({ length: replication }, (_, r) => (primaryOf(e) + r) % numWorkers),
  );
  return Object.freeze({
    revision,
    numLayers,
    numExperts,
    workers: Object.freeze([...workers]),
    replicas: Object.freeze(Array.from({ length: numLayers }, () => layer)),
  });
}

/** The (layer, expert) pairs a worker hosts under a placement. */
export function expertsOfWorker(placement: Placement, workerIndex: number): [number, number][] {
  const hosted: [number, number][] = [];
  placement.replicas.forEach((experts, layer) => {
    experts.forEach((workers, expert) => {
      if (workers.includes(workerIndex)) hosted.push([layer, expert]);
    });
  });
  return hosted;
}

/**
 * For one layer: expert id → index of the first replica's worker that `isUsable`, or -1 where no
 * replica is usable. The dispatch plan's worker split takes this array.
 */
export function chooseWorkers(
  placement: Placement,
  layer: number,
  isUsable: (workerIndex: number) => boolean,
): Int32Array {
  const out = new Int32Array(placement.numExperts).fill(-1);
  const experts = placement.replicas[layer] ?? [];
  experts.forEach((workers, expert) => {
    const usable = workers.find(isUsable);
    if (usable !== undefined) out[expert] = usable;
  });
  return out;
}

/**
 * For one layer: expert id → the workers of its replicas that `isUsable`, in placement order (primary
 * first); empty where none is. `shareAmongReplicas` splits each expert's pairs among these.
 */
export function usableReplicas(
  placement: Placement,
  layer: number,
  isUsable: (workerIndex: number) => boolean,
): number[][] {
  const experts = placement.replicas[layer] ?? [];
  return Array.from({ length: placement.numExperts }, (_, expert) => (experts[expert] ?? []).filter(isUsable));
}
