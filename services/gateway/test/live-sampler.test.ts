import { describe, expect, it } from 'vitest';
import { LiveSampler, type LiveSource, type LiveTotals } from '../src/live/live-sampler.ts';

function sourceWith(totals: () => LiveTotals): LiveSource {
  return {
    instance: 'gw-1',
    model: 'tiny',
    queue: 'in-process',
    hasEngine: true,
    state: () => 'serving',
    numRunning: () => 2,
    numWaiting: () => 1,
    kvUsage: () => 0.25,
    workers: () => [
      { address: 'w0:1', up: true },
      { address: 'w1:1', up: false },
    ],
    // 2 layers × 3 experts; expert 1 of layer 0 has both workers (w1 primary).
    placement: () => ({
      revision: 4,
      replicas: [
        [[0], [1, 0], [1]],
        [[0], [1], [0]],
      ],
    }),
    totals,
    numLayers: 2,
    numExperts: 3,
  };
}

describe('the live page sampler', () => {
  it('turns running totals into rates and per-token figures between two samples', () => {
    let totals: LiveTotals = { computedTokens: 10, activeParams: 1000, flops: 3000, expertTokens: undefined };
    const sampler = new LiveSampler(sourceWith(() => totals));
    const first = sampler.sample(1_000);
    expect(first).toMatchObject({ tokensPerSecond: 0, activeParamsPerToken: 100, flopsPerToken: 300 });
    expect(first.expertLoad).toEqual([
      [0, 0, 0],
      [0, 0, 0],
    ]);
    totals = {
      computedTokens: 30,
      activeParams: 1000 + 20 * 50,
      flops: 3000 + 20 * 150,
      expertTokens: Float64Array.from([1, 2, 3, 4, 5, 6]),
    };
    const second = sampler.sample(3_000);
    expect(second).toMatchObject({ tokensPerSecond: 10, activeParamsPerToken: 50, flopsPerToken: 150 });
    expect(second.expertLoad).toEqual([
      [1, 2, 3],
      [4, 5, 6],
    ]);
    // Nothing computed since: the rate drops to 0, the per-token figures keep their last value.
    expect(sampler.sample(4_000)).toMatchObject({ tokensPerSecond: 0, activeParamsPerToken: 50 });
  });

  it('lists each worker’s health and the experts it holds, per layer, and how many as primary', () => {
    const snapshot = new LiveSampler(
      sourceWith(() => ({ computedTokens: 0, activeParams: 0, flops: 0, expertTokens: undefined })),
    ).sample(0);
    expect(snapshot.placementRevision).toBe(4);
    expect(snapshot.workers).toEqual([
      {
        address: 'w0:1',
        up: true,
        experts: [
          [0, 1],
          [0, 2],
        ],
        numExperts: 4,
        numPrimary: 3,
      },
      { address: 'w1:1', up: false, experts: [[1, 2], [1]], numExperts: 3, numPrimary: 3 },
    ]);
    expect(snapshot).toMatchObject({ running: 2, waiting: 1, kvUsage: 0.25, state: 'serving', model: 'tiny' });
  });
});
