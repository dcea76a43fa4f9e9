/**
 * Open-loop arrival times, as vLLM's `get_request`: inter-arrival gaps are Gamma(shape = burstiness,
 * scale = 1 ÷ (rate × burstiness)) — exponential (a Poisson process) at burstiness 1, burstier below 1,
 * more regular above; a constant 1 ÷ rate at burstiness ∞; all at once at rate ∞.
 *
 * NOTE: like vLLM (since it normalises), the cumulative times are rescaled so the last arrival falls
 * exactly at n ÷ rate: the offered load is then the same for every seed, only its shape varies. The
 * first request also waits one gap, as in vLLM.
 */

import type { SeededRandom } from './seeded-random.ts';

export interface ArrivalSpec {
  /** Requests per second; Infinity sends everything at once. */
  readonly requestRate: number;
  /** Gamma shape; 1 is Poisson, Infinity is evenly spaced. */
  readonly burstiness: number;
}

/** Raw inter-arrival gaps in seconds (before normalisation). */
export function interArrivalGapsS(n: number, spec: ArrivalSpec, random: SeededRandom): number[] {
  const { requestRate: rate, burstiness } = spec;
  if (!(rate > 0)) throw new RangeError(`request rate must be > 0, got ${rate}`);
  if (!(burstiness > 0)) throw new RangeError(`burstiness must be > 0, got ${burstiness}`);
  if (rate === Infinity) return new Array<number>(n).fill(0);
  if (burstiness === Infinity) return new Array<number>(n).fill(1 / rate);
  const scale = 1 / (rate * burstiness);
  return Array.from({ length: n }, () => random.gamma(burstiness, scale));
}

/** Arrival offsets in ms from the start of the run, ascending, the last at n ÷ rate seconds. */
export function arrivalTimesMs(n: number, spec: ArrivalSpec, random: SeededRandom): number[] {
  const gaps = interArrivalGapsS(n, spec, random);
  const times: number[] = [];
  let t = 0;
  for (const gap of gaps) times.push((t += gap));
  const last = times[times.length - 1] ?? 0;
  if (last === 0) return times.map(() => 0);
  const factor = n / spec.requestRate / last;
  return times.map((s) => s * factor * 1000);
}
