/**
 * The figures of an `eplb` run, computed from what the runner recorded (pure): per phase and time window
 * (the static phase's steady state; the rebalancing phase before, around and after its switch) tokens
 * per second, TTFT and ITL p50/p99, and balancedness per layer from the workers' own counters; the
 * per-worker load and per-layer balancedness of every sampling interval; failures and stalls; and the
 * comparisons issue 14 asks for, each with its target.
 */

import { computeClientMetrics, type ClientMetrics } from './client-metrics.ts';
import type { EplbPhase, EplbPhaseKind } from './eplb-runner.ts';
import type { EplbSettings } from './eplb-scenario.ts';
import { percentile } from './stats.ts';
import {
  findStalls,
  itlsInWindow,
  windowFigures,
  type Stall,
  type TimeWindow,
  type WindowFigures,
} from './token-timeline.ts';
import {
  countsInWindow,
  layerBalancedness,
  loadIntervals,
  pairsPerLayerExpert,
  pairsPerWorkerLayer,
} from './worker-counters.ts';

export const WINDOW_PERCENTILES = [50, 99] as const;

export type WindowName =
  'steady' | 'before re-placement' | 're-placement' | 'before switch' | 'around switch' | 'after switch';

export interface WindowReport {
  readonly name: WindowName;
  readonly figures: WindowFigures;
  /** Requests with a wait of `stallMs` or more that ended in the window. */
  readonly numStalledRequests: number;
  /** From the workers' counters; undefined when fewer than two samples fall in the window. */
  readonly workers:
    | {
        readonly balancednessPerLayer: readonly number[];
        /** pairs[worker][layer]. */
        readonly pairsPerWorkerLayer: readonly (readonly number[])[];
        /** pairs[layer][expert], the workers summed. */
        readonly pairsPerLayerExpert: readonly (readonly number[])[];
      }
    | undefined;
}

export interface TimelinePoint {
  /** End of the sampling interval, s from the start of the load. */
  readonly atS: number;
  /** p99 of the ITL gaps that ended in the interval (NaN without any). */
  readonly itlP99Ms: number;
  /** (token, expert) pairs per second each worker computed, all layers summed. */
  readonly pairsPerSPerWorker: readonly number[];
  readonly balancednessPerLayer: readonly number[];
  readonly placementRevision: number;
}

export interface PhaseReport {
  readonly kind: EplbPhaseKind;
  readonly durationS: number;
  readonly metrics: ClientMetrics;
  readonly numNotSent: number;
  /** The first placement switch, s from the start of the load. */
  readonly switchAtS: number | undefined;
  /** When the first re-placement's loads began (workers hosting more experts), where it was seen. */
  readonly loadsStartedAtS?: number;
  readonly switches: EplbPhase['switches'];
  readonly windows: readonly WindowReport[];
  readonly timeline: readonly TimelinePoint[];
  readonly stalls: readonly Stall[];
  /** Distinct error messages of failed requests, with their count. */
  readonly errors: readonly { readonly error: string; readonly count: number }[];
}

export interface Check {
  readonly name: string;
  readonly value: number;
  readonly target: string;
  readonly ok: boolean;
}

export interface EplbReport {
  readonly settings: EplbSettings;
  readonly phases: readonly PhaseReport[];
  readonly checks: readonly Check[];
}

function windowReport(phase: EplbPhase, settings: EplbSettings, name: WindowName, w: TimeWindow): WindowReport {
  const counts = countsInWindow(phase.samples, w);
  const perWorker = counts && pairsPerWorkerLayer(counts);
  const stalled = findStalls(phase.outputs, settings.stallMs).filter((st) => st.atMs >= w.fromMs && st.atMs < w.toMs);
  return {
    name,
    figures: windowFigures(phase.outputs, w, WINDOW_PERCENTILES),
    numStalledRequests: new Set(stalled.map((st) => st.request)).size,
    workers:
      counts && perWorker
        ? {
            balancednessPerLayer: layerBalancedness(perWorker),
            pairsPerWorkerLayer: perWorker,
            pairsPerLayerExpert: pairsPerLayerExpert(counts),
          }
        : undefined,
  };
}

/**
 * When the closed loop stopped: at the duration, or — should the requests have run out first — when the
 * last one was sent (the load thins out after that, so the windows end there).
 */
export function loadEndMs(phase: EplbPhase): number {
  if (phase.numNotSent > 0) return phase.durationMs;
  return Math.min(phase.durationMs, Math.max(0, ...phase.outputs.map((o) => o.startMs)));
}

/** The windows of a phase: the steady state, or before / around / after its first switch. */
export function windowsOf(phase: EplbPhase, settings: EplbSettings): WindowReport[] {
  // NOTE: a phase shorter than 4 settle periods (a smoke test) leaves out a quarter of it instead.
  const settleMs = Math.min(settings.settleS * 1000, phase.durationMs / 4);
  const halfMs = (settings.aroundSwitchS * 1000) / 2;
  const switchAt = phase.switches[0]?.atMs;
  const endMs = loadEndMs(phase);
  if (switchAt === undefined) return [windowReport(phase, settings, 'steady', { fromMs: settleMs, toMs: endMs })];
  const loadsAt = phase.loadsStartedAtMs;
  // The re-placement as a whole: from its first load to the end of the window around the switch,
  // compared with the steady state before any load began.
  const replacement =
    loadsAt !== undefined && loadsAt > settleMs && loadsAt < switchAt
      ? [
          windowReport(phase, settings, 'before re-placement', { fromMs: settleMs, toMs: loadsAt }),
          windowReport(phase, settings, 're-placement', { fromMs: loadsAt, toMs: switchAt + halfMs }),
        ]
      : [];
  return [
    ...replacement,
    windowReport(phase, settings, 'before switch', {
      fromMs: Math.min(settleMs, switchAt - halfMs),
      toMs: switchAt - halfMs,
    }),
    windowReport(phase, settings, 'around switch', { fromMs: switchAt - halfMs, toMs: switchAt + halfMs }),
    windowReport(phase, settings, 'after switch', { fromMs: switchAt + halfMs, toMs: endMs }),
  ];
}

function timelineOf(phase: EplbPhase): TimelinePoint[] {
  const revisionAt = new Map(phase.samples.map((s) => [s.atMs, s.placementRevision]));
  return loadIntervals(phase.samples).map((interval) => {
    const seconds = (interval.toMs - interval.fromMs) / 1000;
    const itls = itlsInWindow(phase.outputs, { fromMs: interval.fromMs, toMs: interval.toMs });
    return {
      atS: interval.toMs / 1000,
      itlP99Ms: itls.length > 0 ? percentile(itls, 99) : NaN,
      pairsPerSPerWorker: interval.pairs.map((layers) => layers.reduce((a, b) => a + b, 0) / seconds),
      balancednessPerLayer: interval.balancedness,
      placementRevision: revisionAt.get(interval.toMs) ?? 0,
    };
  });
}

export function phaseReport(phase: EplbPhase, settings: EplbSettings): PhaseReport {
  const errors = new Map<string, number>();
  for (const o of phase.outputs) if (!o.success && !o.cancelled) errors.set(o.error, (errors.get(o.error) ?? 0) + 1);
  const switchAt = phase.switches[0]?.atMs;
  return {
    kind: phase.kind,
    durationS: phase.durationMs / 1000,
    metrics: computeClientMetrics(phase.outputs, phase.wallMs, WINDOW_PERCENTILES, {}),
    numNotSent: phase.numNotSent,
    switchAtS: switchAt === undefined ? undefined : switchAt / 1000,
    ...(phase.loadsStartedAtMs === undefined ? {} : { loadsStartedAtS: phase.loadsStartedAtMs / 1000 }),
    switches: phase.switches,
    windows: windowsOf(phase, settings),
    timeline: timelineOf(phase),
    stalls: findStalls(phase.outputs, settings.stallMs),
    errors: [...errors].map(([error, count]) => ({ error, count })),
  };
}

const p99 = (w: WindowReport | undefined) => w?.figures.itlMs.percentiles.find(([p]) => p === 99)?.[1] ?? NaN;
const minOf = (xs: readonly number[] | undefined) => (xs && xs.length > 0 ? Math.min(...xs) : NaN);

/** Issue 14's acceptance figures, each with its target (NaN when the run did not produce it). */
export function checksOf(phases: readonly PhaseReport[]): Check[] {
  const win = (kind: EplbPhaseKind, name: WindowName) =>
    phases.find((p) => p.kind === kind)?.windows.find((w) => w.name === name);
  const steady = win('static', 'steady');
  const before = win('eplb', 'before switch');
  const around = win('eplb', 'around switch');
  const after = win('eplb', 'after switch');
  const tokensPerS = (w: WindowReport | undefined) => w?.figures.outputTokensPerS ?? NaN;
  const tokRatio = tokensPerS(after) / tokensPerS(steady);
  const sameGatewayRatio = tokensPerS(after) / tokensPerS(before);
  // With the loads' start known, the re-placement as a whole against the steady state before it;
  // otherwise the 10 s around the switch against the time before it.
  const whole = win('eplb', 're-placement');
  const stalled = (whole ?? around)?.numStalledRequests ?? NaN;
  const itlRatio = whole ? p99(whole) / p99(win('eplb', 'before re-placement')) : p99(around) / p99(before);
  const failed = phases.reduce((n, p) => n + p.metrics.failed, 0);

  const balanced = minOf(after?.workers?.balancednessPerLayer);
  return [
    { name: 'balancedness after rebalancing (min over layers)', value: balanced, target: '≥ 0.9', ok: balanced >= 0.9 },
    { name: 'output tok/s, rebalanced ÷ static phase', value: tokRatio, target: '> 1', ok: tokRatio > 1 },
    {
      name: 'output tok/s, after ÷ before the switch (same gateway)',
      value: sameGatewayRatio,
      target: '> 1',
      ok: sameGatewayRatio > 1,
    },
    {
      name: whole
        ? 'p99 ITL during the re-placement (first load to 5 s after the switch) ÷ before it'
        : 'p99 ITL around the switch ÷ before it',
      value: itlRatio,
      target: '≤ 1.5',
      ok: itlRatio <= 1.5,
    },
    { name: 'failed requests (both phases)', value: failed, target: '0', ok: failed === 0 },
    {
      name: whole ? 'requests stalled during the re-placement' : 'requests stalled around the switch',
      value: stalled,
      target: '0',
      ok: stalled === 0,
    },
  ];
}

export function analyseEplb(phases: readonly EplbPhase[], settings: EplbSettings): EplbReport {
  const reports = phases.map((p) => phaseReport(p, settings));
  return { settings, phases: reports, checks: checksOf(reports) };
}
