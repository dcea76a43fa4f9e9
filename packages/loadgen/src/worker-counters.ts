/**
 * Expert load as the workers themselves count it: each worker's `tokens_served` (the (token, expert)
 * pairs it computed per layer and expert since it started, read through `Describe`), sampled over a run.
 * Differences of two samples give what each worker computed in between; per layer, balancedness is
 * mean ÷ max of the workers' pairs (1 = even; a layer call waits for its busiest worker). Pure.
 */

import { balancedness } from '@switchyard/routing';
import type { TimeWindow } from './token-timeline.ts';

/** counts[worker][layer][expert]. */
export type WorkerCounts = readonly (readonly (readonly number[])[])[];

/** Every worker's counters read at one moment, with the gateway's placement revision then. */
export interface CounterSample {
  /** ms from the start of the run (the clock of `RequestOutput.startMs`). */
  readonly atMs: number;
  readonly placementRevision: number;
  readonly counts: WorkerCounts;
  /** Experts each worker hosts (all layers), where the cluster reports it: a rise marks a re-placement's loads. */
  readonly hosted?: readonly number[];
}

/** What the workers computed between two samples. */
export interface LoadInterval {
  readonly fromMs: number;
  readonly toMs: number;
  /** pairs[worker][layer]. */
  readonly pairs: readonly (readonly number[])[];
  /** Per layer: mean ÷ max of the workers' pairs; NaN when the layer computed nothing. */
  readonly balancedness: readonly number[];
}

/** counts of `b` minus those of `a`, worker by worker (a worker that restarted counts from 0: clamped). */
export function countsBetween(a: WorkerCounts, b: WorkerCounts): number[][][] {
  return b.map((layers, w) => layers.map((row, l) => row.map((n, e) => Math.max(0, n - (a[w]?.[l]?.[e] ?? 0)))));
}

/** pairs[worker][layer]: the experts of each layer summed. */
export function pairsPerWorkerLayer(counts: WorkerCounts): number[][] {
  return counts.map((layers) => layers.map((row) => row.reduce((s, n) => s + n, 0)));
}

/** pairs[layer][expert]: the workers summed (an expert's replicas together). */
export function pairsPerLayerExpert(counts: WorkerCounts): number[][] {
  const first = counts[0] ?? [];
  return first.map((row, l) => row.map((_, e) => counts.reduce((s, layers) => s + (layers[l]?.[e] ?? 0), 0)));
}

/** Per layer, mean ÷ max over workers of pairs[worker][layer]. */
export function layerBalancedness(pairs: readonly (readonly number[])[]): number[] {
  const numLayers = pairs[0]?.length ?? 0;
  return Array.from({ length: numLayers }, (_, l) => balancedness(pairs.map((layers) => layers[l] ?? 0)));
}

/** One interval per pair of consecutive samples. */
export function loadIntervals(samples: readonly CounterSample[]): LoadInterval[] {
  return samples.slice(1).map((b, i) => {
    const a = samples[i] ?? b;
    const pairs = pairsPerWorkerLayer(countsBetween(a.counts, b.counts));
    return { fromMs: a.atMs, toMs: b.atMs, pairs, balancedness: layerBalancedness(pairs) };
  });
}

/**
 * What the workers computed inside `w`, from the first sample at or after its start to the last at or
 * before its end; undefined when fewer than two samples fall inside.
 */
export function countsInWindow(samples: readonly CounterSample[], w: TimeWindow): number[][][] | undefined {
  const inside = samples.filter((s) => s.atMs >= w.fromMs && s.atMs <= w.toMs);
  const first = inside[0];
  const last = inside[inside.length - 1];
  if (first === undefined || last === undefined || first === last) return undefined;
  return countsBetween(first.counts, last.counts);
}

/** Dense counts[layer][expert] from a worker's `tokens_served` list. */
export function denseCounts(
  served: readonly { readonly layer: number; readonly expertId: number; readonly tokens: number }[],
  shape: { readonly numLayers: number; readonly numExperts: number },
): number[][] {
  const counts = Array.from({ length: shape.numLayers }, () => new Array<number>(shape.numExperts).fill(0));
  for (const s of served) {
    const row = counts[s.layer];
    if (row !== undefined && s.expertId >= 0 && s.expertId < shape.numExperts) row[s.expertId] = s.tokens;
  }
  return counts;
}
