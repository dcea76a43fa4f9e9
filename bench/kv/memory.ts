/**
 * Part (d) of `bench:kv`: memory stays bounded. Two engines with small KV pools (so they evict and
 * offload all the time), a page store with a small capacity and a frontend with a small index limit,
 * under a long load of mostly distinct prefixes. Reports each process's RSS at the start and the end,
 * and the index's and the store's size against their limits.
 */
import { readFile } from 'node:fs/promises';
import { runAgainstServer, type DatasetSpec, type RunRecord } from '@switchyard/loadgen';
import { startGateway, startKvStore, type ManagedProcess } from '@switchyard/launcher';

export interface MemoryResult {
  readonly durationS: number;
  readonly completed: number;
  readonly indexMaxEntries: number;
  readonly indexEntriesEnd: number;
  readonly storeCapacityBytes: number;
  readonly storeBytesEnd: number;
  readonly storePagesEvicted: number;
  readonly offloadedPages: number;
  readonly offloadDroppedPages: number;
  readonly offloadQueuedBytesEnd: number;
  readonly rssMiB: Record<string, { readonly start: number; readonly end: number }>;
  /** RSS of every process sampled every minute during the load (to tell a plateau from a leak). */
  readonly rssSeriesMiB: readonly MemorySample[];
}

export interface MemorySample {
  readonly atS: number;
  readonly rssMiB: Record<string, number>;
  /** Per gateway process: rss, heapUsed, external, arrayBuffers (MiB), from its stats. */
  readonly gatewayMiB: Record<string, Record<string, number>>;
}

async function rssMiB(pid: number | undefined): Promise<number> {
  if (pid === undefined) return Number.NaN;
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmRSS:\s+(\d+)\s+kB/.exec(status)?.[1]);
  return kb / 1024;
}

type Gateway = ManagedProcess & { url: string };

export async function measureMemory(
  modelDir: string,
  natsUrl: string,
  options: { durationS: number; indexMaxEntries: number; storeCapacityMiB: number },
  log: (line: string) => void,
): Promise<MemoryResult> {
  const store = await startKvStore(natsUrl, [
    '--name',
    'bench-memory-store',
    '--capacity-bytes',
    `${options.storeCapacityMiB}MiB`,
    '--stats-interval-ms',
    '2000',
  ]);
  const common = ['--nats-url', natsUrl];
  const engines = (await Promise.all([
    startGateway(modelDir, [...common, '--name', 'mem-engine-a', '--kv-blocks', '256']),
    startGateway(modelDir, [...common, '--name', 'mem-engine-b', '--kv-blocks', '256']),
  ])) as Gateway[];
  const frontend = (await startGateway(modelDir, [
    ...common,
    '--name',
    'mem-frontend',
    '--no-engine',
    '--kv-index-max-entries',
    String(options.indexMaxEntries),
  ])) as Gateway;
  const processes: Record<string, ManagedProcess> = {
    'page store': store,
    'engine a': engines[0] as Gateway,
    'engine b': engines[1] as Gateway,
    frontend,
  };
  const rss = async () =>
    Object.fromEntries(
      await Promise.all(Object.entries(processes).map(async ([k, p]) => [k, await rssMiB(p.child.pid)] as const)),
    );
  // The gateways' own view: JS heap and external memory beside RSS (a flat heap under a growing RSS is native).
  const heaps = async () =>
    Object.fromEntries(
      await Promise.all(
        (['engine a', 'engine b', 'frontend'] as const).map(async (k) => {
          const g = processes[k] as Gateway;
          const stats = (await (await fetch(`${g.url}/v1/switchyard/stats`)).json()) as {
            memoryMiB?: Record<string, number>;
          };
          return [k, stats.memoryMiB ?? {}] as const;
        }),
      ),
    );
  try {
    const start = await rss();
    const startedAt = performance.now();
    const series: MemorySample[] = [{ atS: 0, rssMiB: start, gatewayMiB: await heaps() }];
    const sample = async (): Promise<MemorySample> => {
      const [rssNow, gatewayMiB] = await Promise.all([rss(), heaps()]);
      return { atS: Math.round((performance.now() - startedAt) / 1000), rssMiB: rssNow, gatewayMiB };
    };
    const sampler = setInterval(() => {
      void sample().then(
        (s) => {
          series.push(s);
          log(`memory at ${s.atS} s: ${JSON.stringify(s.gatewayMiB)}`);
        },
        () => undefined,
      );
    }, 60_000);
    const dataset: DatasetSpec = {
      kind: 'shared-prefix',
      numPrefixes: 5000,
      prefixLen: 256,
      suffixLen: 32,
      outputLen: 16,
    };
    log(`memory: ${options.durationS} s of mostly distinct 256-token prefixes`);
    const [record] = (await runAgainstServer(
      { baseUrl: frontend.url, series: 'memory', cluster: undefined, shape: undefined },
      dataset,
      [{ numPrompts: 50_000, requestRate: Number.POSITIVE_INFINITY, burstiness: 1, maxConcurrency: 4 }],
      {
        seed: 3,
        percentiles: [50],
        goodput: {},
        vocabSize: 256,
        temperature: 0,
        durationMs: options.durationS * 1000,
        gracePeriodMs: 30_000,
        requestTimeoutMs: 120_000,
        model: undefined,
        warmUp: false,
      },
      {
        signal: new AbortController().signal,
        log,
        progress: (label) => ({
          update: (done) => process.stderr.write(`\r[bench:kv] ${label}: ${done} requests`),
          stop: () => process.stderr.write('\n'),
        }),
      },
    )) as RunRecord[];
    clearInterval(sampler);
    const end = await rss();
    series.push({ atS: Math.round((performance.now() - startedAt) / 1000), rssMiB: end, gatewayMiB: await heaps() });
    const frontendStats = (await (await fetch(`${frontend.url}/v1/switchyard/stats`)).json()) as Record<string, number>;
    const engineStats = await Promise.all(
      engines.map(async (e) => (await (await fetch(`${e.url}/v1/switchyard/stats`)).json()) as Record<string, number>),
    );
    const storeLine = store
      .output()
      .split('\n')
      .filter((l) => l.includes('"capacityBytes"'))
      .at(-1);
    const storeStats = JSON.parse(storeLine?.slice(storeLine.indexOf('{')) ?? '{}') as Record<string, number>;
    return {
      durationS: options.durationS,
      completed: record?.metrics.completed ?? 0,
      indexMaxEntries: options.indexMaxEntries,
      indexEntriesEnd: frontendStats['kvIndexEntries'] ?? Number.NaN,
      storeCapacityBytes: storeStats['capacityBytes'] ?? Number.NaN,
      storeBytesEnd: storeStats['bytes'] ?? Number.NaN,
      storePagesEvicted: storeStats['evicted'] ?? Number.NaN,
      offloadedPages: engineStats.reduce((n, s) => n + (s['kvOffloadedPages'] ?? 0), 0),
      offloadDroppedPages: engineStats.reduce((n, s) => n + (s['kvOffloadDropped'] ?? 0), 0),
      offloadQueuedBytesEnd: engineStats.reduce((n, s) => n + (s['kvOffloadQueuedBytes'] ?? 0), 0),
      rssMiB: Object.fromEntries(
        Object.keys(processes).map((k) => [k, { start: start[k] ?? Number.NaN, end: end[k] ?? Number.NaN }]),
      ),
      rssSeriesMiB: series,
    };
  } finally {
    await Promise.all([frontend, ...engines].map((p) => p.stop(10_000)));
    await store.stop(5_000);
  }
}
