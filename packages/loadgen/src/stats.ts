/**
 * Summary statistics exactly as vLLM's `benchmark_serving` computes them with numpy: `np.mean`,
 * `np.median`, `np.std` (population, ddof = 0) and `np.percentile` with its default linear
 * interpolation. An empty sample gives 0 for every statistic, as numpy does for vLLM's `values or 0`.
 */

/**
 * numpy's default ("linear") percentile of `sorted` (ascending): the value at fractional rank
 * (n − 1) × (p ÷ 100), interpolated between its two neighbours.
 */
export function percentileOfSorted(sorted: readonly number[], p: number): number {
  if (!(p >= 0 && p <= 100)) throw new RangeError(`percentile must be in [0, 100], got ${p}`);
  if (sorted.length === 0) return 0;
  const rank = (sorted.length - 1) * (p / 100);
  const lo = Math.floor(rank);
  const hi = Math.min(lo + 1, sorted.length - 1);
  const t = rank - lo;
  const a = sorted[lo] ?? 0;
  const b = sorted[hi] ?? 0;
  // NOTE: numpy's _lerp interpolates from the nearer end (b − (b − a)(1 − t) once t ≥ 0.5); the same
  // two forms keep the last bits equal to numpy's.
  return t >= 0.5 ? b - (b - a) * (1 - t) : a + (b - a) * t;
}

export function percentile(values: readonly number[], p: number): number {
  return percentileOfSorted(
    [...values].sort((a, b) => a - b),
    p,
  );
}

export function mean(values: readonly number[]): number {
  if (values.length === 0) return 0;
  let sum = 0;
  for (const v of values) sum += v;
  return sum / values.length;
}

/** Population standard deviation (numpy's default, ddof = 0). */
export function std(values: readonly number[]): number {
  if (values.length === 0) return 0;
  const m = mean(values);
  let sum = 0;
  for (const v of values) sum += (v - m) * (v - m);
  return Math.sqrt(sum / values.length);
}

export interface Summary {
  readonly mean: number;
  readonly median: number;
  readonly std: number;
  /** Requested percentile → value, in the order requested. */
  readonly percentiles: readonly (readonly [number, number])[];
}

export function summarize(values: readonly number[], percentiles: readonly number[]): Summary {
  const sorted = [...values].sort((a, b) => a - b);
  return {
    mean: mean(values),
    median: percentileOfSorted(sorted, 50),
    std: std(values),
    percentiles: percentiles.map((p) => [p, percentileOfSorted(sorted, p)] as const),
  };
}

/** vLLM's key word for a percentile: `99` for 99, `99.9` for 99.9 (JavaScript's shortest form is Python's). */
export function percentileWord(p: number): string {
  return String(p);
}
