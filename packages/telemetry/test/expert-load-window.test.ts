import { describe, expect, it } from 'vitest';
import { ExpertLoadWindow } from '../src/expert-load-window.ts';

/** 2 layers × 3 experts, a 12 s window in 12 buckets of 1 s. */
const open = () => new ExpertLoadWindow({ numLayers: 2, numExperts: 3, windowMs: 12_000 });

describe('ExpertLoadWindow', () => {
  it('counts one pair per routed expert, by layer and expert', () => {
    const w = open();
    w.add(0, [0, 2, 2], 1_000);
    w.add(1, Int32Array.from([1]), 1_500);
    expect(w.totals(1_500)).toEqual([
      [1, 0, 2],
      [0, 1, 0],
    ]);
  });

  it('forgets a bucket once it is a whole window old, and keeps the younger ones', () => {
    const w = open();
    w.add(0, [0], 0);
    w.add(0, [1], 5_000);
    expect(w.totals(11_999)[0]).toEqual([1, 1, 0]);
    expect(w.totals(12_000)[0]).toEqual([0, 1, 0]);
    expect(w.totals(17_000)[0]).toEqual([0, 0, 0]);
    // A jump of many windows clears everything, and counting starts again.
    w.add(0, [2], 500_000);
    expect(w.totals(500_001)[0]).toEqual([0, 0, 1]);
  });

  it('counts a time before its newest bucket into that bucket', () => {
    const w = open();
    w.add(0, [0], 5_000);
    w.add(0, [0], 4_000);
    expect(w.totals(5_000)[0]).toEqual([2, 0, 0]);
  });

  it('rejects a layer or expert outside the model, and a window that is not positive', () => {
    const w = open();
    expect(() => w.add(2, [0], 0)).toThrow(RangeError);
    expect(() => w.add(0, [3], 0)).toThrow(RangeError);
    expect(() => new ExpertLoadWindow({ numLayers: 2, numExperts: 3, windowMs: 0 })).toThrow(/windowMs/);
    expect(() => new ExpertLoadWindow({ numLayers: 2, numExperts: 3, windowMs: 1, numBuckets: 1.5 })).toThrow(
      /numBuckets/,
    );
  });
});
