/**
 * Load-aware placement (DeepSeek's EPLB, docs/architecture.md §1 "Placement"): from each
 * layer's measured expert loads, give the heaviest experts extra replicas, then pack the replicas onto
 * workers so that every worker does about the same work in every layer. Produces the plain `Placement`
 * the static strategies produce, so the executor, the store and the workers need nothing new.
 *
 * A replica is assumed to take an equal share of its expert's load (the remote executor splits an
 * expert's tokens evenly among its live replicas). Each layer is placed on its own: a layer call waits
 * for its slowest worker, so it is each layer's balance that sets the step time, not the sum over layers.
 */
import { PlacementError, type Placement } from './placement.ts';

export interface LoadAwarePlacementRequest {
  readonly workers: readonly string[];
  /** loads[layer][expert]: tokens (or any non-negative measure of work) routed to each expert. */
  readonly loads: readonly (readonly number[])[];
  /** Extra replicas per layer beyond one per expert (DeepSeek's redundant experts). */
  readonly redundantExperts: number;
  /** Replicas one worker may hold per layer; default: the fewest that fit, ceil((experts + N) / workers). */
  readonly maxExpertsPerWorker?: number;
  /**
   * Hierarchical mode: workers form `numNodes` nodes of equal size (consecutive in `workers`); expert
   * groups (`numExpertGroups` runs of consecutive experts, default one expert per group) are first packed
   * onto nodes so that node loads are even, then each node replicates its own experts with its share of
   * the redundant slots and packs them onto its workers. An expert's replicas then stay inside one node.
   */
  readonly hierarchy?: { readonly numNodes: number; readonly numExpertGroups?: number };
  readonly revision: number;
}

/** One replica to place: its expert and its share of the expert's load. */
export interface Replica {
  readonly expert: number;
  readonly load: number;
}

/** What one placement pass works on: a set of experts and the workers they may go to. */
interface Pass {
  readonly experts: readonly number[];
  readonly workers: readonly number[];
  readonly numRedundant: number;
}

/**
 * Replicates and packs every layer; see `LoadAwarePlacementRequest`. Deterministic: ties go to the lower
 * expert id, then to the lower worker index. Throws PlacementError on inputs that cannot be placed.
 */
export function computeLoadAwarePlacement(request: LoadAwarePlacementRequest): Placement {
  const { workers, loads, redundantExperts, revision } = request;
  const numLayers = loads.length;
  const numExperts = loads[0]?.length ?? 0;
  const maxPerWorker = request.maxExpertsPerWorker ?? Math.ceil((numExperts + redundantExperts) / workers.length);
  const shape = checkRequest(request, numExperts, maxPerWorker);
  const replicas = loads.map((row) => {
    const layer: number[][] = Array.from({ length: numExperts }, () => []);
    for (const pass of passesOfLayer(shape, row)) {
      const counts = replicate(row, pass.experts, pass.numRedundant, pass.workers.length);
      pack(replicasOf(row, pass.experts, counts), pass.workers, maxPerWorker, layer);
    }
    return Object.freeze(layer.map((w) => Object.freeze(w)));
  });
  return Object.freeze({
    revision,
    numLayers,
    numExperts,
    workers: Object.freeze([...workers]),
    replicas: Object.freeze(replicas),
  });
}

/**
 * Expected work of each worker per layer under a placement, every expert's load shared evenly among its
 * replicas: loads[layer][worker]. Balancedness of a layer is mean ÷ max of its row.
 */
export function workerLoads(placement: Placement, loads: readonly (readonly number[])[]): number[][] {
  return placement.replicas.map((experts, layer) => {
    const out = new Array<number>(placement.workers.length).fill(0);
    experts.forEach((ws, expert) => {
      const share = (loads[layer]?.[expert] ?? 0) / Math.max(1, ws.length);
      for (const w of ws) out[w] = (out[w] ?? 0) + share;
    });
    return out;
  });
}

/** Mean ÷ max of a list of loads (1 = perfectly even); NaN when everything is 0. */
export function balancedness(values: readonly number[]): number {
  const max = Math.max(...values);
  return max > 0 ? values.reduce((a, b) => a + b, 0) / values.length / max : Number.NaN;
}

/** How a request's layers split into passes: one node of every worker without hierarchy. */
interface Shape {
  readonly numNodes: number;
  readonly numGroups: number;
  readonly workersPerNode: number;
  readonly redundantPerNode: number;
}

/** Throws PlacementError, naming the problem, on a request that cannot be placed; returns its shape. */
function checkRequest(request: LoadAwarePlacementRequest, numExperts: number, maxPerWorker: number): Shape {
  const { workers, loads, redundantExperts: n } = request;
  const numWorkers = workers.length;
  if (numWorkers === 0) throw new PlacementError('no expert workers to place experts on');
  if (new Set(workers).size !== numWorkers) throw new PlacementError('worker ids must be distinct');
  if (loads.length === 0 || numExperts === 0) throw new PlacementError('loads must name at least one layer and expert');
  loads.forEach((row, layer) => {
    if (row.length !== numExperts) {
      throw new PlacementError(`loads of layer ${layer} name ${row.length} experts, layer 0 names ${numExperts}`);
    }
    const bad = row.findIndex((v) => !Number.isFinite(v) || v < 0);
    if (bad >= 0)
      throw new PlacementError(`load of layer ${layer} expert ${bad} is ${row[bad]}, not a finite number ≥ 0`);
  });
  if (!Number.isInteger(n) || n < 0) throw new PlacementError(`redundant experts ${n} must be an integer ≥ 0`);
  if (!Number.isInteger(maxPerWorker) || maxPerWorker < 1) {
    throw new PlacementError(`max experts per worker ${maxPerWorker} must be an integer ≥ 1`);
  }
  const numNodes = request.hierarchy?.numNodes ?? 1;
  const numGroups = request.hierarchy?.numExpertGroups ?? (request.hierarchy ? numExperts : 1);
  const must = (ok: boolean, message: string) => {
    if (!ok) throw new PlacementError(message);
  };
  must(Number.isInteger(numNodes) && numNodes >= 1, `number of nodes ${numNodes} must be an integer ≥ 1`);
  must(numWorkers % numNodes === 0, `${numWorkers} workers do not split into ${numNodes} nodes of equal size`);
  must(Number.isInteger(numGroups) && numGroups >= 1, `number of expert groups ${numGroups} must be an integer ≥ 1`);
  must(numExperts % numGroups === 0, `${numExperts} experts do not split into ${numGroups} groups of equal size`);
  must(numGroups % numNodes === 0, `${numGroups} expert groups do not split evenly over ${numNodes} nodes`);
  must(n % numNodes === 0, `${n} redundant experts do not split evenly over ${numNodes} nodes`);
  const workersPerNode = numWorkers / numNodes;
  const expertsPerNode = numExperts / numNodes;
  const slotsPerNode = workersPerNode * maxPerWorker;
  const replicasPerNode = expertsPerNode + n / numNodes;
  must(
    replicasPerNode <= slotsPerNode,
    numNodes === 1
      ? `${numExperts} experts + ${n} redundant need ${replicasPerNode} slots per layer; ${numWorkers} workers × ${maxPerWorker} have ${slotsPerNode}`
      : `${expertsPerNode} experts + ${n / numNodes} redundant per node need ${replicasPerNode} slots; a node's ${workersPerNode} workers × ${maxPerWorker} have ${slotsPerNode}`,
  );
  must(
    n / numNodes <= expertsPerNode * (workersPerNode - 1),
    `${n} redundant experts are more than ${numNodes === 1 ? 'the workers' : "a node's workers"} can hold without two replicas of one expert on one worker (at most ${expertsPerNode * (workersPerNode - 1) * numNodes})`,
  );
  return { numNodes, numGroups, workersPerNode, redundantPerNode: n / numNodes };
}

/** The passes of one layer: the whole layer, or one per node after packing expert groups onto nodes. */
function passesOfLayer(shape: Shape, row: readonly number[]): Pass[] {
  const { numNodes, numGroups, workersPerNode, redundantPerNode } = shape;
  const groupSize = row.length / numGroups;
  const groupLoads = Array.from({ length: numGroups }, (_, g) =>
    row.slice(g * groupSize, (g + 1) * groupSize).reduce((a, b) => a + b, 0),
  );
  const groupsOfNode = packEqualCounts(groupLoads, numNodes);
  return groupsOfNode.map((groups, node) => ({
    experts: groups
      .flatMap((g) => Array.from({ length: groupSize }, (_, i) => g * groupSize + i))
      .sort((a, b) => a - b),
    workers: Array.from({ length: workersPerNode }, (_, i) => node * workersPerNode + i),
    numRedundant: redundantPerNode,
  }));
}

/**
 * Items onto bins, each bin taking exactly items ÷ bins: heaviest first, each to the lightest bin that is
 * not full (ties to the lower bin). Returns the items of each bin in the order they arrived.
 */
function packEqualCounts(weights: readonly number[], numBins: number): number[][] {
  const perBin = weights.length / numBins;
  const bins = Array.from({ length: numBins }, () => ({ load: 0, items: [] as number[] }));
  for (const item of heaviestFirst(weights.map((load, i) => ({ id: i, load })))) {
    let best: (typeof bins)[number] | undefined;
    for (const bin of bins) if (bin.items.length < perBin && (!best || bin.load < best.load)) best = bin;
    if (!best) throw new PlacementError('internal: no bin with room'); // perBin × numBins = items
    best.items.push(item.id);
    best.load += item.load;
  }
  return bins.map((b) => b.items);
}

/**
 * Replica counts of `experts` (one each, plus `numRedundant` extra): each extra one goes to the expert
 * whose load per replica is highest right now (ties to the lower id), never above `maxCopies`.
 */
function replicate(row: readonly number[], experts: readonly number[], numRedundant: number, maxCopies: number) {
  const counts = new Map(experts.map((e) => [e, 1]));
  for (let i = 0; i < numRedundant; i++) {
    let best = -1;
    for (const e of experts) {
      const c = counts.get(e) ?? 1;
      if (c >= maxCopies) continue;
      // load_e / c > load_best / c_best, cross-multiplied so that equal ratios compare equal.
      const ahead = (row[e] ?? 0) * (counts.get(best) ?? 1) - (row[best] ?? 0) * c;
      if (best < 0 || ahead > 0 || (ahead === 0 && e < best)) best = e;
    }
    // Validation bounds numRedundant by experts × (maxCopies − 1), so some expert always has room.
    if (best < 0) throw new PlacementError('internal: every expert is on every worker');
    counts.set(best, (counts.get(best) ?? 1) + 1);
  }
  return counts;
}

function replicasOf(row: readonly number[], experts: readonly number[], counts: ReadonlyMap<number, number>) {
  const replicas: Replica[] = [];
  for (const e of experts) {
    const c = counts.get(e) ?? 1;
    for (let r = 0; r < c; r++) replicas.push({ expert: e, load: (row[e] ?? 0) / c });
  }
  return replicas;
}

/**
 * Packs replicas heaviest first, each onto the least loaded worker of `workers` that has a free slot and
 * no replica of that expert yet (ties to the lower worker index). Appends to `layer[expert]`, so the
 * first replica placed is the primary.
 *
 * NOTE: the greedy choice can find every worker with a free slot already holding the expert (its
 * replicas come last, when few workers have room). Then one replica of another expert moves from a full
 * worker to the free slot and the expert takes its place: such a move always exists, because a full
 * worker without the expert holds more replicas than the free worker, at least two of them absent there.
 * A search of 1.5 million small random requests never reached this path through
 * `computeLoadAwarePlacement` (heavier replicas come first and spread out); equal loads whose ties pile
 * onto one worker do, so it is exported for its unit test.
 */
export function pack(
  replicas: readonly Replica[],
  workers: readonly number[],
  maxPerWorker: number,
  layer: number[][],
): void {
  const state = workers.map((index) => ({ index, load: 0, experts: new Set<number>() }));
  const put = (w: (typeof state)[number], r: Replica) => {
    w.experts.add(r.expert);
    w.load += r.load;
    layer[r.expert]?.push(w.index);
  };
  for (const replica of heaviestFirst(replicas.map((r) => ({ ...r, id: r.expert })))) {
    let best: (typeof state)[number] | undefined;
    for (const w of state) {
      if (w.experts.size >= maxPerWorker || w.experts.has(replica.expert)) continue;
      if (!best || w.load < best.load) best = w;
    }
    if (best) {
      put(best, replica);
      continue;
    }
    const free = leastLoaded(state.filter((w) => w.experts.size < maxPerWorker));
    const full = leastLoaded(state.filter((w) => !w.experts.has(replica.expert)));
    const moved = [...(full?.experts ?? [])].find((e) => !free?.experts.has(e));
    if (!free || !full || moved === undefined) throw new PlacementError('internal: no replica to move');
    const share = replicas.find((r) => r.expert === moved)?.load ?? 0;
    full.experts.delete(moved);
    full.load -= share;
    const slot = layer[moved]?.indexOf(full.index) ?? -1;
    layer[moved]?.splice(slot, 1, free.index);
    free.experts.add(moved);
    free.load += share;
    put(full, replica);
  }
}

function leastLoaded<T extends { load: number }>(items: readonly T[]): T | undefined {
  let best: T | undefined;
  for (const item of items) if (!best || item.load < best.load) best = item;
  return best;
}

/** Sorted by load, heaviest first; equal loads by ascending id (a stable, deterministic order). */
function heaviestFirst<T extends { id: number; load: number }>(items: readonly T[]): T[] {
  return [...items].sort((a, b) => b.load - a.load || a.id - b.id);
}
