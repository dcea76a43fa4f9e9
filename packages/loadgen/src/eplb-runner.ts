/**
 * Carries out the `eplb` scenario over expert workers the caller started: per phase, a gateway (the
 * caller's launcher turns the phase into flags), a warm-up request, then the closed-loop load while
 * every worker's own counters are read each `sampleIntervalMs` and the gateway's placement revision
 * (`GET /v1/switchyard/stats`) every `REVISION_POLL_MS`, so the switch is located within that. The
 * figures are computed afterwards from this plain data (`eplb-analysis.ts`).
 */

import { buildRequests } from './datasets/dataset.ts';
import { runLoad, sleepUntil } from './load-runner.ts';
import { streamCompletion, type CompletionTarget } from './openai-stream.ts';
import type { RequestOutput } from './request-output.ts';
import type { RunHooks } from './run-against-server.ts';
import { BenchSetupError, fetchServerModel } from './server-info.ts';
import type { EplbSettings } from './eplb-scenario.ts';
import type { CounterSample, WorkerCounts } from './worker-counters.ts';

const REVISION_POLL_MS = 200;

export type EplbPhaseKind = 'static' | 'eplb';

/** The expert workers of the scenario and how to put a gateway in front of them. */
export interface EplbCluster {
  readonly shape: { readonly numLayers: number; readonly numExperts: number };
  /** Starts the phase's gateway over the workers; resolves once it serves. */
  startGateway(kind: EplbPhaseKind, settings: EplbSettings): Promise<{ readonly url: string; stop(): Promise<void> }>;
  /**
   * Every worker's `tokens_served`, counts[worker][layer][expert], and (where known) how many experts
   * each hosts, all layers — a re-placement's loads raise it. One read of each worker.
   */
  readCounters(): Promise<{ readonly counts: WorkerCounts; readonly hosted?: readonly number[] }>;
}

export interface EplbPhase {
  readonly kind: EplbPhaseKind;
  /** When requests stopped being released, ms from the start of the load. */
  readonly durationMs: number;
  /** Wall time until the last response. */
  readonly wallMs: number;
  readonly outputs: readonly RequestOutput[];
  readonly numNotSent: number;
  readonly samples: readonly CounterSample[];
  /** Every change of the gateway's placement revision: when it was first seen, and the one before. */
  readonly switches: readonly { readonly atMs: number; readonly fromRevision: number; readonly toRevision: number }[];
  /** Samples the workers or the gateway did not answer. */
  readonly numMissedSamples: number;
  /**
   * When the first re-placement's loads began: midway between the last sample in which no worker hosted
   * more experts than at the start and the first in which one did (absent without hosted counts).
   */
  readonly loadsStartedAtMs?: number;
}

export interface EplbOutcome {
  readonly phases: readonly EplbPhase[];
  readonly notes: readonly string[];
  readonly interrupted: boolean;
}

async function placementRevision(url: string): Promise<number> {
  const response = await fetch(`${url}/v1/switchyard/stats`, { signal: AbortSignal.timeout(2_000) });
  const stats = (await response.json()) as { placementRevision?: unknown };
  return typeof stats.placementRevision === 'number' ? stats.placementRevision : 0;
}

/** Calls `tick` every `everyMs` (the first after one period) until `signal`; never two at once. */
async function every(everyMs: number, signal: AbortSignal, tick: () => Promise<void>): Promise<void> {
  let next = performance.now() + everyMs;
  for (;;) {
    await sleepUntil(next, signal);
    if (signal.aborted) return;
    await tick();
    next = Math.max(next + everyMs, performance.now());
  }
}

async function runPhase(
  kind: EplbPhaseKind,
  cluster: EplbCluster,
  settings: EplbSettings,
  hooks: RunHooks,
): Promise<EplbPhase> {
  const durationMs = (kind === 'static' ? settings.staticDurationS : settings.eplbDurationS) * 1000;
  const gateway = await cluster.startGateway(kind, settings);
  try {
    const model = await fetchServerModel(gateway.url, undefined);
    const target: CompletionTarget = {
      baseUrl: gateway.url,
      model: model.id,
      temperature: 0,
      requestTimeoutMs: 120_000,
    };
    // Closed loop: more requests than the phase can serve, all arriving at once; the duration ends it.
    // The same seed in both phases: the same requests in the same order.
    // NOTE: 50 requests a second — several times what this machine serves — so the load never runs dry.
    const numPrompts = Math.ceil(durationMs / 20) + 4 * settings.maxConcurrency;
    const requests = await buildRequests(settings.dataset, numPrompts, 256, 0, hooks.log);
    const first = requests[0];
    if (first === undefined) throw new BenchSetupError('the dataset gave no requests');
    const warm = await streamCompletion(
      target,
      { promptIds: first.promptIds.slice(0, 4), outputLen: 2 },
      { runStartMs: performance.now(), queueMs: 0 },
      hooks.signal,
    );
    if (!warm.success && !warm.cancelled) throw new BenchSetupError(`the warm-up request failed: ${warm.error}`);

    const samples: CounterSample[] = [];
    const switches: { atMs: number; fromRevision: number; toRevision: number }[] = [];
    let numMissed = 0;
    let revision = await placementRevision(gateway.url);
    let lastPollMs = 0;
    const sampleCounters = async (atMs: number) => {
      try {
        const [{ counts, hosted }, rev] = await Promise.all([cluster.readCounters(), placementRevision(gateway.url)]);
        samples.push({ atMs, placementRevision: rev, counts, ...(hosted ? { hosted } : {}) });
      } catch {
        numMissed++;
      }
    };
    await sampleCounters(0);
    const startMs = performance.now();
    const sinceStart = () => performance.now() - startMs;
    const stopSampling = new AbortController();
    const sampling = Promise.all([
      every(settings.sampleIntervalMs, stopSampling.signal, () => sampleCounters(sinceStart())),
      every(REVISION_POLL_MS, stopSampling.signal, async () => {
        const asked = sinceStart();
        const now = await placementRevision(gateway.url).catch(() => revision);
        // The switch happened between the last poll that saw the old revision and this one: the midpoint.
        if (now !== revision) {
          switches.push({ atMs: (lastPollMs + asked) / 2, fromRevision: revision, toRevision: now });
          hooks.log(`${kind}: placement revision ${revision} → ${now} at ${(asked / 1000).toFixed(1)} s`);
          revision = now;
        }
        lastPollMs = asked;
      }),
    ]);
    hooks.log(`${kind}: concurrency ${settings.maxConcurrency} for ${durationMs / 1000} s`);
    const bar = hooks.progress(`${kind} placement, concurrency ${settings.maxConcurrency}`);
    const result = await runLoad(
      {
        requests,
        arrivalsMs: requests.map(() => 0),
        maxConcurrency: settings.maxConcurrency,
        durationMs,
        gracePeriodMs: 30_000,
      },
      target,
      { signal: hooks.signal, onProgress: bar.update },
    ).finally(bar.stop);
    stopSampling.abort();
    await sampling;
    await sampleCounters(sinceStart());
    return {
      kind,
      durationMs,
      wallMs: result.durationMs,
      outputs: result.outputs,
      numNotSent: result.numNotSent,
      samples,
      switches,
      numMissedSamples: numMissed,
      ...loadsStartOf(samples, switches[0]?.atMs),
    };
  } finally {
    await gateway.stop();
  }
}

/**
 * When a re-placement's loads began, from the samples' hosted counts: midway between the last sample
 * (before `switchAtMs`) in which no worker hosted more experts than in the first sample, and the next.
 */
export function loadsStartOf(
  samples: readonly CounterSample[],
  switchAtMs: number | undefined,
): { loadsStartedAtMs?: number } {
  const base = samples[0]?.hosted;
  if (base === undefined || switchAtMs === undefined) return {};
  for (let i = 1; i < samples.length; i++) {
    const s = samples[i];
    const prev = samples[i - 1];
    if (s === undefined || prev === undefined || s.atMs > switchAtMs + 1_000) break;
    if (s.hosted?.some((n, w) => n > (base[w] ?? 0))) return { loadsStartedAtMs: (prev.atMs + s.atMs) / 2 };
  }
  return {};
}

/** The static phase, then the rebalancing one (stopping early on abort). */
export async function runEplbScenario(
  cluster: EplbCluster,
  settings: EplbSettings,
  hooks: RunHooks,
): Promise<EplbOutcome> {
  const phases: EplbPhase[] = [];
  const notes: string[] = [];
  for (const kind of ['static', 'eplb'] as const) {
    if (hooks.signal.aborted) break;
    hooks.log(`starting the ${kind} gateway`);
    const phase = await runPhase(kind, cluster, settings, hooks);
    phases.push(phase);
    if (phase.numMissedSamples > 0) notes.push(`${kind}: ${phase.numMissedSamples} counter samples were not answered`);
    if (phase.numNotSent === 0)
      notes.push(`${kind}: the requests ran out before the duration; its windows end at the last one sent`);
    if (kind === 'eplb' && phase.switches.length === 0)
      notes.push('eplb: the gateway did not switch its placement during the load (no re-placement to measure)');
  }
  return { phases, notes, interrupted: hooks.signal.aborted };
}
