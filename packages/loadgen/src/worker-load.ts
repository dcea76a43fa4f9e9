/**
 * Expert-parallel imbalance as the workers feel it: the run's (token, expert) pairs per layer and
 * expert, summed per worker under the cluster's placement. The placement is the gateway's own
 * (`computePlacement`); an expert's pairs are shared evenly among its replicas (`workerLoads`), as the
 * remote executor shares them with every worker healthy — exact to within one pair per expert and step
 * (the first replicas take the larger chunks).
 */

import { computePlacement, workerLoads } from '@switchyard/routing';
import type { ClusterSpec } from './scenario.ts';
import type { ExpertLoad } from './server-metrics.ts';

export interface WorkerLoad {
  /** (token, expert) pairs each worker computed, over all layers. */
  readonly pairsPerWorker: readonly number[];
  /** Mean ÷ max of `pairsPerWorker` (1 = even). */
  readonly balancedness: number;
}

/** Undefined without workers (experts in the gateway). */
export function workerLoadOf(load: ExpertLoad, cluster: ClusterSpec): WorkerLoad | undefined {
  if (cluster.workers < 1) return undefined;
  const placement = computePlacement({
    workers: Array.from({ length: cluster.workers }, (_, i) => `worker-${i}`),
    numLayers: load.numLayers,
    numExperts: load.numExperts,
    strategy: cluster.placement,
    replication: cluster.replication,
    revision: 1,
  });
  const pairs = new Array<number>(cluster.workers).fill(0);
  for (const row of workerLoads(placement, load.counts)) row.forEach((n, w) => (pairs[w] = (pairs[w] ?? 0) + n));
  const max = Math.max(...pairs);
  return { pairsPerWorker: pairs, balancedness: max > 0 ? pairs.reduce((a, b) => a + b, 0) / pairs.length / max : NaN };
}
