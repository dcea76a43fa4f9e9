import { describe, expect, it } from 'vitest';
import { arrivalTimesMs, interArrivalGapsS } from '../src/arrivals.ts';
import { mean, std } from '../src/stats.ts';
import { SeededRandom } from '../src/seeded-random.ts';

const N = 20_000;
const rng = (key: string) => new SeededRandom(42, key);

describe('open-loop arrivals (vLLM get_request)', () => {
  it('Poisson at rate r: exponential gaps with mean 1/r and coefficient of variation 1', () => {
    const gaps = interArrivalGapsS(N, { requestRate: 4, burstiness: 1 }, rng('poisson'));
    expect(mean(gaps)).toBeCloseTo(0.25, 2);
    expect(std(gaps) / mean(gaps)).toBeCloseTo(1, 1);
    // P(gap > mean) = e^-1 for an exponential.
    expect(gaps.filter((g) => g > 0.25).length / N).toBeCloseTo(Math.exp(-1), 1);
  });

  it('gamma with burstiness b: shape b, scale 1/(r·b), so the mean stays 1/r and the CV is 1/√b', () => {
    for (const b of [0.25, 0.5, 4]) {
      const gaps = interArrivalGapsS(N, { requestRate: 2, burstiness: b }, rng(`gamma-${b}`));
      expect(mean(gaps)).toBeCloseTo(0.5, 1);
      expect(std(gaps) / mean(gaps)).toBeCloseTo(1 / Math.sqrt(b), 1);
    }
  });

  it('rescales cumulative times so the last arrival is at n ÷ rate, as vLLM does', () => {
    const times = arrivalTimesMs(50, { requestRate: 10, burstiness: 1 }, rng('normalised'));
    expect(times[times.length - 1]).toBeCloseTo(5000, 6);
    expect(times.every((t, i) => i === 0 || t >= (times[i - 1] ?? 0))).toBe(true);
    expect(times[0]).toBeGreaterThan(0);
  });

  it('releases everything at once at rate inf, and evenly at burstiness inf', () => {
    expect(arrivalTimesMs(3, { requestRate: Infinity, burstiness: 1 }, rng('inf'))).toEqual([0, 0, 0]);
    expect(arrivalTimesMs(4, { requestRate: 2, burstiness: Infinity }, rng('even'))).toEqual([500, 1000, 1500, 2000]);
  });

  it('gives the same times for the same seed and different ones for another', () => {
    const spec = { requestRate: 3, burstiness: 0.5 };
    const a = arrivalTimesMs(20, spec, new SeededRandom(7, 'arrivals'));
    expect(arrivalTimesMs(20, spec, new SeededRandom(7, 'arrivals'))).toEqual(a);
    expect(arrivalTimesMs(20, spec, new SeededRandom(8, 'arrivals'))).not.toEqual(a);
  });

  it('rejects a non-positive rate or burstiness', () => {
    expect(() => interArrivalGapsS(1, { requestRate: 0, burstiness: 1 }, rng('x'))).toThrow(RangeError);
    expect(() => interArrivalGapsS(1, { requestRate: 1, burstiness: 0 }, rng('x'))).toThrow(RangeError);
  });
});
