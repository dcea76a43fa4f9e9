/**
 * `npm run bench:dispatch`: the cost of sending experts over gRPC, as one JSON document on stdout.
 *   1. Per-layer dispatch round trip (p50/p99) by payload size, against a real expert worker process,
 *      with the worker's own compute time so the wire's share can be read off.
 *   2. Distributed (this process as gateway + 2 worker processes) ÷ monolithic decode tokens/s at each
 *      batch size, micro-batch overlap off and on: the engines alternate, and the ratio reported is the
 *      median over rounds of the ratio within a round.
 *
 *   npm run bench:dispatch -- --models small,olmoe-slice --batches 1,8,32,64
 */
import { access, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { initModelDir, loadModelDir, type ModelConfig, type PresetName } from '@switchyard/model';
import { createEngine, type EngineOptions } from '@switchyard/onnx';
import { expertsOfWorker } from '@switchyard/routing';
import type { ExpertStreamClient } from '@switchyard/rpc';
import { connectExpertCluster } from '@switchyard/dispatch';
import { colocatedWorkerThreads, startExpertWorkers } from '@switchyard/launcher';
import { measureDecode } from './decode-measure.ts';
import { median } from './median.ts';
import { benchArgs } from './args.ts';

const USAGE =
  'usage: npm run bench:dispatch -- [--models small,olmoe-slice] [--batches 1,8,32,64] [--decode-steps 6] [--payload-tokens 1,8,32,128,512] [--repeats 50] [--models-dir bench/out/models] [--expert-dtype fp32|int8] [--worker-threads n (default: the cores divided among the 2 workers, as npm start does)] [--rounds 3]\n';
const values = benchArgs('bench:dispatch', USAGE, () =>
  parseArgs({
    options: {
      models: { type: 'string', default: 'small,olmoe-slice' },
      batches: { type: 'string', default: '1,8,32,64' },
      'decode-steps': { type: 'string', default: '6' },
      'payload-tokens': { type: 'string', default: '1,8,32,128,512' },
      repeats: { type: 'string', default: '50' },
      'models-dir': { type: 'string', default: 'bench/out/models' },
      'expert-dtype': { type: 'string', default: 'fp32' },
      'worker-threads': { type: 'string' },
      rounds: { type: 'string', default: '3' },
      help: { type: 'boolean', short: 'h' },
    },
  }),
);
const log = (msg: string) => process.stderr.write(`[bench:dispatch] ${msg}\n`);
const list = (s: string) =>
  s
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean)
    .map((x) => x);
const batches = list(values.batches).map(Number);
const steps = Number(values['decode-steps']);
const expertDtype = values['expert-dtype'] === 'int8' ? 'int8' : 'fp32';
const workerThreads =
  values['worker-threads'] === undefined ? colocatedWorkerThreads(2) : Number(values['worker-threads']);
const rounds = Number(values.rounds);
const round = (n: number, d = 3) => Math.round(n * 10 ** d) / 10 ** d;

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  const rank = (p / 100) * (sorted.length - 1);
  const lo = Math.floor(rank);
  const hi = Math.ceil(rank);
  return (sorted[lo] ?? 0) + ((sorted[hi] ?? 0) - (sorted[lo] ?? 0)) * (rank - lo);
}

async function ensureModel(preset: PresetName): Promise<string> {
  const dir = join(values['models-dir'], preset);
  try {
    await access(join(dir, 'config.json'));
  } catch {
    log(`${preset}: writing the model to ${dir}`);
    await mkdir(values['models-dir'], { recursive: true });
    await initModelDir(dir, preset, 1);
  }
  return dir;
}

/** Round trips of one Run message of `numTokens` tokens, each to the top-k experts of worker 0. */
async function roundTrips(
  client: ExpertStreamClient,
  config: ModelConfig,
  hosted: readonly number[],
  numTokens: number,
  repeats: number,
) {
  const H = config.hiddenSize;
  const k = Math.min(config.numExpertsPerToken, hosted.length);
  const hidden = new Float32Array(numTokens * H).map((_, i) => Math.sin(i) * 0.1);
  const offsets = Int32Array.from({ length: numTokens + 1 }, (_, t) => t * k);
  const expertIds = Int32Array.from(
    { length: numTokens * k },
    (_, i) => hosted[(i % k) + ((Math.floor(i / k) * 3) % Math.max(1, hosted.length - k + 1))] ?? 0,
  );
  const weights = new Float32Array(numTokens * k).fill(1 / k);
  const request = { layer: 0, hiddenSize: H, hidden, routes: { numTokens, offsets, expertIds, weights } };
  for (let i = 0; i < 3; i++) await client.run(request);
  const rtt: number[] = [];
  const compute: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const t0 = performance.now();
    const reply = await client.run(request);
    rtt.push(performance.now() - t0);
    compute.push(reply.computeTimeUs / 1000);
  }
  rtt.sort((a, b) => a - b);
  compute.sort((a, b) => a - b);
  return {
    tokens: numTokens,
    payloadBytes: numTokens * H * 4,
    p50Ms: round(percentile(rtt, 50)),
    p99Ms: round(percentile(rtt, 99)),
    workerComputeP50Ms: round(percentile(compute, 50)),
    overheadP50Ms: round(percentile(rtt, 50) - percentile(compute, 50)),
  };
}

async function benchModel(preset: PresetName) {
  const dir = await ensureModel(preset);
  const options: EngineOptions = {
    expertDtype,
    denseDtype: 'fp32',
    blockSize: 16,
    scheduler: { maxBatchedTokens: 2048, maxRunningSequences: Math.max(...batches) },
  };

  log(`${preset}: starting 2 expert workers`);
  const workers = await startExpertWorkers(dir, 2, {
    expertDtype,
    startTimeoutMs: 600_000,
    intraOpThreads: workerThreads,
  });
  try {
    const dense = await loadModelDir(dir, { routedExperts: false });
    const cluster = await connectExpertCluster({
      addresses: workers.addresses,
      config: dense.config,
      strategy: 'contiguous',
      replication: 1,
      deadlineMs: 60_000,
      connectTimeoutMs: 600_000,
    });
    const hosted = expertsOfWorker(cluster.placement, 0)
      .filter(([layer]) => layer === 0)
      .map(([, e]) => e);
    const client = cluster.clients.get(0);
    const dispatch = [];
    if (client) {
      for (const n of list(values['payload-tokens']).map(Number))
        dispatch.push(await roundTrips(client, dense.config, hosted, n, Number(values.repeats)));
    }
    log(`${preset}: monolithic and distributed engines side by side`);
    const mono = await createEngine(await loadModelDir(dir), options);
    const dist = [
      await createEngine(dense, { ...options, microBatches: 1 }, cluster.executor),
      await createEngine(dense, { ...options, microBatches: 2 }, cluster.executor),
    ] as const;
    // NOTE: monolithic and distributed decode alternate, batch by batch and round by round, and each
    // ratio is taken within one round: on a shared machine the load shifts between measurements taken
    // minutes apart, so a ratio of a monolithic figure from one minute and a distributed one from the
    // next says more about the neighbours than about dispatch.
    const perRound: { batch: number; overlap: boolean; mono: number; dist: number }[] = [];
    for (let r = 0; r < rounds; r++) {
      for (const b of batches) {
        const m = (await measureDecode(mono, b, steps, `m${r}-`)).tokensPerSecond;
        for (const [i, engine] of dist.entries()) {
          const d = (await measureDecode(engine, b, steps, `x${r}-${i}-`)).tokensPerSecond;
          perRound.push({ batch: b, overlap: i === 1, mono: m, dist: d });
          log(
            `${preset} round ${r + 1} batch ${b} overlap ${i === 1 ? 'on' : 'off'}: ${d.toFixed(1)} tok/s distributed, ${m.toFixed(1)} monolithic, ratio ${(d / m).toFixed(3)}`,
          );
        }
      }
    }
    const decode = batches.flatMap((batch) =>
      [false, true].map((overlap) => {
        const runs = perRound.filter((p) => p.batch === batch && p.overlap === overlap);
        return {
          batch,
          overlap,
          distributedTokensPerSecond: round(median(runs.map((p) => p.dist)), 2),
          monolithicTokensPerSecond: round(median(runs.map((p) => p.mono)), 2),
          ratio: round(median(runs.map((p) => p.dist / p.mono))),
          ratioPerRound: runs.map((p) => round(p.dist / p.mono)),
        };
      }),
    );
    await mono.close();
    // The executor (shared clients) is closed once below: close only the distributed dense sessions.
    for (const engine of dist) await engine.runner.closeDense();
    await cluster.executor.close();
    return {
      model: preset,
      expertDtype,
      workers: 2,
      workerIntraOpThreads: workerThreads,
      placement: 'contiguous',
      dispatch,
      decode,
    };
  } finally {
    await workers.stop();
  }
}

const results = [];
for (const preset of list(values.models) as PresetName[]) results.push(await benchModel(preset));
process.stdout.write(`${JSON.stringify({ bench: 'dispatch', date: new Date().toISOString(), results }, null, 2)}\n`);
