/**
 * Client-side metrics with the definitions of vLLM's `benchmark_serving` (`vllm bench serve`), so
 * figures compare one to one:
 *
 * - TTFT: send → first chunk carrying a token, per successful request;
 * - TPOT: (E2E − TTFT) ÷ (output tokens − 1), per successful request with more than one output token;
 * - ITL: every gap between consecutive token chunks, pooled over all successful requests;
 * - E2E latency: send → last token chunk;
 * - throughputs divide by the run's wall time and goodput counts
 *   the requests that met every objective (TPOT 0 for one-token requests). The wall time runs from
 *   the start of the run (before the first arrival delay) to the end of the last request, as vLLM's.
 *
 * Failed requests add 0 output tokens and nothing else; cancelled ones (Ctrl-C, duration bound) are
 * counted apart.
 */

import { hasSlos, meetsSlos, type GoodputSlos } from './goodput.ts';
import type { RequestOutput } from './request-output.ts';
import { summarize, type Summary } from './stats.ts';

export interface ClientMetrics {
  readonly completed: number;
  readonly failed: number;
  readonly cancelled: number;
  readonly totalInput: number;
  readonly totalOutput: number;
  readonly durationS: number;
  readonly requestThroughput: number;
  /** undefined when no objective was given (vLLM writes null). */
  readonly requestGoodput: number | undefined;
  readonly outputThroughput: number;
  readonly totalTokenThroughput: number;
  readonly ttftMs: Summary;
  readonly tpotMs: Summary;
  readonly itlMs: Summary;
  readonly e2elMs: Summary;
  /** Highest count of output tokens in one whole second of the run (vLLM's bucketed peak). */
  readonly maxOutputTokensPerS: number;
  /** Peak number of requests in flight at once (half-open [start, end) intervals). */
  readonly maxConcurrentRequests: number;
  /** Output length of every request in order (0 for failed and cancelled ones). */
  readonly outputLens: readonly number[];
}

/** TPOT of one successful request, or undefined when it has at most one output token. */
export function tpotMsOf(output: RequestOutput): number | undefined {
  if (output.outputTokens <= 1) return undefined;
  return (output.latencyMs - output.ttftMs) / (output.outputTokens - 1);
}

export function computeClientMetrics(
  outputs: readonly RequestOutput[],
  durationMs: number,
  percentiles: readonly number[],
  slos: GoodputSlos,
): ClientMetrics {
  const ttfts: number[] = [];
  const tpots: number[] = [];
  const itls: number[] = [];
  const e2els: number[] = [];
  const outputLens: number[] = [];
  let totalInput = 0;
  let good = 0;
  for (const o of outputs) {
    if (!o.success) {
      outputLens.push(0);
      continue;
    }
    outputLens.push(o.outputTokens);
    totalInput += o.promptLen;
    const tpot = tpotMsOf(o);
    if (tpot !== undefined) tpots.push(tpot);
    for (const gap of o.itlMs) itls.push(gap);
    ttfts.push(o.ttftMs);
    e2els.push(o.latencyMs);
    if (meetsSlos({ ttftMs: o.ttftMs, tpotMs: tpot ?? 0, e2elMs: o.latencyMs }, slos)) good++;
  }
  const successful = outputs.filter((o) => o.success);
  const totalOutput = outputLens.reduce((a, b) => a + b, 0);
  const durationS = durationMs / 1000;
  const perS = (n: number) => (durationS > 0 ? n / durationS : 0);
  return {
    completed: successful.length,
    failed: outputs.filter((o) => !o.success && !o.cancelled).length,
    cancelled: outputs.filter((o) => o.cancelled).length,
    totalInput,
    totalOutput,
    durationS,
    requestThroughput: perS(successful.length),
    requestGoodput: hasSlos(slos) ? perS(good) : undefined,
    outputThroughput: perS(totalOutput),
    totalTokenThroughput: perS(totalInput + totalOutput),
    ttftMs: summarize(ttfts, percentiles),
    tpotMs: summarize(tpots, percentiles),
    itlMs: summarize(itls, percentiles),
    e2elMs: summarize(e2els, percentiles),
    maxOutputTokensPerS: peakOutputTokensPerSecond(successful),
    maxConcurrentRequests: peakConcurrency(successful),
    outputLens,
  };
}

/**
 * vLLM's peak output rate: token times rebuilt from start + TTFT + the ITL gaps, counted in whole-second
 * buckets from the earliest start; the fullest bucket.
 */
export function peakOutputTokensPerSecond(successful: readonly RequestOutput[]): number {
  if (successful.length === 0) return 0;
  const t0 = Math.min(...successful.map((o) => o.startMs));
  const tEnd = Math.max(...successful.map((o) => o.startMs + o.latencyMs));
  const buckets = new Array<number>(Math.ceil((tEnd - t0) / 1000) + 1).fill(0);
  for (const o of successful) {
    let t = o.startMs + o.ttftMs;
    const times = [t];
    for (const gap of o.itlMs) times.push((t += gap));
    for (const time of times) {
      const bucket = Math.floor((time - t0) / 1000);
      if (bucket >= 0 && bucket < buckets.length) buckets[bucket] = (buckets[bucket] ?? 0) + 1;
    }
  }
  return Math.max(...buckets);
}

/** Peak requests in flight, a sweep over [start, start + latency) with departures before arrivals. */
export function peakConcurrency(successful: readonly RequestOutput[]): number {
  const events = successful.flatMap((o) => [[o.startMs, 1] as const, [o.startMs + o.latencyMs, -1] as const]);
  events.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let current = 0;
  let peak = 0;
  for (const [, delta] of events) {
    current += delta;
    peak = Math.max(peak, current);
  }
  return peak;
}
