/**
 * The `eplb` bench scenario (issue 14): the `skewed` preset on 4 expert workers under the same
 * closed-loop load twice — first a gateway with the static (contiguous) placement, then a gateway with
 * `--placement eplb --rebalance-interval-s n` (live re-placement on), which serves on the static placement
 * and re-places, under load, to a load-aware placement from its own routing window after n s (and again
 * every n s should that gain enough). Plain data; `eplb-runner.ts` carries it out.
 */

import type { DatasetSpec } from './datasets/dataset.ts';

export interface EplbSettings {
  /**
   * `skewed` (the issue's model: tiny experts, so a step's cost is mostly per-call and the gateway's) or
   * `skewed-heavy` (the same router, experts 16× wider: the experts carry the compute).
   */
  readonly preset: EplbPreset;
  readonly numWorkers: number;
  readonly maxConcurrency: number;
  /** Load of the static phase, s (requests are released until then). */
  readonly staticDurationS: number;
  /** Load of the rebalancing phase, s: warm-up, the switch, and the steady state after it. */
  readonly eplbDurationS: number;
  /** `--rebalance-interval-s` of the rebalancing gateway: its first re-placement comes after this long. */
  readonly warmupS: number;
  readonly redundantExperts: number;
  readonly maxExpertsPerWorker: number;
  /** How often every worker's counters are read. */
  readonly sampleIntervalMs: number;
  /** Left out at the start of each phase (and after the switch window) from the steady-state figures. */
  readonly settleS: number;
  /** Width of the window centred on the switch whose p99 ITL is compared with the steady state before. */
  readonly aroundSwitchS: number;
  /** A request waiting this long for a token counts as stalled. */
  readonly stallMs: number;
  readonly microBatches: number;
  /**
   * onnxruntime intra-op threads of each worker, the same in both phases: a fixed compute budget per
   * worker, as each would have on its own node. With every worker free to use every core of one machine,
   * a hot worker under the static placement borrows the idle workers' cores, which hides the imbalance
   * a real cluster pays for.
   */
  readonly workerThreads: number;
  /**
   * CPU time each worker may use per second, in cores (a cgroup quota; 0: no budget). Four workers and a
   * gateway on one 2-core machine share its cores whatever their threads: only a quota gives each worker
   * a fixed compute of its own, so that a hot worker is the bottleneck it would be on its own node, and
   * balance can show what it buys. The same in both phases.
   */
  readonly workerCpu: number;
  readonly dataset: DatasetSpec;
}

export const EPLB_SCENARIO_NAME = 'eplb';
export const EPLB_PRESETS = ['skewed', 'skewed-heavy'] as const;
export type EplbPreset = (typeof EPLB_PRESETS)[number];

export const EPLB_DEFAULTS: EplbSettings = Object.freeze({
  preset: 'skewed',
  numWorkers: 4,
  maxConcurrency: 16,
  staticDurationS: 75,
  eplbDurationS: 120,
  warmupS: 35,
  redundantExperts: 8,
  maxExpertsPerWorker: 8,
  sampleIntervalMs: 1000,
  settleS: 5,
  aroundSwitchS: 10,
  stallMs: 2000,
  microBatches: 2,
  workerThreads: 1,
  workerCpu: 0.25,
  dataset: { kind: 'random', inputLen: 128, outputLen: 32, rangeRatio: 0.25, prefixLen: 0 } as const,
});

export function describeEplb(s: EplbSettings): string {
  return (
    `the \`${s.preset}\` preset on ${s.numWorkers} expert workers, closed-loop load at concurrency ${s.maxConcurrency}: ` +
    `static (contiguous) placement for ${s.staticDurationS} s, then \`--placement eplb --redundant-experts ${s.redundantExperts} ` +
    `--max-experts-per-worker ${s.maxExpertsPerWorker} --rebalance-interval-s ${s.warmupS}\` for ${s.eplbDurationS} s ` +
    `(each worker on ${s.workerThreads} intra-op thread${s.workerThreads === 1 ? '' : 's'}` +
    `${s.workerCpu > 0 ? ` and a CPU budget of ${s.workerCpu} cores` : ', no CPU budget'}) ` +
    `(live re-placement: the first switch to a load-aware placement under load after ${s.warmupS} s); loads from the workers' own counters every ${s.sampleIntervalMs} ms`
  );
}
