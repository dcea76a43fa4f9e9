import { describe, expect, it } from 'vitest';
import { addRows, gatherRows, planDispatch, routesFromPairs, scatterAddWeighted, splitByWorker } from '../src/index.ts';

describe('gatherRows', () => {
  it('copies the requested rows in order into the given buffer', () => {
    const src = new Float32Array([0, 1, 10, 11, 20, 21]);
    const out = new Float32Array(6).fill(-1);
    const result = gatherRows(src, 2, new Int32Array([2, 0]), out);
    expect(result).toBe(out);
    expect(Array.from(out)).toEqual([20, 21, 0, 1, -1, -1]);
  });

  it('rejects a row outside the source', () => {
    expect(() => gatherRows(new Float32Array(4), 2, new Int32Array([2]))).toThrow(RangeError);
  });
});

describe('scatterAddWeighted', () => {
  it('adds weighted rows into the output, accumulating repeated rows', () => {
    const out = new Float32Array([1, 1, 1, 1, 1, 1]);
    const values = new Float32Array([2, 4, 8, 16, 1, 1]);
    scatterAddWeighted(out, 2, new Int32Array([2, 0, 2]), values, new Float32Array([0.5, 0.25, 2]));
    expect(Array.from(out)).toEqual([3, 5, 1, 1, 4, 5]);
  });

  it('adds a worker partial sums back un-weighted', () => {
    const out = new Float32Array(4);
    addRows(out, 2, new Int32Array([1]), new Float32Array([3, 4]));
    expect(Array.from(out)).toEqual([0, 0, 3, 4]);
  });
});

describe('combine', () => {
  /** A toy expert: e scales its input by (e + 1). */
  const expert = (e: number, x: Float32Array): Float32Array => x.map((v) => v * (e + 1));
  const width = 2;
  const hidden = new Float32Array([1, 2, 3, 4, 5, 6]);
  const routes = routesFromPairs([
    [
      [0, 0.5],
      [3, 0.5],
    ],
    [
      [3, 0.75],
      [1, 0.25],
    ],
    [[2, 1]],
  ]);

  it('gives the same output whether experts run per expert or per worker', () => {
    const monolithic = new Float32Array(hidden.length);
    for (const { expertId, rows, weights } of planDispatch(routes, 4).experts) {
      scatterAddWeighted(monolithic, width, rows, expert(expertId, gatherRows(hidden, width, rows)), weights);
    }
    expect(Array.from(monolithic)).toEqual([2.5, 5, 10.5, 14, 15, 18]);

    const distributed = new Float32Array(hidden.length);
    for (const shard of splitByWorker(routes, new Int32Array([0, 1, 1, 0]), 2)) {
      const input = gatherRows(hidden, width, shard.tokenRows);
      const partial = new Float32Array(input.length);
      for (const { expertId, rows, weights } of planDispatch(shard.routes, 4).experts) {
        scatterAddWeighted(partial, width, rows, expert(expertId, gatherRows(input, width, rows)), weights);
      }
      addRows(distributed, width, shard.tokenRows, partial);
    }
    expect(Array.from(distributed)).toEqual(Array.from(monolithic));
  });
});
