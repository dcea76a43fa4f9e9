/**
 * The work queue's added latency per request against the in-process path, measured in one run on the
 * same tiny engine: time to first token and to the last event, sequential requests (and a concurrent
 * burst), in process (EngineLoop.submit) versus NatsBackend → SWITCHYARD_REQUESTS → QueueWorker →
 * EngineLoop → token subject → NatsBackend. Prints JSON.
 *
 *   npm run bench:queue -- [--requests 300] [--max-tokens 8] [--concurrency 16]
 *
 * Uses NATS_URL when set; otherwise starts its own nats-server (-js, temporary store, free port) so it
 * never touches a shared broker's streams.
 *
 * NOTE: imports the gateway's NatsBackend and QueueWorker (a bench is a leaf; it measures the path the
 * gateway really runs).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { getPreset, randomWeights } from '@switchyard/model';
import { EngineLoop, resolveSamplingParams, type GenerateRequest, type TokenEvent } from '@switchyard/engine';
import { createEngine } from '@switchyard/onnx';
import { ClusterConnection, RequestQueue, TokenSubscriber, NatsBackend, QueueWorker } from '@switchyard/cluster';
import { benchArgs, positiveIntArg } from './args.ts';

const USAGE = 'usage: npm run bench:queue -- [--requests 300] [--max-tokens 8] [--concurrency 16]\n';
const values = benchArgs('bench:queue', USAGE, () =>
  parseArgs({
    options: {
      requests: { type: 'string', default: '300' },
      'max-tokens': { type: 'string', default: '8' },
      concurrency: { type: 'string', default: '16' },
      help: { type: 'boolean', short: 'h' },
    },
  }),
);
const numRequests = positiveIntArg('bench:queue', '--requests', values.requests);
const maxTokens = positiveIntArg('bench:queue', '--max-tokens', values['max-tokens']);
const concurrency = positiveIntArg('bench:queue', '--concurrency', values.concurrency);

interface Timing {
  readonly firstMs: number;
  readonly lastMs: number;
}
type Submit = (request: GenerateRequest, sink: (event: TokenEvent) => void) => void;

function timeOne(submit: Submit, request: GenerateRequest): Promise<Timing> {
  return new Promise((resolve) => {
    const start = performance.now();
    let firstMs = -1;
    submit(request, (event) => {
      if (firstMs < 0) firstMs = performance.now() - start;
      if (event.finishReason) resolve({ firstMs, lastMs: performance.now() - start });
    });
  });
}

function quantile(sorted: readonly number[], q: number): number {
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return Number((sorted[i] ?? Number.NaN).toFixed(3));
}

function summary(xs: readonly number[]): { p50: number; p99: number; mean: number } {
  const sorted = [...xs].sort((a, b) => a - b);
  return {
    p50: quantile(sorted, 0.5),
    p99: quantile(sorted, 0.99),
    mean: Number((xs.reduce((a, b) => a + b, 0) / xs.length).toFixed(3)),
  };
}

async function startOwnServer(): Promise<{ url: string; stop: () => void }> {
  const port = await new Promise<number>((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
    });
  });
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-bench-nats-'));
  const child = spawn(
    process.env['NATS_SERVER_BIN'] ?? '/usr/sbin/nats-server',
    ['-js', '-sd', dir, '-p', String(port), '-a', '127.0.0.1'],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  await new Promise<void>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`nats-server not ready:\n${out}`)), 10_000);
    child.stderr.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('Server is ready')) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  return {
    url: `nats://127.0.0.1:${port}`,
    stop: () => {
      child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const own = process.env['NATS_URL'] ? undefined : await startOwnServer();
const url = process.env['NATS_URL'] ?? own?.url ?? '';
const config = getPreset('tiny');
const bundle = await createEngine(
  { config, weights: randomWeights(config, 1), weightsDigest: 'ab'.repeat(32) },
  {
    expertDtype: 'fp32',
    denseDtype: 'fp32',
    blockSize: 16,
    microBatches: 1,
    scheduler: { maxBatchedTokens: 2048, maxRunningSequences: 64 },
  },
);
const loop = new EngineLoop(bundle.engine);
const engineConn = await ClusterConnection.open({ url, name: 'bench-engine' });
const frontendConn = await ClusterConnection.open({ url, name: 'bench-frontend' });
const worker = await QueueWorker.start(
  { conn: engineConn, queue: await RequestQueue.open(engineConn), loop },
  { model: config.name, maxRunning: 64 },
);
const tokens = new TokenSubscriber(frontendConn);
const backend = new NatsBackend({
  conn: frontendConn,
  queue: await RequestQueue.open(frontendConn),
  tokens,
  model: {
    modelId: config.name,
    maxContext: config.maxContext,
    vocabSize: config.vocabSize,
    tokenizer: bundle.tokenizer,
  },
  maxInFlight: 1_024,
});

const params = resolveSamplingParams({ maxTokens, temperature: 0, stopAtEos: false });
const prompt = bundle.tokenizer.encode('Switchyard measures its queue');
let serial = 0;
// A distinct first token per request keeps the prefix cache from favouring either path.
const nextRequest = (): GenerateRequest => ({ id: `bench-${serial++}`, promptIds: [serial % 256, ...prompt], params });
const inProcess: Submit = (r, sink) => loop.submit(r, sink);
const viaNats: Submit = (r, sink) => backend.submit(r, sink);

for (let i = 0; i < 30; i++) {
  await timeOne(inProcess, nextRequest());
  await timeOne(viaNats, nextRequest());
}

// Sequential, interleaved so drift (GC, JIT, the other core's load) hits both paths alike.
const seq = { local: [] as Timing[], nats: [] as Timing[] };
for (let i = 0; i < numRequests; i++) {
  seq.local.push(await timeOne(inProcess, nextRequest()));
  seq.nats.push(await timeOne(viaNats, nextRequest()));
}

// Concurrent bursts of `concurrency` requests, alternating paths.
const burst = { local: [] as Timing[], nats: [] as Timing[] };
for (let round = 0; round < Math.max(1, Math.floor(numRequests / concurrency)); round++) {
  burst.local.push(
    ...(await Promise.all(Array.from({ length: concurrency }, () => timeOne(inProcess, nextRequest())))),
  );
  burst.nats.push(...(await Promise.all(Array.from({ length: concurrency }, () => timeOne(viaNats, nextRequest())))));
}

const report = (local: readonly Timing[], nats: readonly Timing[]) => {
  const l = { firstTokenMs: summary(local.map((t) => t.firstMs)), lastEventMs: summary(local.map((t) => t.lastMs)) };
  const n = { firstTokenMs: summary(nats.map((t) => t.firstMs)), lastEventMs: summary(nats.map((t) => t.lastMs)) };
  const diff = (a: number, b: number) => Number((a - b).toFixed(3));
  return {
    inProcess: l,
    nats: n,
    addedMs: {
      firstTokenP50: diff(n.firstTokenMs.p50, l.firstTokenMs.p50),
      firstTokenP99: diff(n.firstTokenMs.p99, l.firstTokenMs.p99),
      lastEventP50: diff(n.lastEventMs.p50, l.lastEventMs.p50),
      lastEventP99: diff(n.lastEventMs.p99, l.lastEventMs.p99),
    },
  };
};

const serverInfo = frontendConn.nc.info;
process.stdout.write(
  `${JSON.stringify(
    {
      bench: 'queue-latency',
      natsServer: serverInfo?.version ?? 'unknown',
      broker: own ? 'own nats-server (file store)' : 'NATS_URL',
      node: process.version,
      model: 'tiny',
      maxTokens,
      numRequests,
      sequential: report(seq.local, seq.nats),
      concurrent: { concurrency, ...report(burst.local, burst.nats) },
      servedByWorker: worker.numServed,
    },
    null,
    2,
  )}\n`,
);

tokens.close();
await worker.drain(1_000);
await loop.stop(1_000);
await engineConn.close(1_000);
await frontendConn.close(1_000);
await bundle.close();
own?.stop();
