/**
 * Runs load levels, one after another, against one OpenAI-compatible server: a warm-up request first
 * (as vLLM's initial test run: it fails fast on a bad setup and keeps first-call costs out of the
 * figures), then per level a scrape of `/metrics`, the load, another scrape, and the metrics.
 */

import { arrivalTimesMs } from './arrivals.ts';
import { computeClientMetrics } from './client-metrics.ts';
import { buildRequests, type DatasetSpec } from './datasets/dataset.ts';
import type { GoodputSlos } from './goodput.ts';
import { runLoad } from './load-runner.ts';
import { streamCompletion, type CompletionTarget } from './openai-stream.ts';
import type { BenchRequest } from './request-output.ts';
import type { RunRecord } from './run-record.ts';
import type { ClusterSpec, LoadSpec } from './scenario.ts';
import { BenchSetupError, fetchServerModel, type ServerModel } from './server-info.ts';
import { sampleDuringRun, scrapeMetrics, serverMetricsOf } from './server-metrics.ts';
import { SeededRandom } from './seeded-random.ts';

/** Settings shared by every level of a bench run. */
export interface CommonSettings {
  readonly seed: number;
  readonly percentiles: readonly number[];
  readonly goodput: GoodputSlos;
  /** Prompt token ids are drawn from [0, vocabSize). */
  readonly vocabSize: number;
  readonly temperature: number;
  /** Infinity: no time bound. */
  readonly durationMs: number;
  readonly gracePeriodMs: number;
  readonly requestTimeoutMs: number;
  /** The model to ask for; the server's first model when undefined. */
  readonly model: string | undefined;
  /** Send one short request before the first level (fails fast on a bad setup, warms the server). */
  readonly warmUp: boolean;
}

export interface ServerUnderTest {
  readonly baseUrl: string;
  readonly series: string;
  readonly cluster: ClusterSpec | undefined;
  /** Layers × experts of the served model, when known (widens the heatmap to experts never hit). */
  readonly shape: { readonly numLayers: number; readonly numExperts: number } | undefined;
}

export interface RunHooks {
  readonly signal: AbortSignal;
  readonly log: (line: string) => void;
  /** A progress display for one level. */
  readonly progress: (label: string) => { update: (done: number, total: number) => void; stop: () => void };
}

function checkFits(requests: readonly BenchRequest[], model: ServerModel): void {
  if (model.maxModelLen === undefined) return;
  const max = model.maxModelLen;
  const i = requests.findIndex((r) => r.promptIds.length + r.outputLen > max);
  const r = requests[i];
  if (r === undefined) return;
  throw new BenchSetupError(
    `request ${i} needs ${r.promptIds.length} prompt + ${r.outputLen} output tokens, more than ${model.id}'s context of ${max}; ` +
      'use shorter lengths (or --trace-length-scale for a trace)',
  );
}

/**
 * NOTE: unlike vLLM's test run (the whole first prompt), the warm-up sends 4 of its tokens for 2: too
 * short to fill a KV block, so it leaves nothing in the prefix cache for the measured requests to hit.
 */
async function warmUp(target: CompletionTarget, request: BenchRequest, signal: AbortSignal): Promise<void> {
  const warm = { promptIds: request.promptIds.slice(0, 4), outputLen: 2 };
  const output = await streamCompletion(target, warm, { runStartMs: performance.now(), queueMs: 0 }, signal);
  if (!output.success && !output.cancelled) throw new BenchSetupError(`the warm-up request failed: ${output.error}`);
}

const levelLabel = (series: string, load: LoadSpec) =>
  `${series}, concurrency ${Number.isFinite(load.maxConcurrency) ? load.maxConcurrency : '∞'}${Number.isFinite(load.requestRate) ? `, ${load.requestRate} req/s` : ''}`;

/** Runs every level (stopping early on abort) and returns a record per level that ran. */
export async function runAgainstServer(
  server: ServerUnderTest,
  dataset: DatasetSpec,
  loads: readonly LoadSpec[],
  common: CommonSettings,
  hooks: RunHooks,
): Promise<RunRecord[]> {
  const model = await fetchServerModel(server.baseUrl, common.model);
  const target: CompletionTarget = {
    baseUrl: server.baseUrl,
    model: model.id,
    temperature: common.temperature,
    requestTimeoutMs: common.requestTimeoutMs,
  };
  const records: RunRecord[] = [];
  for (const [index, load] of loads.entries()) {
    if (hooks.signal.aborted) break;
    // A seed per level: the same prompts at every level would hit the prefix cache from the level before.
    const seed = common.seed + index;
    const requests = await buildRequests(dataset, load.numPrompts, common.vocabSize, seed, hooks.log);
    checkFits(requests, model);
    const first = requests[0];
    if (first === undefined) throw new BenchSetupError('the dataset gave no requests');
    if (index === 0 && common.warmUp) await warmUp(target, first, hooks.signal);
    if (hooks.signal.aborted) break;
    const arrivalsMs = requests.every((r) => r.arrivalMs !== undefined)
      ? requests.map((r) => r.arrivalMs ?? 0)
      : arrivalTimesMs(requests.length, load, new SeededRandom(seed, 'arrivals'));
    const label = levelLabel(server.series, load);
    hooks.log(`running ${label}: ${requests.length} requests`);
    const before = await scrapeMetrics(server.baseUrl);
    const sampler = before.ok ? sampleDuringRun(server.baseUrl) : undefined;
    const startedAt = new Date().toISOString();
    const bar = hooks.progress(label);
    const result = await runLoad(
      {
        requests,
        arrivalsMs,
        maxConcurrency: load.maxConcurrency,
        durationMs: common.durationMs,
        gracePeriodMs: common.gracePeriodMs,
      },
      target,
      { signal: hooks.signal, onProgress: bar.update },
    ).finally(bar.stop);
    const during = (await sampler?.stop()) ?? [];
    const after = await scrapeMetrics(server.baseUrl);
    records.push({
      settings: {
        label,
        series: server.series,
        baseUrl: server.baseUrl,
        modelId: model.id,
        dataset,
        numPrompts: requests.length,
        requestRate: load.requestRate,
        burstiness: load.burstiness,
        maxConcurrency: load.maxConcurrency,
        seed,
        percentiles: common.percentiles,
        goodput: common.goodput,
        cluster: server.cluster,
      },
      startedAt,
      metrics: computeClientMetrics(result.outputs, result.durationMs, common.percentiles, common.goodput),
      load: result,
      server: serverMetricsOf(before, after, server.shape, during),
    });
  }
  return records;
}
