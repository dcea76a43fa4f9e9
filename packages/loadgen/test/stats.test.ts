import { describe, expect, it } from 'vitest';
import { mean, percentile, percentileWord, std, summarize } from '../src/stats.ts';

// Expected values printed by numpy 2.4 (np.percentile's default "linear" method, np.std with ddof 0).
const X = [12.5, 3.0, 7.25, 100.0, 0.5, 42.0, 8.0, 8.0, 15.75, 1.0, 23.0];

describe('statistics as numpy computes them for vLLM', () => {
  it('interpolates percentiles linearly between order statistics, bit for bit like np.percentile', () => {
    const expected: [number, number][] = [
      [0, 0.5],
      [10, 1.0],
      [25, 5.125],
      [33.3, 7.4975],
      [50, 8.0],
      [90, 42.0],
      [99, 94.20000000000002],
      [99.9, 99.42000000000012],
      [100, 100.0],
    ];
    for (const [p, value] of expected) expect(percentile(X, p)).toBe(value);
    expect(percentile([0.1, 0.2, 0.3], 90)).toBe(0.28);
    expect(percentile([0.1, 0.2, 0.3], 99)).toBe(0.298);
    expect(percentile([5], 99)).toBe(5);
  });

  it('uses the population standard deviation (ddof 0) and the plain mean', () => {
    expect(mean(X)).toBeCloseTo(20.09090909090909, 12);
    expect(std(X)).toBeCloseTo(27.712868836942047, 12);
  });

  it('gives 0 for every statistic of an empty sample, as vLLM does with `values or 0`', () => {
    expect(summarize([], [90, 99])).toEqual({
      mean: 0,
      median: 0,
      std: 0,
      percentiles: [
        [90, 0],
        [99, 0],
      ],
    });
  });

  it('summarizes with the median and the requested percentiles in order', () => {
    const s = summarize(X, [99, 90]);
    expect(s.median).toBe(8);
    expect(s.percentiles).toEqual([
      [99, 94.20000000000002],
      [90, 42],
    ]);
  });

  it('names percentiles as vLLM keys do: p99, p99.9', () => {
    expect(percentileWord(99)).toBe('99');
    expect(percentileWord(99.9)).toBe('99.9');
  });

  it('rejects a percentile outside [0, 100]', () => {
    expect(() => percentile(X, 101)).toThrow(RangeError);
  });
});
