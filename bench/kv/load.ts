/**
 * Part (c) of `bench:kv`: the shared-prefix load against one setup, measured from the client (TTFT,
 * throughput) and from the engines' own prefix-cache counters (the cluster-wide hit rate).
 */
import {
  runAgainstServer,
  scrapeMetrics,
  serverMetricsOf,
  type DatasetSpec,
  type RunRecord,
} from '@switchyard/loadgen';
import type { ManagedProcess } from '@switchyard/launcher';

export type Gateway = ManagedProcess & { url: string };
const percentileOf = (pairs: readonly (readonly [number, number])[], p: number) =>
  pairs.find(([q]) => q === p)?.[1] ?? Number.NaN;

export interface SetupResult {
  readonly setup: string;
  readonly engines: number;
  readonly prefixHitRate: number;
  readonly hitTokens: number;
  readonly queriedTokens: number;
  readonly ttftMs: { readonly p50: number; readonly p99: number; readonly mean: number };
  readonly outputTokensPerSecond: number;
  readonly completed: number;
  readonly routing: Record<string, unknown> | undefined;
  /** Requests each engine served (its queue worker's count). */
  readonly servedPerEngine: readonly number[];
  /** Blocks the engines fetched from peers or the page store during the run, and their fetch outcomes. */
  readonly fetchedBlocks: number;
  readonly prefetches: Record<string, number>;
}

export interface LoadOptions {
  readonly dataset: DatasetSpec;
  readonly numPrompts: number;
  readonly concurrency: number;
  readonly log: (line: string) => void;
}

export async function measureLoad(
  setup: string,
  frontend: Gateway,
  engines: readonly Gateway[],
  opts: LoadOptions,
): Promise<SetupResult> {
  const { dataset, numPrompts, concurrency, log } = opts;
  const before = await Promise.all(engines.map((e) => scrapeMetrics(e.url)));
  const [record] = (await runAgainstServer(
    { baseUrl: frontend.url, series: setup, cluster: undefined, shape: undefined },
    dataset,
    [{ numPrompts, requestRate: Number.POSITIVE_INFINITY, burstiness: 1, maxConcurrency: concurrency }],
    {
      seed: 1,
      percentiles: [50, 99],
      goodput: {},
      vocabSize: 256,
      temperature: 0,
      durationMs: Number.POSITIVE_INFINITY,
      gracePeriodMs: 60_000,
      requestTimeoutMs: 300_000,
      model: undefined,
      warmUp: false,
    },
    {
      signal: new AbortController().signal,
      log,
      progress: (label) => ({
        update: (done, total) => process.stderr.write(`\r[bench:kv] ${label}: ${done}/${total}`),
        stop: () => process.stderr.write('\n'),
      }),
    },
  )) as RunRecord[];
  if (!record) throw new Error(`${setup}: the load ran no level`);
  const after = await Promise.all(engines.map((e) => scrapeMetrics(e.url)));
  let hitTokens = 0;
  let queriedTokens = 0;
  engines.forEach((_, i) => {
    const report = serverMetricsOf(
      before[i] ?? { ok: false, reason: 'none' },
      after[i] ?? { ok: false, reason: 'none' },
    );
    if (!report.available) throw new Error(`${setup}: engine ${i}'s /metrics could not be read: ${report.reason}`);
    // NOTE: an engine that served nothing in the run has no prefix-cache series yet: it adds 0 of 0.
    hitTokens += report.prefixCache?.hitTokens ?? 0;
    queriedTokens += report.prefixCache?.queriedTokens ?? 0;
  });
  const stats = (await (await fetch(`${frontend.url}/v1/switchyard/stats`)).json()) as Record<string, unknown>;
  const engineStats = await Promise.all(
    engines.map(async (e) => (await (await fetch(`${e.url}/v1/switchyard/stats`)).json()) as Record<string, unknown>),
  );
  const prefetches: Record<string, number> = {};
  let fetchedBlocks = 0;
  for (const e of engineStats) {
    fetchedBlocks += Number(e['kvFetchedBlocks'] ?? 0);
    for (const [k, v] of Object.entries((e['kvPrefetches'] ?? {}) as Record<string, number>))
      prefetches[k] = (prefetches[k] ?? 0) + v;
  }
  const pick = (k: string) => stats[k];
  const ttft = record.metrics.ttftMs;
  return {
    setup,
    engines: engines.length,
    prefixHitRate: queriedTokens > 0 ? hitTokens / queriedTokens : 0,
    hitTokens,
    queriedTokens,
    ttftMs: { p50: percentileOf(ttft.percentiles, 50), p99: percentileOf(ttft.percentiles, 99), mean: ttft.mean },
    outputTokensPerSecond: record.metrics.outputThroughput,
    fetchedBlocks,
    prefetches,
    servedPerEngine: engineStats.map((e) => Number(e['served'] ?? 0)),
    completed: record.metrics.completed,
    routing:
      engines.length > 1
        ? Object.fromEntries(
            [
              'routerMode',
              'routedToEngine',
              'routedShared',
              'rerouted',
              'routedOverlapBlocks',
              'routedPromptBlocks',
            ].map((k) => [k, pick(k)]),
          )
        : undefined,
  };
}
