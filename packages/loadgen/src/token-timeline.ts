/**
 * The streamed tokens of a run on one time axis (ms from the start of the run, the clock of
 * `RequestOutput.startMs`), so figures can be cut into windows: tokens per second, TTFT and ITL
 * percentiles, and the gaps that count as a stall, inside [fromMs, toMs). Pure functions of the outputs.
 */

import type { RequestOutput } from './request-output.ts';
import { summarize, type Summary } from './stats.ts';

export interface TimeWindow {
  readonly fromMs: number;
  readonly toMs: number;
}

/** When each token chunk of `output` arrived: the first at send + TTFT, each later one an ITL gap on. */
export function tokenTimesMs(output: RequestOutput): number[] {
  if (output.ttftMs <= 0 && output.itlMs.length === 0) return [];
  const times = [output.startMs + output.ttftMs];
  let at = times[0] ?? 0;
  for (const gap of output.itlMs) times.push((at += gap));
  return times;
}

const inside = (t: number, w: TimeWindow) => t >= w.fromMs && t < w.toMs;

/** Token chunks (of any request, cancelled ones too) that arrived inside `w`, per second of `w`. */
export function tokensPerSecond(outputs: readonly RequestOutput[], w: TimeWindow): number {
  const seconds = (w.toMs - w.fromMs) / 1000;
  if (!(seconds > 0)) return NaN;
  let n = 0;
  for (const o of outputs) for (const t of tokenTimesMs(o)) if (inside(t, w)) n++;
  return n / seconds;
}

/** Every inter-token gap that ended inside `w`. */
export function itlsInWindow(outputs: readonly RequestOutput[], w: TimeWindow): number[] {
  const gaps: number[] = [];
  for (const o of outputs) {
    const times = tokenTimesMs(o);
    o.itlMs.forEach((gap, i) => {
      if (inside(times[i + 1] ?? -Infinity, w)) gaps.push(gap);
    });
  }
  return gaps;
}

/** TTFT of every request whose first token arrived inside `w`. */
export function ttftsInWindow(outputs: readonly RequestOutput[], w: TimeWindow): number[] {
  return outputs.filter((o) => o.ttftMs > 0 && inside(o.startMs + o.ttftMs, w)).map((o) => o.ttftMs);
}

/** TTFT and ITL statistics (p50 = median) and tokens per second inside one window. */
export interface WindowFigures {
  readonly window: TimeWindow;
  readonly outputTokensPerS: number;
  readonly numItls: number;
  readonly ttftMs: Summary;
  readonly itlMs: Summary;
}

export function windowFigures(
  outputs: readonly RequestOutput[],
  w: TimeWindow,
  percentiles: readonly number[],
): WindowFigures {
  const itls = itlsInWindow(outputs, w);
  return {
    window: w,
    outputTokensPerS: tokensPerSecond(outputs, w),
    numItls: itls.length,
    ttftMs: summarize(ttftsInWindow(outputs, w), percentiles),
    itlMs: summarize(itls, percentiles),
  };
}

/** A request that waited `stallMs` or more for a token (its first or a later one). */
export interface Stall {
  readonly request: number;
  /** When the wait ended (or the request ended without its next token), ms from the start of the run. */
  readonly atMs: number;
  readonly waitedMs: number;
}

export function findStalls(outputs: readonly RequestOutput[], stallMs: number): Stall[] {
  const stalls: Stall[] = [];
  outputs.forEach((o, request) => {
    const times = tokenTimesMs(o);
    if (o.ttftMs >= stallMs) stalls.push({ request, atMs: o.startMs + o.ttftMs, waitedMs: o.ttftMs });
    o.itlMs.forEach((gap, i) => {
      if (gap >= stallMs) stalls.push({ request, atMs: times[i + 1] ?? 0, waitedMs: gap });
    });
  });
  return stalls;
}
