/**
 * `npm run bench:kv`: the shared-prefix load (4 prefixes × 512 tokens, 64-token suffixes, 64 output
 * tokens by default) against a NATS cluster of two engine gateways behind a frontend, once per router
 * mode, and once against a single gateway serving the same load (the hit-rate reference). Reports the
 * cluster-wide prefix-cache hit rate (from the engines' own counters on /metrics), TTFT p50/p99 and
 * throughput (client side, vLLM definitions), and the frontend's routing counts. One JSON document on
 * stdout, a Markdown table on stderr; each setup starts from cold caches.
 *
 *   npm run bench:kv -- [--model small] [--modes random,kv] [--num-prompts 48] [--concurrency 8]
 *                       [--prefixes 4] [--prefix-len 512] [--suffix-len 64] [--output-len 64] [--out file.json]
 *
 * NOTE: page transfer between engines and the page store (issue 10 items 3–4) are not built yet, so the
 * bench has no transfer-rate or fetch-vs-recompute part.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { initModelDir, isPresetName, pathExists } from '@switchyard/model';
import { ROUTER_MODES, type RouterMode } from '@switchyard/cluster';
import {
  runAgainstServer,
  scrapeMetrics,
  serverMetricsOf,
  type DatasetSpec,
  type RunRecord,
} from '@switchyard/loadgen';
import { startGateway, startNatsServer, type ManagedProcess, type NatsServer } from '@switchyard/launcher';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: 'small' },
    modes: { type: 'string', default: 'random,kv' },
    'num-prompts': { type: 'string', default: '48' },
    concurrency: { type: 'string', default: '8' },
    prefixes: { type: 'string', default: '4' },
    'prefix-len': { type: 'string', default: '512' },
    'suffix-len': { type: 'string', default: '64' },
    'output-len': { type: 'string', default: '64' },
    'models-dir': { type: 'string', default: 'bench/out/models' },
    out: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  },
});
if (values.help) {
  process.stdout.write(
    'usage: npm run bench:kv -- [--model small] [--modes random,kv] [--num-prompts 48] [--concurrency 8] [--prefixes 4]\n' +
      '                          [--prefix-len 512] [--suffix-len 64] [--output-len 64] [--models-dir bench/out/models] [--out file.json]\n',
  );
  process.exit(0);
}
const log = (line: string) => process.stderr.write(`[bench:kv] ${line}\n`);
function fail(message: string): never {
  process.stderr.write(`bench:kv: ${message}\n`);
  process.exit(2);
}
function positive(name: string, raw: string | undefined): number {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) fail(`--${name} must be a positive integer, got "${raw}"`);
  return n;
}
const preset = values.model ?? 'small';
if (!isPresetName(preset)) fail(`--model must be a preset name, got "${preset}"`);
const modes = (values.modes ?? '').split(',').map((m) => m.trim());
for (const m of modes)
  if (!ROUTER_MODES.includes(m as RouterMode)) fail(`--modes takes ${ROUTER_MODES.join(', ')}, got "${m}"`);
const numPrompts = positive('num-prompts', values['num-prompts']);
const concurrency = positive('concurrency', values.concurrency);
const dataset: DatasetSpec = {
  kind: 'shared-prefix',
  numPrefixes: positive('prefixes', values.prefixes),
  prefixLen: positive('prefix-len', values['prefix-len']),
  suffixLen: positive('suffix-len', values['suffix-len']),
  outputLen: positive('output-len', values['output-len']),
};

type Gateway = ManagedProcess & { url: string };
const percentileOf = (pairs: readonly (readonly [number, number])[], p: number) =>
  pairs.find(([q]) => q === p)?.[1] ?? Number.NaN;

interface SetupResult {
  readonly setup: string;
  readonly engines: number;
  readonly prefixHitRate: number;
  readonly hitTokens: number;
  readonly queriedTokens: number;
  readonly ttftMs: { readonly p50: number; readonly p99: number; readonly mean: number };
  readonly outputTokensPerSecond: number;
  readonly completed: number;
  readonly routing: Record<string, unknown> | undefined;
}

const modelDir = join(values['models-dir'] ?? 'bench/out/models', preset);
if (!(await pathExists(join(modelDir, 'config.json')))) {
  log(`writing ${preset} to ${modelDir}`);
  await mkdir(modelDir, { recursive: true });
  await initModelDir(modelDir, preset, 7);
}

async function measure(setup: string, frontend: Gateway, engines: readonly Gateway[]): Promise<SetupResult> {
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
    if (!report.available || !report.prefixCache) throw new Error(`${setup}: engine ${i} has no prefix-cache counters`);
    hitTokens += report.prefixCache.hitTokens;
    queriedTokens += report.prefixCache.queriedTokens;
  });
  const stats = (await (await fetch(`${frontend.url}/v1/switchyard/stats`)).json()) as Record<string, unknown>;
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

const results: SetupResult[] = [];
const started: ManagedProcess[] = [];
let nats: NatsServer | undefined;
try {
  log(`single gateway (the reference): ${numPrompts} requests, concurrency ${concurrency}`);
  const single = (await startGateway(modelDir, ['--name', 'single'])) as Gateway;
  started.push(single);
  results.push(await measure('single gateway', single, [single]));
  await single.stop(10_000);
  nats = await startNatsServer();
  for (const mode of modes) {
    log(`two engines behind a frontend, --router-mode ${mode}`);
    const common = ['--nats-url', nats.url];
    const engines = (await Promise.all([
      startGateway(modelDir, [...common, '--name', `${mode}-engine-a`]),
      startGateway(modelDir, [...common, '--name', `${mode}-engine-b`]),
    ])) as Gateway[];
    const frontend = (await startGateway(modelDir, [
      ...common,
      '--name',
      `${mode}-frontend`,
      '--no-engine',
      '--router-mode',
      mode,
    ])) as Gateway;
    started.push(...engines, frontend);
    results.push(await measure(`2 engines, ${mode}`, frontend, engines));
    await Promise.all([frontend, ...engines].map((p) => p.stop(10_000)));
  }
} finally {
  await Promise.all(started.map((p) => p.kill('SIGKILL')));
  await nats?.stop();
}

const table = [
  '| setup | prefix hit rate | TTFT p50 ms | TTFT p99 ms | output tok/s | routed / shared / rerouted |',
  '|---|--:|--:|--:|--:|--:|',
  ...results.map((r) => {
    const routing = r.routing
      ? `${r.routing['routedToEngine']} / ${r.routing['routedShared']} / ${r.routing['rerouted']}`
      : '–';
    return `| ${r.setup} | ${(100 * r.prefixHitRate).toFixed(1)}% | ${r.ttftMs.p50.toFixed(0)} | ${r.ttftMs.p99.toFixed(0)} | ${r.outputTokensPerSecond.toFixed(1)} | ${routing} |`;
  }),
].join('\n');
process.stderr.write(`${table}\n`);
const document = {
  bench: 'kv',
  date: new Date().toISOString(),
  model: preset,
  dataset,
  numPrompts,
  concurrency,
  results,
};
const json = `${JSON.stringify(document, null, 2)}\n`;
if (values.out) await writeFile(values.out, json);
process.stdout.write(json);
