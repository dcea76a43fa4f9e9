/**
 * Run round-trip latency on ONE open stream against a no-op echo worker in a child process, one
 * request in flight at a time, for hidden-state payloads of 4 KiB, 64 KiB, 1 MiB and 8 MiB; plus a
 * unary Describe for comparison. Prints JSON. Compare with docs/architecture.md §4 (≈ 0.23 ms per message on an
 * open stream, ≈ 1.1 ms per unary call, 400–600 MB/s for large messages).
 *
 *   npx node packages/rpc/bench/roundtrip.ts [--wire=bf16]
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { cpus, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { connectExpertClient } from '../src/index.ts';
import type { ExpertStreamClient, FloatFormat, RunRequest } from '../src/index.ts';

const HIDDEN_SIZE = 1024;
const CASES = [
  { label: '4KiB', sizeBytes: 4 * 1024, iterations: 1000, warmup: 50 },
  { label: '64KiB', sizeBytes: 64 * 1024, iterations: 1000, warmup: 50 },
  { label: '1MiB', sizeBytes: 1024 * 1024, iterations: 200, warmup: 10 },
  { label: '8MiB', sizeBytes: 8 * 1024 * 1024, iterations: 30, warmup: 3 },
] as const;

function requestOf(sizeBytes: number): RunRequest {
  const numTokens = sizeBytes / 4 / HIDDEN_SIZE;
  const hidden = new Float32Array(numTokens * HIDDEN_SIZE).map((_, i) => Math.sin(i));
  const offsets = Int32Array.from({ length: numTokens + 1 }, (_, t) => t);
  const expertIds = new Int32Array(numTokens);
  const weights = new Float32Array(numTokens).fill(1);
  return { layer: 0, hiddenSize: HIDDEN_SIZE, hidden, routes: { numTokens, offsets, expertIds, weights } };
}

function percentile(sortedMs: readonly number[], p: number): number {
  const index = Math.min(sortedMs.length - 1, Math.ceil((p / 100) * sortedMs.length) - 1);
  return sortedMs[Math.max(0, index)] ?? Number.NaN;
}

async function timeCall(call: () => Promise<unknown>): Promise<number> {
  const start = performance.now();
  await call();
  return performance.now() - start;
}

const round = (ms: number): number => Math.round(ms * 1000) / 1000;

/**
 * NOTE: sizes are interleaved (one request of each size per round, until each has its count), so
 * drifting background load on the shared machine spreads over all sizes instead of skewing one.
 */
async function measure(client: ExpertStreamClient, wireFormat: FloatFormat) {
  const requests = CASES.map(({ sizeBytes }) => requestOf(sizeBytes));
  const samplesMs: number[][] = CASES.map(() => []);
  const numRounds = Math.max(...CASES.map(({ iterations, warmup }) => iterations + warmup));
  for (let r = 0; r < numRounds; r++) {
    for (const [i, { iterations, warmup }] of CASES.entries()) {
      const request = requests[i];
      const samples = samplesMs[i];
      if (request === undefined || samples === undefined || r >= iterations + warmup) continue;
      const elapsedMs = await timeCall(() => client.run(request, { wireFormat }));
      if (r >= warmup) samples.push(elapsedMs);
    }
  }
  const run = CASES.map(({ label, sizeBytes, iterations }, i) => {
    const samples = (samplesMs[i] ?? []).sort((a, b) => a - b);
    const p50Ms = percentile(samples, 50);
    const wireBytes = wireFormat === 'bf16' ? sizeBytes / 2 : sizeBytes;
    return {
      payload: label,
      wireBytesEachWay: wireBytes,
      numTokens: requests[i]?.routes.numTokens,
      iterations,
      p50Ms: round(p50Ms),
      p99Ms: round(percentile(samples, 99)),
      // Both directions carry the payload.
      mbPerSecAtP50: Math.round((2 * wireBytes) / 1e6 / (p50Ms / 1e3)),
    };
  });
  const unary: number[] = [];
  for (let i = 0; i < 330; i++) {
    const elapsedMs = await timeCall(() => client.describe());
    if (i >= 30) unary.push(elapsedMs);
  }
  unary.sort((a, b) => a - b);
  return { run, unaryDescribe: { p50Ms: round(percentile(unary, 50)), p99Ms: round(percentile(unary, 99)) } };
}

const wireFormat: FloatFormat = process.argv.includes('--wire=bf16') ? 'bf16' : 'f32';
const serverScript = fileURLToPath(new URL('./echo-server.ts', import.meta.url));
const child = spawn(process.execPath, [serverScript], { stdio: ['pipe', 'pipe', 'inherit'] });
try {
  const [line] = (await once(child.stdout, 'data')) as [Buffer];
  const client = await connectExpertClient(`127.0.0.1:${Number.parseInt(line.toString(), 10)}`, { deadlineMs: 30_000 });
  try {
    const loadBefore = loadavg()[0];
    const figures = await measure(client, wireFormat);
    // The machine's load says how much to trust the figures (the dev box has 2 shared cores).
    const machine = { numCpus: cpus().length, loadAvg1mBefore: loadBefore, loadAvg1mAfter: loadavg()[0] };
    console.log(
      JSON.stringify(
        { bench: 'rpc-roundtrip', node: process.version, wireFormat, hiddenSize: HIDDEN_SIZE, machine, ...figures },
        null,
        2,
      ),
    );
  } finally {
    client.close();
  }
} finally {
  child.stdin.end();
  await Promise.race([once(child, 'exit'), new Promise((resolve) => setTimeout(resolve, 2_000))]);
  if (child.exitCode === null) child.kill();
}
