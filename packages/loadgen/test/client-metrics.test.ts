import { describe, expect, it } from 'vitest';
import { computeClientMetrics, peakConcurrency, peakOutputTokensPerSecond, tpotMsOf } from '../src/client-metrics.ts';
import { GoodputSpecError, meetsSlos, parseGoodput } from '../src/goodput.ts';
import type { RequestOutput } from '../src/request-output.ts';

/** A request whose token chunks arrived at `chunkAtMs` (ms after it was sent). */
function streamed(startMs: number, promptLen: number, chunkAtMs: number[]): RequestOutput {
  const itlMs = chunkAtMs.slice(1).map((t, i) => t - (chunkAtMs[i] ?? 0));
  return {
    success: true,
    cancelled: false,
    promptLen,
    outputTokens: chunkAtMs.length,
    startMs,
    ttftMs: chunkAtMs[0] ?? 0,
    itlMs,
    latencyMs: chunkAtMs[chunkAtMs.length - 1] ?? 0,
    queueMs: 0,
    generatedText: '',
    error: '',
  };
}

const failed: RequestOutput = { ...streamed(10, 7, []), success: false, error: 'HTTP 500: boom' };
const cancelled: RequestOutput = { ...streamed(20, 9, [30]), success: false, cancelled: true, error: 'cancelled' };
// A: 4 tokens, B: 2 tokens, C: 1 token; then a failed and a cancelled request.
const A = streamed(0, 10, [100, 150, 210, 300]);
const B = streamed(50, 20, [200, 220]);
const C = streamed(60, 5, [80]);
const OUTPUTS = [A, B, failed, C, cancelled];

describe('client metrics with vLLM benchmark_serving definitions, on a hand-made timeline', () => {
  const m = computeClientMetrics(OUTPUTS, 2000, [90, 99], {});

  it('counts completed, failed and cancelled requests apart', () => {
    expect([m.completed, m.failed, m.cancelled]).toEqual([3, 1, 1]);
  });

  it('sums input and output tokens of successful requests only, with 0 output for the others', () => {
    expect(m.totalInput).toBe(35);
    expect(m.totalOutput).toBe(7);
    expect(m.outputLens).toEqual([4, 2, 0, 1, 0]);
  });

  it('divides by the wall time for request, output and total token throughput', () => {
    expect(m.durationS).toBe(2);
    expect(m.requestThroughput).toBe(1.5);
    expect(m.outputThroughput).toBe(3.5);
    expect(m.totalTokenThroughput).toBe(21);
    expect(m.requestGoodput).toBeUndefined();
  });

  it('TTFT is send → first token chunk, per request', () => {
    expect(m.ttftMs.mean).toBeCloseTo(380 / 3, 10);
    expect(m.ttftMs.median).toBe(100);
    expect(m.ttftMs.std).toBeCloseTo(
      Math.sqrt((26.666666666666668 ** 2 + 73.33333333333333 ** 2 + 46.666666666666664 ** 2) / 3),
      10,
    );
    expect(m.ttftMs.percentiles).toEqual([
      [90, 180],
      [99, 198],
    ]);
  });

  it('TPOT is (E2E − TTFT) ÷ (output tokens − 1), leaving out one-token requests', () => {
    expect(tpotMsOf(A)).toBeCloseTo(200 / 3, 12);
    expect(tpotMsOf(B)).toBe(20);
    expect(tpotMsOf(C)).toBeUndefined();
    expect(m.tpotMs.mean).toBeCloseTo((200 / 3 + 20) / 2, 12);
  });

  it('ITL pools every gap between token chunks of every successful request', () => {
    expect(m.itlMs.mean).toBe(55);
    expect(m.itlMs.median).toBe(55);
    expect(m.itlMs.percentiles[0]).toEqual([90, 81]);
  });

  it('E2E latency is send → last token chunk', () => {
    expect(m.e2elMs.mean).toBe(200);
    expect(m.e2elMs.median).toBe(220);
  });

  it('finds the peak concurrency and the fullest one-second bucket of output tokens', () => {
    expect(m.maxConcurrentRequests).toBe(3);
    expect(m.maxOutputTokensPerS).toBe(7);
    // Tokens at 0.9 s and 1.1 s from the earliest start fall in different buckets.
    expect(peakOutputTokensPerSecond([streamed(0, 1, [900, 1100, 1150])])).toBe(2);
    // Half-open intervals: one request ending when the next starts is not an overlap.
    expect(peakConcurrency([streamed(0, 1, [100]), streamed(100, 1, [100])])).toBe(1);
  });

  it('reports every statistic as 0 when nothing succeeded', () => {
    const none = computeClientMetrics([failed], 1000, [99], {});
    expect([none.completed, none.failed, none.ttftMs.mean, none.itlMs.percentiles[0]?.[1]]).toEqual([0, 1, 0, 0]);
  });
});

describe('goodput', () => {
  it('counts requests meeting every objective, with TPOT 0 for a one-token request', () => {
    const m = computeClientMetrics(OUTPUTS, 2000, [99], parseGoodput(['ttft:150', 'tpot:50']));
    // A misses TPOT (66.7 ms), B misses TTFT (200 ms), C meets both (TPOT counted as 0).
    expect(m.requestGoodput).toBe(0.5);
  });

  it('counts a value equal to its objective as met', () => {
    const m = computeClientMetrics(OUTPUTS, 2000, [99], parseGoodput(['e2el:220']));
    expect(m.requestGoodput).toBe(1);
    expect(meetsSlos({ ttftMs: 10, tpotMs: 5, e2elMs: 100 }, { ttft: 10, tpot: 5, e2el: 100 })).toBe(true);
  });

  it('parses KEY:VALUE pairs in ms and rejects unknown metrics and bad values', () => {
    expect(parseGoodput(['ttft:500', 'tpot:50', 'e2el:2000'])).toEqual({ ttft: 500, tpot: 50, e2el: 2000 });
    expect(() => parseGoodput(['itl:5'])).toThrow(GoodputSpecError);
    expect(() => parseGoodput(['ttft'])).toThrow(/KEY:VALUE/);
    expect(() => parseGoodput(['ttft:-1'])).toThrow(/≥ 0/);
  });
});
