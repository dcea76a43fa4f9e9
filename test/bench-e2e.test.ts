import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initModelDir } from '@switchyard/model';
import {
  outputDirFor,
  writeBenchOutputs,
  runAgainstServer,
  type CommonSettings,
  type RunHooks,
} from '@switchyard/loadgen';
import { freePort, startLocalCluster, type LocalCluster } from '@switchyard/launcher';

const VLLM_KEYS = [
  'completed',
  'failed',
  'total_input_tokens',
  'total_output_tokens',
  'request_throughput',
  'request_goodput',
  'output_throughput',
  'total_token_throughput',
  'duration',
  'input_lens',
  'output_lens',
  'ttfts',
  'itls',
  'latencies',
  'errors',
  ...['ttft', 'tpot', 'itl', 'e2el'].flatMap((m) => [
    `mean_${m}_ms`,
    `median_${m}_ms`,
    `std_${m}_ms`,
    `p90_${m}_ms`,
    `p99_${m}_ms`,
  ]),
];

const common: CommonSettings = {
  seed: 3,
  percentiles: [90, 99],
  goodput: { ttft: 60_000 },
  vocabSize: 256,
  temperature: 0,
  durationMs: Infinity,
  gracePeriodMs: 0,
  requestTimeoutMs: 30_000,
  model: undefined,
  warmUp: true,
};
const hooks = (signal = new AbortController().signal): RunHooks => ({
  signal,
  log: () => {},
  progress: () => ({ update: () => {}, stop: () => {} }),
});

describe('switchyard bench against a local cluster (tiny, 2 expert workers)', () => {
  let dir = '';
  let cluster: LocalCluster | undefined;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'bench-e2e-'));
    await initModelDir(join(dir, 'tiny'), 'tiny', 7);
    cluster = await startLocalCluster({
      modelDir: join(dir, 'tiny'),
      workers: 2,
      host: '127.0.0.1',
      port: await freePort(),
      expertDtype: 'fp32',
      placement: 'round-robin',
      replication: 1,
      microBatches: 2,
      startTimeoutMs: 60_000,
      log: () => {},
    });
  });
  afterAll(async () => {
    await cluster?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('runs 10 streaming requests with exact lengths and writes JSON (vLLM keys), Markdown and SVGs', async () => {
    const url = cluster?.url ?? '';
    const dataset = { kind: 'random', inputLen: 24, outputLen: 6, rangeRatio: 0.5, prefixLen: 0 } as const;
    const runs = await runAgainstServer(
      { baseUrl: url, series: 'tiny 2w', cluster: undefined, shape: undefined },
      dataset,
      [{ maxConcurrency: 4, numPrompts: 10, requestRate: 50, burstiness: 1 }],
      common,
      hooks(),
    );
    const run = runs[0];
    if (run === undefined) throw new Error('no run');
    expect(run.metrics.completed).toBe(10);
    expect(run.metrics.failed).toBe(0);
    // ignore_eos + max_tokens: every request generated exactly the length it asked for.
    const asked = run.load.outputs.map((o) => o.outputTokens);
    expect(run.metrics.totalOutput).toBe(asked.reduce((a, b) => a + b, 0));
    for (const o of run.load.outputs) expect(o.itlMs).toHaveLength(o.outputTokens - 1);
    expect(run.metrics.maxConcurrentRequests).toBeLessThanOrEqual(4);
    expect(run.metrics.requestGoodput).toBeCloseTo(run.metrics.requestThroughput, 9);

    const startedAt = new Date();
    const out = await writeBenchOutputs(
      outputDirFor(dir, 'e2e', startedAt),
      { name: 'e2e', description: 'test', startedAt, durationS: 1, interrupted: false, notes: [] },
      runs,
    );
    const json = JSON.parse(await readFile(out.runFiles[0] ?? '', 'utf8')) as Record<string, unknown>;
    for (const key of VLLM_KEYS) expect(json).toHaveProperty(key);
    expect(json['completed']).toBe(10);
    expect(json['output_lens']).toEqual(asked);
    expect((json['ttfts'] as number[])[0]).toBeCloseTo((run.load.outputs[0]?.ttftMs ?? 0) / 1000, 9);
    expect(await readdir(out.dir)).toEqual(
      expect.arrayContaining([
        'results.json',
        'summary.md',
        'throughput-vs-concurrency.svg',
        'latency-percentiles.svg',
        'runs',
      ]),
    );
    const markdown = await readFile(out.markdown, 'utf8');
    expect(markdown).toContain('| tiny 2w, concurrency 4, 50 req/s | 10 | 0 |');
    expect(markdown).toContain('![latency percentiles](latency-percentiles.svg)');
  });

  it('on Ctrl-C stops, cancels what is in flight and keeps what was measured', async () => {
    const controller = new AbortController();
    const url = cluster?.url ?? '';
    const dataset = { kind: 'random', inputLen: 16, outputLen: 200, rangeRatio: 0, prefixLen: 0 } as const;
    setTimeout(() => controller.abort(), 1500);
    const runs = await runAgainstServer(
      { baseUrl: url, series: 'tiny 2w', cluster: undefined, shape: undefined },
      dataset,
      [{ maxConcurrency: 2, numPrompts: 8, requestRate: Infinity, burstiness: 1 }],
      common,
      hooks(controller.signal),
    );
    const run = runs[0];
    expect(run?.load.interrupted).toBe(true);
    expect(run?.metrics.cancelled).toBeGreaterThanOrEqual(1);
    expect((run?.load.outputs.length ?? 0) + (run?.load.numNotSent ?? 0)).toBe(8);
  });
});
