/**
 * `npm run bench:dispatch`: the cost of sending experts over gRPC, as one JSON document on stdout.
 *   1. Per-layer dispatch round trip (p50/p99) by payload size, against a real expert worker process,
 *      with the worker's own compute time so the wire's share can be read off.
 *   2. Distributed (this process as gateway + 2 worker processes) ÷ monolithic decode tokens/s at each
 *      batch size, micro-batch overlap off and on.
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
import { startExpertWorkers } from '@switchyard/launcher';
import { measureDecode } from './decode-measure.ts';

const { values } = parseArgs({
  options: {
    models: { type: 'string', default: 'small,olmoe-slice' },
    batches: { type: 'string', default: '1,8,32,64' },
    'decode-steps': { type: 'string', default: '6' },
    'payload-tokens': { type: 'string', default: '1,8,32,128,512' },
    repeats: { type: 'string', default: '50' },
    'models-dir': { type: 'string', default: 'bench/out/models' },
    'expert-dtype': { type: 'string', default: 'fp32' },
    'worker-threads': { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  },
});
if (values.help) {
  process.stdout.write(
    'usage: npm run bench:dispatch -- [--models small,olmoe-slice] [--batches 1,8,32,64] [--decode-steps 6] [--payload-tokens 1,8,32,128,512] [--repeats 50] [--models-dir bench/out/models] [--expert-dtype fp32|int8] [--worker-threads n (default: every core)]\n',
  );
  process.exit(0);
}
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
const workerThreads = values['worker-threads'] === undefined ? undefined : Number(values['worker-threads']);
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

  log(`${preset}: monolithic`);
  const mono = await createEngine(await loadModelDir(dir), options);
  const monolithic: Record<number, number> = {};
  for (const b of batches) monolithic[b] = (await measureDecode(mono, b, steps, 'm')).tokensPerSecond;
  await mono.close();

  log(`${preset}: starting 2 expert workers`);
  const workers = await startExpertWorkers(dir, 2, {
    expertDtype,
    startTimeoutMs: 600_000,
    ...(workerThreads === undefined ? {} : { intraOpThreads: workerThreads }),
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
    const decode = [];
    for (const microBatches of [1, 2]) {
      const dist = await createEngine(dense, { ...options, microBatches }, cluster.executor);
      for (const b of batches) {
        const m = await measureDecode(dist, b, steps, `x${microBatches}-`);
        const ratio = m.tokensPerSecond / (monolithic[b] ?? 1);
        log(
          `${preset} batch ${b} overlap ${microBatches === 2 ? 'on' : 'off'}: ${m.tokensPerSecond.toFixed(1)} tok/s, ${ratio.toFixed(3)} of monolithic`,
        );
        decode.push({
          batch: b,
          overlap: microBatches === 2,
          distributedTokensPerSecond: round(m.tokensPerSecond, 2),
          monolithicTokensPerSecond: round(monolithic[b] ?? 0, 2),
          ratio: round(ratio),
        });
      }
      // Keep the executor (shared clients) open for the next engine: close only the dense sessions.
      await dist.runner.closeDense();
    }
    await cluster.executor.close();
    return {
      model: preset,
      expertDtype,
      workers: 2,
      workerIntraOpThreads: workerThreads ?? 'every core',
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
