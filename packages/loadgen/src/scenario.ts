/**
 * Scenarios: named, bounded plans of local clusters to start and loads to run against each. Plain
 * data; `scenario-runner.ts` carries them out.
 */

import type { PresetName } from '@switchyard/model';
import type { DatasetSpec } from './datasets/dataset.ts';

/** One local cluster: a preset served by a gateway over `workers` expert worker processes. */
export interface ClusterSpec {
  readonly label: string;
  readonly preset: PresetName;
  readonly workers: number;
  readonly placement: 'contiguous' | 'round-robin';
  /** Copies of each expert (`replicated` placement: > 1). */
  readonly replication: number;
  readonly expertDtype: 'fp32' | 'int8';
  /** 2 overlaps attention with expert dispatch; 1 is no overlap. */
  readonly microBatches: number;
}

/** One load level run against a cluster. */
export interface LoadSpec {
  readonly maxConcurrency: number;
  readonly numPrompts: number;
  readonly requestRate: number;
  readonly burstiness: number;
}

export interface Scenario {
  readonly name: string;
  readonly description: string;
  /** Measured on the 2-core development machine, model creation included. */
  readonly expectedDuration: string;
  readonly dataset: DatasetSpec;
  readonly clusters: readonly ClusterSpec[];
  readonly loads: readonly LoadSpec[];
}

const closedLoop = (maxConcurrency: number, numPrompts: number): LoadSpec => ({
  maxConcurrency,
  numPrompts,
  requestRate: Infinity,
  burstiness: 1,
});

/** A label that says what differs: `small 2w contiguous fp32 overlap`. */
export function clusterLabel(c: Omit<ClusterSpec, 'label'>): string {
  const placement = c.replication > 1 ? `replicated×${c.replication}` : c.placement;
  return `${c.preset} ${c.workers}w ${placement} ${c.expertDtype} ${c.microBatches > 1 ? 'overlap' : 'no-overlap'}`;
}

function cluster(c: Omit<ClusterSpec, 'label'>): ClusterSpec {
  return { ...c, label: clusterLabel(c) };
}

const BASE = {
  preset: 'small',
  workers: 2,
  placement: 'contiguous',
  replication: 1,
  expertDtype: 'fp32',
  microBatches: 2,
} as const;
const RANDOM_128_32 = { kind: 'random', inputLen: 128, outputLen: 32, rangeRatio: 0.25, prefixLen: 0 } as const;

export const SCENARIOS = {
  quick: {
    name: 'quick',
    description: 'the `small` model on 2 expert workers; closed-loop load at concurrency 1, 4 and 16',
    expectedDuration: '≈ 1 minute',
    dataset: RANDOM_128_32,
    clusters: [cluster(BASE)],
    loads: [closedLoop(1, 6), closedLoop(4, 16), closedLoop(16, 48)],
  },
  'ep-sweep': {
    name: 'ep-sweep',
    description:
      'one factor at a time around `small` on 2 workers (contiguous, fp32, overlap): workers 1/2/4, placement round-robin and ' +
      'replicated, overlap off, int8 experts, and the `skewed` preset contiguous vs round-robin; concurrency 4 and 16 each',
    expectedDuration: '≈ 5–6 minutes',
    dataset: RANDOM_128_32,
    clusters: [
      cluster(BASE),
      cluster({ ...BASE, workers: 1 }),
      cluster({ ...BASE, workers: 4 }),
      cluster({ ...BASE, placement: 'round-robin' }),
      cluster({ ...BASE, workers: 4, placement: 'round-robin', replication: 2 }),
      cluster({ ...BASE, microBatches: 1 }),
      cluster({ ...BASE, expertDtype: 'int8' }),
      cluster({ ...BASE, preset: 'skewed' }),
      cluster({ ...BASE, preset: 'skewed', placement: 'round-robin' }),
    ],
    loads: [closedLoop(4, 16), closedLoop(16, 32)],
  },
  skewed: {
    name: 'skewed',
    description: 'the `skewed` preset (Zipf-like router) on 2 workers, contiguous vs round-robin placement',
    expectedDuration: '≈ 40 seconds',
    dataset: RANDOM_128_32,
    clusters: [
      cluster({ ...BASE, preset: 'skewed' }),
      cluster({ ...BASE, preset: 'skewed', placement: 'round-robin' }),
    ],
    loads: [closedLoop(16, 32)],
  },
} as const satisfies Readonly<Record<string, Scenario>>;

export type ScenarioName = keyof typeof SCENARIOS;
export const SCENARIO_NAMES = Object.keys(SCENARIOS) as readonly ScenarioName[];

export function isScenarioName(name: string): name is ScenarioName {
  return Object.hasOwn(SCENARIOS, name);
}
