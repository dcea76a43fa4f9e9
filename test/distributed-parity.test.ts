import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initModelDir, loadModelDir, maxAbsDiff, type PresetName } from '@switchyard/model';
import { EngineLoop, resolveSamplingParams, Sequence, type EngineBundle, type TokenEvent } from '@switchyard/engine';
import { createEngine } from '@switchyard/onnx';
import { connectExpertCluster } from '@switchyard/dispatch';
import { startWorker, type ManagedProcess } from '@switchyard/launcher';

const PROMPTS = [
  'The quick brown fox',
  'Mixture of experts',
  'a',
  'Switchyard routes tokens over gRPC',
  'zzz',
  'KV pages move',
  'OpenTelemetry',
  '8 prompts',
];
const engineOptions = {
  expertDtype: 'fp32',
  denseDtype: 'fp32',
  blockSize: 16,
  scheduler: { maxBatchedTokens: 512, maxRunningSequences: 16 },
} as const;
const greedy = resolveSamplingParams({ maxTokens: 10, temperature: 0, stopAtEos: false });
const ids = (events: readonly TokenEvent[]) => events.filter((e) => e.tokenId >= 0).map((e) => e.tokenId);

let root = '';
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'switchyard-dist-'));
});
afterAll(() => rm(root, { recursive: true, force: true }));

/** Next-token logits of a prompt, straight from a runner (no sampling in between). */
async function promptLogits(bundle: EngineBundle, id: string, prompt: number[]): Promise<Float32Array> {
  const seq = new Sequence(id, prompt, greedy);
  const result = await bundle.runner.execute({
    chunks: [{ seq, start: 0, count: prompt.length, sample: true }],
    preempted: [],
    numBatchedTokens: prompt.length,
  });
  bundle.runner.release(id);
  const logits = result.logits.get(id);
  if (!logits) throw new Error('no logits');
  return logits;
}

describe.each(['tiny', 'small'] as PresetName[])('gateway + two expert worker processes on %s', (preset) => {
  let workers: (ManagedProcess & { address: string })[] = [];
  let mono: EngineBundle;
  let dist: EngineBundle;

  beforeAll(async () => {
    const dir = join(root, preset);
    await initModelDir(dir, preset, 5);
    workers = await Promise.all([startWorker(dir, `${preset}-w0`), startWorker(dir, `${preset}-w1`)]);
    mono = await createEngine(await loadModelDir(dir), engineOptions);
    const dense = await loadModelDir(dir, { routedExperts: false });
    const cluster = await connectExpertCluster({
      addresses: workers.map((w) => w.address),
      config: dense.config,
      weightsDigest: dense.weightsDigest,
      strategy: 'contiguous',
      replication: 1,
      deadlineMs: 10_000,
      connectTimeoutMs: 30_000,
    });
    dist = await createEngine(dense, engineOptions, cluster.executor);
  }, 180_000);

  it('refuses workers that serve the same model name with other weights', async () => {
    const other = 'f'.repeat(64);
    const refused = await connectExpertCluster({
      addresses: workers.map((w) => w.address),
      config: mono.config,
      weightsDigest: other,
      strategy: 'contiguous',
      replication: 1,
      deadlineMs: 10_000,
      connectTimeoutMs: 30_000,
    }).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(Error);
    expect((refused as Error).message).toMatch(/serves \S+ with other weights/);
  });

  afterAll(async () => {
    await dist?.close();
    await mono?.close();
    await Promise.all(workers.map((w) => w.kill()));
  });

  it('gives the monolithic engine’s greedy tokens for 8 concurrent prompts', async () => {
    const run = async (bundle: EngineBundle) => {
      const loop = new EngineLoop(bundle.engine);
      try {
        const events = await Promise.all(
          PROMPTS.map((p, i) => loop.generate({ id: `p${i}`, promptIds: bundle.tokenizer.encode(p), params: greedy })),
        );
        return events.map(ids);
      } finally {
        await loop.stop();
      }
    };
    const expected = await run(mono);
    const actual = await run(dist);
    expect(actual).toEqual(expected);
    expect(expected.every((tokens) => tokens.length === 10)).toBe(true);
  }, 120_000);

  it('gives the monolithic engine’s logits within 1e-4', async () => {
    for (const [i, p] of PROMPTS.entries()) {
      const prompt = mono.tokenizer.encode(p);
      const a = await promptLogits(mono, `m${i}`, prompt);
      const b = await promptLogits(dist, `d${i}`, prompt);
      expect(maxAbsDiff(a, b)).toBeLessThanOrEqual(1e-4);
    }
  }, 120_000);
});
