/**
 * `npm run bench:kv`: KV pages between nodes, in four parts (docs/architecture.md §6).
 *
 *   transfer  page transfer MB/s between two processes over the KV bulk data plane and over KvPageService
 *             (gRPC), beside raw loopback TCP between two processes, in the same interleaved rounds (and
 *             with every page's CRC-32 checked)
 *   fetch     by prefix length: fetch-and-import time from a page store against recomputing the prefill,
 *             the measured break-even, and the break-even the engine's estimate uses
 *   load      the shared-prefix load (4 prefixes × 512 tokens, 64-token suffixes, 64 output tokens by
 *             default) on one gateway (the hit-rate reference) and on two engines behind a frontend with
 *             --router-mode random (fetching off, then on), kv, and kv plus a page store: cluster-wide
 *             prefix hit rate (the engines' own counters), TTFT p50/p99, throughput, routing and fetches
 *   memory    (not in the default set; 10 minutes by default) index and page store at their limits under
 *             a long load of distinct prefixes, RSS of every process at the start and the end
 *
 * One JSON document on stdout (and --out), a Markdown summary on stderr.
 *
 *   npm run bench:kv -- [--parts transfer,fetch,load] [--model small] [--modes random,kv] [--num-prompts 48]
 *                       [--concurrency 8] [--prefixes 4] [--prefix-len 512] [--suffix-len 64] [--output-len 64]
 *                       [--transfer-mib 256] [--rounds 3] [--memory-s 600] [--engine-kv-blocks N] [--out file.json]
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { getPreset, initModelDir, isPresetName, pathExists } from '@switchyard/model';
import { ROUTER_MODES, type RouterMode } from '@switchyard/cluster';
import type { DatasetSpec } from '@switchyard/loadgen';
import {
  startGateway,
  startKvStore,
  startNatsServer,
  type ManagedProcess,
  type NatsServer,
} from '@switchyard/launcher';
import { measureTransfer, type TransferResult } from './kv/transfer.ts';
import { measureFetchVsRecompute, type FetchVsRecomputeResult } from './kv/fetch-vs-recompute.ts';
import { measureLoad, type Gateway, type SetupResult } from './kv/load.ts';
import { measureMemory, type MemoryResult } from './kv/memory.ts';
import { benchArgs, benchFail, positiveIntArg } from './args.ts';

const PARTS = ['transfer', 'fetch', 'load', 'memory'] as const;
type Part = (typeof PARTS)[number];

const USAGE =
  'usage: npm run bench:kv -- [--parts transfer,fetch,load,memory] [--model small] [--modes random,kv]\n' +
  '                          [--num-prompts 48] [--concurrency 8] [--prefixes 4] [--prefix-len 512] [--suffix-len 64]\n' +
  '                          [--output-len 64] [--transfer-mib 256] [--rounds 3] [--memory-s 600]\n' +
  "                          [--engine-kv-blocks N (load: each engine's KV blocks; the single gateway gets 2N)]\n" +
  '                          [--models-dir bench/out/models] [--out file.json]\n';
const values = benchArgs('bench:kv', USAGE, () =>
  parseArgs({
    options: {
      parts: { type: 'string', default: 'transfer,fetch,load' },
      model: { type: 'string', default: 'small' },
      modes: { type: 'string', default: 'random,kv' },
      'num-prompts': { type: 'string', default: '48' },
      concurrency: { type: 'string', default: '8' },
      prefixes: { type: 'string', default: '4' },
      'prefix-len': { type: 'string', default: '512' },
      'suffix-len': { type: 'string', default: '64' },
      'output-len': { type: 'string', default: '64' },
      'transfer-mib': { type: 'string', default: '256' },
      rounds: { type: 'string', default: '3' },
      'memory-s': { type: 'string', default: '600' },
      'engine-kv-blocks': { type: 'string' },
      'models-dir': { type: 'string', default: 'bench/out/models' },
      out: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  }),
);
const log = (line: string) => process.stderr.write(`[bench:kv] ${line}\n`);
function fail(message: string): never {
  benchFail('bench:kv', message);
}
const positive = (name: string, raw: string | undefined): number => positiveIntArg('bench:kv', `--${name}`, raw ?? '');
const parts = new Set(
  (values.parts ?? '').split(',').map((p) => {
    const part = PARTS.find((known) => known === p.trim());
    if (part === undefined) fail(`--parts takes ${PARTS.join(', ')}, got "${p}"`);
    return part;
  }),
);
const has = (part: Part) => parts.has(part);
const preset = values.model ?? 'small';
if (!isPresetName(preset)) fail(`--model must be a preset name, got "${preset}"`);
const modes = (values.modes ?? '').split(',').map((m) => m.trim());
for (const m of modes)
  if (!ROUTER_MODES.includes(m as RouterMode)) fail(`--modes takes ${ROUTER_MODES.join(', ')}, got "${m}"`);
const numPrompts = positive('num-prompts', values['num-prompts']);
const concurrency = positive('concurrency', values.concurrency);
const rounds = positive('rounds', values.rounds);
// A KV cache smaller than the prefixes' working set: where routing by prefix pays (the single gateway,
// the hit-rate reference, gets the cluster's total).
const engineKvBlocks =
  values['engine-kv-blocks'] === undefined ? undefined : positive('engine-kv-blocks', values['engine-kv-blocks']);
const kvBlocksArgs = (factor: number) =>
  engineKvBlocks === undefined ? [] : ['--kv-blocks', String(factor * engineKvBlocks)];
const dataset: DatasetSpec = {
  kind: 'shared-prefix',
  numPrefixes: positive('prefixes', values.prefixes),
  prefixLen: positive('prefix-len', values['prefix-len']),
  suffixLen: positive('suffix-len', values['suffix-len']),
  outputLen: positive('output-len', values['output-len']),
};

const modelDir = join(values['models-dir'] ?? 'bench/out/models', preset);
if (!(await pathExists(join(modelDir, 'config.json')))) {
  log(`writing ${preset} to ${modelDir}`);
  await mkdir(modelDir, { recursive: true });
  await initModelDir(modelDir, preset, 7);
}
const config = getPreset(preset);
const pageFloats = config.numLayers * 2 * 16 * config.numKvHeads * config.headDim;

let transfer: TransferResult | undefined;
let fetchVsRecompute: FetchVsRecomputeResult | undefined;
let memory: MemoryResult | undefined;
const results: SetupResult[] = [];
const started: ManagedProcess[] = [];
let nats: NatsServer | undefined;
try {
  nats = await startNatsServer();
  if (has('transfer')) {
    log(`transfer: ${values['transfer-mib']} MiB of ${preset} pages, ${rounds} rounds`);
    transfer = await measureTransfer(
      nats.url,
      { sizeMiB: positive('transfer-mib', values['transfer-mib']), rounds, pageFloats },
      log,
    );
  }
  if (has('fetch')) {
    const lengths = [16, 32, 64, 128, 256, 512, 1024, 2048].filter((n) => n < config.maxContext);
    log(`fetch vs recompute: prefixes of ${lengths.join(', ')} tokens, ${rounds} rounds`);
    fetchVsRecompute = await measureFetchVsRecompute(modelDir, nats.url, { lengths, rounds }, log);
  }
  if (has('load')) {
    const opts = { dataset, numPrompts, concurrency, log };
    log(`load: single gateway (the reference), ${numPrompts} requests, concurrency ${concurrency}`);
    const single = (await startGateway(modelDir, ['--name', 'single', ...kvBlocksArgs(2)])) as Gateway;
    started.push(single);
    results.push(await measureLoad('single gateway', single, [single], opts));
    await single.stop(10_000);
    const setups = [
      ...modes.map((mode) => ({ mode, fetch: mode === 'random' ? 'never' : 'auto', store: false })),
      ...(modes.includes('random') ? [{ mode: 'random', fetch: 'auto', store: false }] : []),
      ...(modes.includes('kv') ? [{ mode: 'kv', fetch: 'auto', store: true }] : []),
    ];
    for (const { mode, fetch, store } of setups) {
      const label = `2 engines, ${mode}${fetch === 'never' ? ' (no fetch)' : ' + fetch'}${store ? ' + page store' : ''}`;
      log(`load: ${label}`);
      // A fresh broker per setup: no setup sees another's KV events.
      await nats.stop();
      nats = await startNatsServer();
      const common = ['--nats-url', nats.url, '--kv-fetch', fetch];
      const kvStore = store ? await startKvStore(nats.url, ['--name', 'bench-load-store']) : undefined;
      if (kvStore) started.push(kvStore);
      const engines = (await Promise.all([
        startGateway(modelDir, [...common, '--name', `${mode}-engine-a`, ...kvBlocksArgs(1)]),
        startGateway(modelDir, [...common, '--name', `${mode}-engine-b`, ...kvBlocksArgs(1)]),
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
      results.push(await measureLoad(label, frontend, engines, opts));
      await Promise.all([frontend, ...engines, ...(kvStore ? [kvStore] : [])].map((p) => p.stop(10_000)));
    }
  }
  if (has('memory')) {
    memory = await measureMemory(
      modelDir,
      nats.url,
      { durationS: positive('memory-s', values['memory-s']), indexMaxEntries: 2_000, storeCapacityMiB: 64 },
      log,
    );
  }
} finally {
  await Promise.all(started.map((p) => p.kill('SIGKILL')));
  await nats?.stop();
}

const lines: string[] = [];
if (transfer) {
  lines.push(
    '| transfer | MB/s |',
    '|---|--:|',
    `| raw loopback TCP (2 processes) | ${transfer.rawTcpMBps.toFixed(0)} |`,
    `| raw loopback TCP read in place, as the bulk client reads | ${transfer.rawTcpInPlaceMBps.toFixed(0)} (bulk: ${transfer.fetchOverRawTcpInPlace.toFixed(2)}×) |`,
    `| KV bulk data plane fetch (2 processes) | ${transfer.fetchMBps.toFixed(0)} (${transfer.fetchOverRawTcp.toFixed(2)}× raw TCP) |`,
    `| KvPageService (gRPC) fetch (2 processes) | ${transfer.grpcFetchMBps.toFixed(0)} (${transfer.grpcFetchOverRawTcp.toFixed(2)}× raw TCP) |`,
    `| bulk fetch + CRC-32 check of every page | ${transfer.fetchAndVerifyMBps.toFixed(0)} |`,
    `| push to the page store | ${transfer.pushMBps.toFixed(0)} |`,
    '',
  );
}
if (fetchVsRecompute) {
  const f = fetchVsRecompute;
  lines.push(
    '| prefix tokens | recompute ms | fetch ms | fetch MB |',
    '|--:|--:|--:|--:|',
    ...f.rows.map(
      (r) =>
        `| ${r.tokens} | ${r.recomputeMs.toFixed(1)} | ${r.fetchMs.toFixed(1)} | ${(r.fetchBytes / 1e6).toFixed(1)} |`,
    ),
    '',
    `break-even: measured ${f.measuredBreakEvenTokens ?? 'never'} tokens; the engine's estimate ` +
      `${f.engineBreakEvenTokens ?? 'never'} tokens (bandwidth ${f.engineBandwidthMBps.toFixed(0)} MB/s, ` +
      `overhead ${f.engineOverheadMs.toFixed(1)} ms per call, prefill ${f.enginePrefillTokensPerS.toFixed(0)} tokens/s)`,
    '',
  );
}
if (results.length > 0) {
  lines.push(
    '| setup | prefix hit rate | TTFT p50 ms | TTFT p99 ms | output tok/s | routed / shared / rerouted | served per engine | blocks fetched |',
    '|---|--:|--:|--:|--:|--:|--:|--:|',
    ...results.map((r) => {
      const routing = r.routing
        ? `${r.routing['routedToEngine']} / ${r.routing['routedShared']} / ${r.routing['rerouted']}`
        : '–';
      return `| ${r.setup} | ${(100 * r.prefixHitRate).toFixed(1)}% | ${r.ttftMs.p50.toFixed(0)} | ${r.ttftMs.p99.toFixed(0)} | ${r.outputTokensPerSecond.toFixed(1)} | ${routing} | ${r.engines > 1 ? r.servedPerEngine.join(' / ') : '–'} | ${r.fetchedBlocks} |`;
    }),
    '',
  );
}
if (memory) {
  lines.push(
    `memory (${memory.durationS} s, ${memory.completed} requests): index ${memory.indexEntriesEnd} entries (limit ${memory.indexMaxEntries}); ` +
      `page store ${(memory.storeBytesEnd / 2 ** 20).toFixed(1)} MiB (limit ${(memory.storeCapacityBytes / 2 ** 20).toFixed(0)} MiB, ${memory.storePagesEvicted} pages evicted, ${memory.offloadedPages} offloaded)`,
    '| process | RSS start MiB | RSS end MiB |',
    '|---|--:|--:|',
    ...Object.entries(memory.rssMiB).map(([k, v]) => `| ${k} | ${v.start.toFixed(0)} | ${v.end.toFixed(0)} |`),
    '',
    `RSS MiB by minute: ${memory.rssSeriesMiB
      .map(
        (s) =>
          `${s.atS}s ${Object.values(s.rssMiB)
            .map((v) => v.toFixed(0))
            .join('/')}`,
      )
      .join(', ')} (${Object.keys(memory.rssMiB).join('/')})`,
    '',
  );
}
process.stderr.write(`${lines.join('\n')}\n`);
const document = {
  bench: 'kv',
  date: new Date().toISOString(),
  model: preset,
  parts: [...parts],
  transfer,
  fetchVsRecompute,
  load: results.length > 0 ? { dataset, numPrompts, concurrency, engineKvBlocks, results } : undefined,
  memory,
};
const json = `${JSON.stringify(document, null, 2)}\n`;
if (values.out) await writeFile(values.out, json);
process.stdout.write(json);
