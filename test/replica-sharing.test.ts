import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initModelDir, loadModelDir, type ModelConfig } from '@switchyard/model';
import { EngineLoop, resolveSamplingParams, type TokenEvent } from '@switchyard/engine';
import { createEngine } from '@switchyard/onnx';
import { computeLoadAwarePlacement, computePlacement, type Placement } from '@switchyard/routing';
import { connectExpertCluster } from '@switchyard/dispatch';
import { connectExpertClient, type ExpertTokens } from '@switchyard/rpc';
import { startWorker, type ManagedProcess } from '@switchyard/launcher';
import { monolithicGreedy } from './helpers/oracle.ts';

const PROMPTS = ['Experts', 'load balancing', 'a hot expert', 'replicas share', 'zzz', 'DeepSeek EPLB'];
const MAX_TOKENS = 12;
const engineOptions = {
  expertDtype: 'fp32',
  denseDtype: 'fp32',
  blockSize: 16,
  scheduler: { maxBatchedTokens: 2048, maxRunningSequences: 64 },
} as const;
const ids = (events: readonly TokenEvent[]) => events.filter((e) => e.tokenId >= 0).map((e) => e.tokenId);
/** Pairs per expert of one layer of `skewed` as a bench run measured them (expert 0 takes 41%). */
const SKEWED_PROFILE = [410, 130, 80, 60, 50, 40, 35, 30, 28, 25, 22, 20, 18, 18, 16, 18];

let root = '';
let dir = '';
let config: ModelConfig;
let expected: number[][] = [];
let workers: (ManagedProcess & { address: string })[] = [];

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'switchyard-replicas-'));
  dir = join(root, 'skewed');
  await initModelDir(dir, 'skewed', 7);
  expected = (await monolithicGreedy(dir, PROMPTS, MAX_TOKENS)).map(ids);
  workers = await Promise.all([0, 1, 2].map((i) => startWorker(dir, `share-w${i}`)));
  config = (await loadModelDir(dir, { routedExperts: false })).config;
}, 180_000);

afterAll(async () => {
  await Promise.all(workers.map((w) => w.kill()));
  await rm(root, { recursive: true, force: true });
});

/** Every worker's own counter, keyed `layer:expert` per worker index. */
async function countersOf(): Promise<Map<string, number>[]> {
  return Promise.all(
    workers.map(async (w) => {
      const client = await connectExpertClient(w.address, { deadlineMs: 5_000 });
      try {
        const served: readonly ExpertTokens[] = (await client.describe()).tokensServed;
        return new Map(served.map((s) => [`${s.layer}:${s.expertId}`, s.tokens]));
      } finally {
        client.close();
      }
    }),
  );
}

/** Greedy tokens of PROMPTS on the three workers under `placement`, and what each worker computed meanwhile. */
async function runOn(placement: Placement): Promise<{ tokens: number[][]; served: Map<string, number>[] }> {
  const before = await countersOf();
  const dense = await loadModelDir(dir, { routedExperts: false });
  const cluster = await connectExpertCluster({
    addresses: workers.map((w) => w.address),
    config: dense.config,
    weightsDigest: dense.weightsDigest,
    strategy: 'contiguous',
    replication: 1,
    placement,
    deadlineMs: 10_000,
    connectTimeoutMs: 30_000,
  });
  const bundle = await createEngine(dense, engineOptions, cluster.executor);
  const loop = new EngineLoop(bundle.engine);
  const params = resolveSamplingParams({ maxTokens: MAX_TOKENS, temperature: 0, stopAtEos: false });
  try {
    const events = await Promise.all(
      PROMPTS.map((p, i) => loop.generate({ id: `share-${i}`, promptIds: bundle.tokenizer.encode(p), params })),
    );
    const after = await countersOf();
    const served = after.map((counts, w) => {
      const delta = new Map<string, number>();
      for (const [key, n] of counts) delta.set(key, n - (before[w]?.get(key) ?? 0));
      return delta;
    });
    return { tokens: events.map(ids), served };
  } finally {
    await loop.stop();
    await bundle.close();
  }
}

/** Pairs each replica of (layer, expert) computed, in replica order. */
const sharesOf = (placement: Placement, served: Map<string, number>[], layer: number, expert: number) =>
  (placement.replicas[layer]?.[expert] ?? []).map((w) => served[w]?.get(`${layer}:${expert}`) ?? 0);

describe('replicas share an expert’s tokens', () => {
  it('splits the hot expert of `skewed` among its replicas under a load-aware placement, with the monolithic engine’s greedy tokens', async () => {
    const placement = computeLoadAwarePlacement({
      workers: workers.map((w) => w.address),
      loads: Array.from({ length: config.numLayers }, () => SKEWED_PROFILE),
      redundantExperts: 5,
      maxExpertsPerWorker: 7,
      revision: 1,
    });
    const { tokens, served } = await runOn(placement);
    expect(tokens).toEqual(expected);
    for (let layer = 0; layer < config.numLayers; layer++) {
      // Expert 0 is on all three workers; each one computed part of its pairs, and the shares are close.
      const shares = sharesOf(placement, served, layer, 0);
      expect(shares).toHaveLength(3);
      for (const n of shares) expect(n).toBeGreaterThan(0);
      expect(Math.min(...shares) / Math.max(...shares)).toBeGreaterThan(0.5);
    }
  }, 180_000);

  it('gives the same greedy tokens with every expert split three ways', async () => {
    const placement = computePlacement({
      workers: workers.map((w) => w.address),
      numLayers: config.numLayers,
      numExperts: config.numExperts,
      strategy: 'round-robin',
      replication: 3,
      revision: 2,
    });
    const { tokens, served } = await runOn(placement);
    expect(tokens).toEqual(expected);
    for (let layer = 0; layer < config.numLayers; layer++) {
      for (const n of sharesOf(placement, served, layer, 0)) expect(n).toBeGreaterThan(0);
    }
  }, 180_000);
});
