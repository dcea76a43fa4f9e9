import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModelDir, writeModelDir } from '@switchyard/model';
import { EngineLoop, resolveSamplingParams, type EngineBundle, type TokenEvent } from '@switchyard/engine';
import { createEngine } from '@switchyard/onnx';
import type { Placement } from '@switchyard/routing';
import { connectExpertCluster } from '@switchyard/dispatch';
import { routingControlledModel } from './helpers/routing-model.ts';
import { connectExpertClient } from '@switchyard/rpc';
import { startProcess, startWorker, type ManagedProcess } from '@switchyard/launcher';

const MARKER = 200;
const HOT_EXPERT = 7;
const DEADLINE_MS = 3000;
const { config, weights } = routingControlledModel(MARKER, HOT_EXPERT);
const engineOptions = {
  expertDtype: 'fp32',
  denseDtype: 'fp32',
  blockSize: 16,
  scheduler: { maxBatchedTokens: 256, maxRunningSequences: 16 },
} as const;
const params = resolveSamplingParams({ maxTokens: 40, temperature: 0, stopAtEos: false });
const PROMPTS = ['alpha', 'bravo charlie', 'delta', 'echo foxtrot golf', 'hotel', 'india juliet'];
const ids = (events: readonly TokenEvent[]) => events.filter((e) => e.tokenId >= 0).map((e) => e.tokenId);

let root = '';
let dir = '';
let expected: number[][] = [];
const workers: (ManagedProcess & { address: string })[] = [];

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'switchyard-failover-'));
  dir = join(root, 'model');
  await writeModelDir(dir, config, weights);
  const mono = await createEngine(await loadModelDir(dir), engineOptions);
  const loop = new EngineLoop(mono.engine);
  expected = (
    await Promise.all(
      PROMPTS.map((p, i) => loop.generate({ id: `m${i}`, promptIds: mono.tokenizer.encode(p), params })),
    )
  ).map(ids);
  await loop.stop();
  await mono.close();
}, 60_000);

afterAll(async () => {
  await Promise.all(workers.map((w) => w.kill()));
  await rm(root, { recursive: true, force: true });
});

async function distributed(
  numWorkers: number,
  placement: Placement | undefined,
  replication: number,
  timing: { healthIntervalMs?: number; replicaWaitMs?: number } = {},
): Promise<{ bundle: EngineBundle; loop: EngineLoop; procs: (ManagedProcess & { address: string })[] }> {
  const procs = await Promise.all(Array.from({ length: numWorkers }, (_, i) => startWorker(dir, `w${i}`)));
  workers.push(...procs);
  const dense = await loadModelDir(dir, { routedExperts: false });
  const cluster = await connectExpertCluster({
    addresses: procs.map((p) => p.address),
    config: dense.config,
    strategy: 'contiguous',
    replication,
    deadlineMs: DEADLINE_MS,
    connectTimeoutMs: 30_000,
    ...(placement ? { placement } : {}),
    ...timing,
  });
  const bundle = await createEngine(dense, engineOptions, cluster.executor);
  return { bundle, loop: new EngineLoop(bundle.engine), procs };
}

/** Experts 0–6 on workers 0 and 1; the hot expert only on worker 2 (no replica). */
function hotExpertOnWorker2(): Placement {
  const experts = Array.from({ length: config.numExperts }, (_, e) => (e === HOT_EXPERT ? [2] : [0, 1]));
  return {
    revision: 1,
    numLayers: config.numLayers,
    numExperts: config.numExperts,
    workers: ['w0', 'w1', 'w2'],
    replicas: Array.from({ length: config.numLayers }, () => experts),
  };
}

describe('expert worker failure', () => {
  it('changes no output token when a worker is killed mid-generation and a replica exists', async () => {
    const { bundle, loop, procs } = await distributed(2, undefined, 2);
    let killed: Promise<void> | undefined;
    const runs = await Promise.all(
      PROMPTS.map(
        (p, i) =>
          new Promise<TokenEvent[]>((resolve) => {
            const events: TokenEvent[] = [];
            loop.submit({ id: `r${i}`, promptIds: bundle.tokenizer.encode(p), params }, (e) => {
              events.push(e);
              if (i === 0 && e.index === 5) killed = procs[1]?.kill('SIGKILL');
              if (e.finishReason) resolve(events);
            });
          }),
      ),
    );
    await killed;
    expect(procs[1]?.child.signalCode).toBe('SIGKILL');
    expect(runs.map((r) => r.at(-1)?.finishReason)).toEqual(PROMPTS.map(() => 'length'));
    expect(runs.map(ids)).toEqual(expected);
    await loop.stop();
    await bundle.close();
  }, 120_000);

  it('ends only the requests whose experts lost their last worker, with a clear error within the deadline', async () => {
    const { bundle, loop, procs } = await distributed(3, hotExpertOnWorker2(), 1);
    let affected: Promise<{ events: TokenEvent[]; ms: number }> | undefined;
    const runs = await Promise.all(
      PROMPTS.map(
        (p, i) =>
          new Promise<TokenEvent[]>((resolve) => {
            const events: TokenEvent[] = [];
            loop.submit({ id: `u${i}`, promptIds: bundle.tokenizer.encode(p), params }, (e) => {
              events.push(e);
              if (i === 0 && e.index === 3) {
                affected = procs[2]?.kill('SIGKILL').then(
                  () =>
                    new Promise((done) => {
                      const started = performance.now();
                      const mine: TokenEvent[] = [];
                      loop.submit({ id: 'marked', promptIds: [104, MARKER, 105], params }, (m) => {
                        mine.push(m);
                        if (m.finishReason) done({ events: mine, ms: performance.now() - started });
                      });
                    }),
                );
              }
              if (e.finishReason) resolve(events);
            });
          }),
      ),
    );
    expect(runs.map(ids)).toEqual(expected);
    const marked = await affected;
    expect(marked?.events.at(-1)?.finishReason).toBe('error');
    expect(marked?.events.at(-1)?.error?.message).toMatch(/no live worker hosts the experts/);
    expect(marked?.ms).toBeLessThan(DEADLINE_MS + 2000);
    await loop.stop();
    await bundle.close();
  }, 120_000);

  it('gives a restarted replica its experts before any request needs them, so the other replica may die next', async () => {
    const { bundle, loop, procs } = await distributed(2, undefined, 2);
    const address = procs[1]?.address ?? '';
    await procs[1]?.kill('SIGKILL');
    const restarted = await startProcess(
      'services/expert-worker/src/main.ts',
      ['--model', dir, '--port', address.split(':')[1] ?? '', '--worker-id', 'w1-warm'],
      'serving',
    );
    workers.push({ ...restarted, address });
    // No request is sent: the gateway's health probe notices the empty worker and reloads it.
    const probe = await connectExpertClient(address, { deadlineMs: 5000 });
    const startedAt = Date.now();
    try {
      let hosted = 0;
      while (hosted < config.numLayers * config.numExperts && Date.now() - startedAt < 15_000) {
        await new Promise((r) => setTimeout(r, 100));
        hosted = (await probe.describe()).hosted.length;
      }
      expect(hosted).toBe(config.numLayers * config.numExperts);
    } finally {
      probe.close();
    }
    // Then the other replica dies: the warm one serves every request, exactly.
    await procs[0]?.kill('SIGKILL');
    const runs = (
      await Promise.all(
        PROMPTS.map((p, i) => loop.generate({ id: `warm${i}`, promptIds: bundle.tokenizer.encode(p), params })),
      )
    ).map(ids);
    expect(runs).toEqual(expected);
    await loop.stop();
    await bundle.close();
  }, 120_000);

  it('has a request whose only worker restarted wait for its reload within the deadline, and finish exactly', async () => {
    // No health probe, so the request meets the empty worker.
    const { bundle, loop, procs } = await distributed(3, hotExpertOnWorker2(), 1, {
      healthIntervalMs: 0,
      replicaWaitMs: 20_000,
    });
    const marked = () => loop.generate({ id: `marked-${Date.now()}`, promptIds: [104, MARKER, 105], params });
    const before = ids(await marked());
    const address = procs[2]?.address ?? '';
    await procs[2]?.kill('SIGKILL');
    const restarted = await startProcess(
      'services/expert-worker/src/main.ts',
      ['--model', dir, '--port', address.split(':')[1] ?? '', '--worker-id', 'w2-again'],
      'serving',
    );
    workers.push({ ...restarted, address });
    // The restarted worker answers "not hosted"; the call reloads it and waits instead of failing.
    const after = await marked();
    expect(after.at(-1)?.finishReason).toBe('length');
    expect(ids(after)).toEqual(before);
    await loop.stop();
    await bundle.close();
  }, 120_000);

  it('has a restarted worker load its experts again and serve, with no output token changed', async () => {
    const { bundle, loop, procs } = await distributed(2, undefined, 2);
    const address = procs[1]?.address ?? '';
    await procs[1]?.kill('SIGKILL');
    const port = address.split(':')[1] ?? '';
    const restarted = await startProcess(
      'services/expert-worker/src/main.ts',
      ['--model', dir, '--port', port, '--worker-id', 'w1-again'],
      'serving',
    );
    workers.push({ ...restarted, address });
    const run = async (tag: string) =>
      (
        await Promise.all(
          PROMPTS.map((p, i) => loop.generate({ id: `${tag}${i}`, promptIds: bundle.tokenizer.encode(p), params })),
        )
      ).map(ids);
    expect(await run('before-reload-')).toEqual(expected);
    const probe = await connectExpertClient(address, { deadlineMs: 5000 });
    try {
      // The reload loads expert by expert: wait for all of them (requests stay exact meanwhile).
      let hosted = 0;
      for (let i = 0; i < 100 && hosted < config.numLayers * config.numExperts; i++) {
        await new Promise((r) => setTimeout(r, 100));
        expect(await run(`r${i}-`)).toEqual(expected);
        hosted = (await probe.describe()).hosted.length;
      }
      expect(hosted).toBe(config.numLayers * config.numExperts);
    } finally {
      probe.close();
    }
    await loop.stop();
    await bundle.close();
  }, 120_000);
});
