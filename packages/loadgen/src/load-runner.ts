/**
 * The open-loop load generator: each request is released at its arrival time whether or not earlier
 * ones have finished (so a slow server sees a growing queue, as real traffic makes it), then waits for
 * one of `maxConcurrency` client slots, then streams. Bounded in time by `durationMs` (no request is
 * released after it; those in flight get `gracePeriodMs` more, then are cancelled) and by `signal`
 * (Ctrl-C: everything in flight is cancelled at once and what was measured is returned).
 */

import { streamCompletion, type CompletionTarget } from './openai-stream.ts';
import type { BenchRequest, RequestOutput } from './request-output.ts';
import { Slots } from './slots.ts';

export interface LoadPlan {
  readonly requests: readonly BenchRequest[];
  /** Arrival of each request in ms from the start of the run (ascending). */
  readonly arrivalsMs: readonly number[];
  /** Infinity: no client-side limit. */
  readonly maxConcurrency: number;
  /** Infinity: no time bound. */
  readonly durationMs: number;
  readonly gracePeriodMs: number;
}

export interface LoadResult {
  /** One per request that was sent (in release order), including cancelled ones. */
  readonly outputs: readonly RequestOutput[];
  /** Wall time of the run, start to the last response (the denominator of every throughput). */
  readonly durationMs: number;
  readonly numNotSent: number;
  /** Stopped by `signal` (Ctrl-C). */
  readonly interrupted: boolean;
}

export interface LoadHooks {
  readonly signal: AbortSignal;
  readonly onProgress?: (done: number, total: number) => void;
}

/** Resolves at `atMs` (performance.now() time), or at once when `signal` aborts (or already has). */
export function sleepUntil(atMs: number, signal: AbortSignal): Promise<void> {
  const ms = atMs - performance.now();
  if (ms <= 0 || signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

export async function runLoad(plan: LoadPlan, target: CompletionTarget, hooks: LoadHooks): Promise<LoadResult> {
  const releasing = new AbortController();
  const inFlight = new AbortController();
  const onUserAbort = () => {
    releasing.abort();
    inFlight.abort();
  };
  hooks.signal.addEventListener('abort', onUserAbort, { once: true });
  const timers: NodeJS.Timeout[] = [];
  if (Number.isFinite(plan.durationMs)) {
    timers.push(setTimeout(() => releasing.abort(), plan.durationMs));
    timers.push(setTimeout(() => inFlight.abort(), plan.durationMs + plan.gracePeriodMs));
  }
  const slots = new Slots(plan.maxConcurrency);
  const total = plan.requests.length;
  let done = 0;
  hooks.onProgress?.(0, total);
  const runStartMs = performance.now();
  const tasks: Promise<RequestOutput | undefined>[] = [];
  try {
    for (const [i, request] of plan.requests.entries()) {
      await sleepUntil(runStartMs + (plan.arrivalsMs[i] ?? 0), releasing.signal);
      if (releasing.signal.aborted) break;
      const arrivedAt = performance.now();
      tasks.push(
        (async () => {
          if (!(await slots.acquire(releasing.signal))) return undefined;
          try {
            return await streamCompletion(
              target,
              request,
              { runStartMs, queueMs: performance.now() - arrivedAt },
              inFlight.signal,
            );
          } finally {
            slots.release();
            hooks.onProgress?.(++done, total);
          }
        })(),
      );
    }
    const outputs = (await Promise.all(tasks)).filter((o): o is RequestOutput => o !== undefined);
    return {
      outputs,
      durationMs: performance.now() - runStartMs,
      numNotSent: total - outputs.length,
      interrupted: hooks.signal.aborted,
    };
  } finally {
    for (const t of timers) clearTimeout(t);
    hooks.signal.removeEventListener('abort', onUserAbort);
  }
}
