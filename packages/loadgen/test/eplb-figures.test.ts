import { describe, expect, it } from 'vitest';
import { analyseEplb, loadEndMs } from '../src/eplb-analysis.ts';
import { loadsStartOf, type EplbPhase } from '../src/eplb-runner.ts';
import { EPLB_DEFAULTS } from '../src/eplb-scenario.ts';
import type { RequestOutput } from '../src/request-output.ts';
import { findStalls, itlsInWindow, tokenTimesMs, tokensPerSecond, ttftsInWindow } from '../src/token-timeline.ts';
import {
  countsInWindow,
  denseCounts,
  layerBalancedness,
  loadIntervals,
  pairsPerLayerExpert,
  type CounterSample,
} from '../src/worker-counters.ts';

/** A request sent at `startMs` whose token chunks arrived at `chunkAtMs` (ms after it was sent). */
function streamed(startMs: number, chunkAtMs: number[]): RequestOutput {
  return {
    success: true,
    cancelled: false,
    promptLen: 4,
    outputTokens: chunkAtMs.length,
    startMs,
    ttftMs: chunkAtMs[0] ?? 0,
    itlMs: chunkAtMs.slice(1).map((t, i) => t - (chunkAtMs[i] ?? 0)),
    latencyMs: chunkAtMs.at(-1) ?? 0,
    queueMs: 0,
    generatedText: '',
    error: '',
  };
}

describe('the token timeline', () => {
  const A = streamed(0, [100, 150, 2_400]);
  const B = streamed(1_000, [50, 80]);

  it('puts every token chunk on the run’s clock', () => {
    expect(tokenTimesMs(A)).toEqual([100, 150, 2_400]);
    expect(tokenTimesMs(B)).toEqual([1_050, 1_080]);
    expect(tokenTimesMs({ ...A, ttftMs: 0, itlMs: [] })).toEqual([]);
  });

  it('counts tokens, ITL gaps and TTFTs in the window they end in, [from, to)', () => {
    const w = { fromMs: 100, toMs: 1_080 };
    expect(tokensPerSecond([A, B], w)).toBeCloseTo(3 / 0.98, 9);
    expect(itlsInWindow([A, B], w)).toEqual([50]);
    expect(itlsInWindow([A, B], { fromMs: 1_000, toMs: 3_000 })).toEqual([2_250, 30]);
    expect(ttftsInWindow([A, B], w)).toEqual([100, 50]);
  });

  it('finds a wait of stallMs or more, for the first token or a later one', () => {
    expect(findStalls([A, B], 2_000)).toEqual([{ request: 0, atMs: 2_400, waitedMs: 2_250 }]);
    expect(findStalls([streamed(0, [3_000, 3_010])], 2_000)).toEqual([{ request: 0, atMs: 3_000, waitedMs: 3_000 }]);
  });
});

/** Two workers, one layer, two experts: counts[worker][layer][expert]. */
const sample = (atMs: number, counts: number[][][], placementRevision = 1): CounterSample => ({
  atMs,
  placementRevision,
  counts,
});

describe('loads from the workers’ counters', () => {
  const samples = [
    sample(0, [[[0, 0]], [[0, 0]]]),
    sample(1_000, [[[30, 10]], [[0, 0]]]),
    sample(2_000, [[[50, 10]], [[10, 10]]], 2),
  ];

  it('gives each interval the pairs each worker computed and the layer’s mean ÷ max', () => {
    expect(loadIntervals(samples)).toEqual([
      { fromMs: 0, toMs: 1_000, pairs: [[40], [0]], balancedness: [0.5] },
      { fromMs: 1_000, toMs: 2_000, pairs: [[20], [20]], balancedness: [1] },
    ]);
  });

  it('sums a window from its first to its last sample, and nothing without two samples', () => {
    expect(countsInWindow(samples, { fromMs: 0, toMs: 2_000 })).toEqual([[[50, 10]], [[10, 10]]]);
    expect(countsInWindow(samples, { fromMs: 500, toMs: 1_500 })).toBeUndefined();
    expect(pairsPerLayerExpert([[[50, 10]], [[10, 10]]])).toEqual([[60, 20]]);
    expect(layerBalancedness([[60], [20]])).toEqual([40 / 60]);
  });

  it('reads a Describe tokens_served list into dense counts', () => {
    const served = [
      { layer: 1, expertId: 0, tokens: 7 },
      { layer: 0, expertId: 1, tokens: 3 },
    ];
    expect(denseCounts(served, { numLayers: 2, numExperts: 2 })).toEqual([
      [0, 3],
      [7, 0],
    ]);
  });
});

describe('the eplb figures', () => {
  const settings = { ...EPLB_DEFAULTS, settleS: 1, aroundSwitchS: 2 };
  /** One token every 100 ms from 0 to 10 s; the switch at 5 s. */
  const tokens = streamed(
    0,
    Array.from({ length: 100 }, (_, i) => 100 * (i + 1)),
  );
  const counts = (t: number) =>
    t < 5 ? [[[t * 30, 0]], [[t * 10, 0]]] : [[[150 + (t - 5) * 20, 0]], [[50 + (t - 5) * 20, 0]]];
  const phase = (kind: 'static' | 'eplb', switches: EplbPhase['switches']): EplbPhase => ({
    kind,
    durationMs: 10_000,
    wallMs: 10_000,
    outputs: [tokens],
    // Requests were left unsent at the duration: the closed loop did not run dry.
    numNotSent: 1,
    samples: Array.from({ length: 11 }, (_, t) => sample(1_000 * t, counts(kind === 'static' ? 0.5 * t : t))),
    switches,
    numMissedSamples: 0,
  });

  it('ends the windows at the last request sent when the requests ran out before the duration', () => {
    const ranOut = { ...phase('static', []), outputs: [tokens, streamed(8_000, [50])], numNotSent: 0 };
    expect(loadEndMs(ranOut)).toBe(8_000);
    expect(loadEndMs({ ...ranOut, numNotSent: 3 })).toBe(10_000);
  });

  it('cuts the rebalancing phase around its switch and compares it with the static phase', () => {
    const report = analyseEplb(
      [phase('static', []), phase('eplb', [{ atMs: 5_000, fromRevision: 1, toRevision: 2 }])],
      settings,
    );
    const [staticPhase, eplb] = report.phases;
    expect(staticPhase?.windows.map((w) => [w.name, w.figures.window])).toEqual([
      ['steady', { fromMs: 1_000, toMs: 10_000 }],
    ]);
    expect(eplb?.windows.map((w) => [w.name, w.figures.window])).toEqual([
      ['before switch', { fromMs: 1_000, toMs: 4_000 }],
      ['around switch', { fromMs: 4_000, toMs: 6_000 }],
      ['after switch', { fromMs: 6_000, toMs: 10_000 }],
    ]);
    expect(eplb?.switchAtS).toBe(5);
    expect(eplb?.windows[0]?.workers?.balancednessPerLayer).toEqual([40 / 2 / 30]);
    expect(eplb?.windows[2]?.workers?.balancednessPerLayer).toEqual([1]);
    expect(report.checks.map((c) => [c.name, c.ok])).toEqual([
      ['balancedness after rebalancing (min over layers)', true],
      ['output tok/s, rebalanced ÷ static phase', false],
      ['output tok/s, after ÷ before the switch (same gateway)', false],
      ['p99 ITL around the switch ÷ before it', true],
      ['failed requests (both phases)', true],
      ['requests stalled around the switch', true],
    ]);
    expect(eplb?.timeline).toHaveLength(10);
    expect(eplb?.timeline[0]?.pairsPerSPerWorker).toEqual([30, 10]);
    expect(eplb?.timeline[1]?.itlP99Ms).toBeCloseTo(100, 9);
  });

  it('with the loads\u2019 start known, compares the whole re-placement with the steady state before any load', () => {
    // Tokens every 100 ms, but 400 ms gaps while the workers load (3–5 s): the re-placement's p99 ITL is
    // 400 ms against 100 ms before it.
    const slow = streamed(
      0,
      Array.from({ length: 80 }, (_, i) => {
        const t = 100 * (i + 1);
        return t <= 3_000 ? t : t <= 4_600 ? 3_000 + 400 * Math.ceil((t - 3_000) / 400) : t;
      }).filter((t, i, all) => i === 0 || t > (all[i - 1] ?? 0)),
    );
    const hostedAt = (t: number) => (t < 3 ? [4, 4] : [6, 6]);
    const eplbPhase: EplbPhase = {
      ...phase('eplb', [{ atMs: 5_000, fromRevision: 1, toRevision: 2 }]),
      outputs: [slow],
      samples: Array.from({ length: 11 }, (_, t) => ({ ...sample(1_000 * t, counts(t)), hosted: hostedAt(t) })),
      loadsStartedAtMs: 2_500,
    };
    const report = analyseEplb([phase('static', []), eplbPhase], settings);
    const eplb = report.phases[1];
    expect(eplb?.windows.map((w) => [w.name, w.figures.window])).toEqual([
      ['before re-placement', { fromMs: 1_000, toMs: 2_500 }],
      ['re-placement', { fromMs: 2_500, toMs: 6_000 }],
      ['before switch', { fromMs: 1_000, toMs: 4_000 }],
      ['around switch', { fromMs: 4_000, toMs: 6_000 }],
      ['after switch', { fromMs: 6_000, toMs: 10_000 }],
    ]);
    const itl = report.checks.find((c) => c.name.startsWith('p99 ITL during the re-placement'));
    expect(itl?.value).toBeCloseTo(4, 6);
    expect(itl?.ok).toBe(false);
    expect(report.checks.map((c) => c.name)).toContain('requests stalled during the re-placement');
  });
});

describe('loadsStartOf', () => {
  const at = (atMs: number, hosted?: number[]): CounterSample => ({
    ...sample(atMs, [[[0]]]),
    ...(hosted ? { hosted } : {}),
  });

  it('is midway between the last sample with no worker above its starting count and the first with one', () => {
    const samples = [at(0, [4, 4]), at(1_000, [4, 4]), at(2_000, [3, 5]), at(3_000, [6, 6])];
    expect(loadsStartOf(samples, 3_500)).toEqual({ loadsStartedAtMs: 1_500 });
  });

  it('is absent without hosted counts, without a switch, or when nothing grew before the switch', () => {
    expect(loadsStartOf([at(0), at(1_000)], 500)).toEqual({});
    expect(loadsStartOf([at(0, [4]), at(1_000, [5])], undefined)).toEqual({});
    expect(loadsStartOf([at(0, [4]), at(1_000, [4]), at(9_000, [5])], 2_000)).toEqual({});
  });
});
