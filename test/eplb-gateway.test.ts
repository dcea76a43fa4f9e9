import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getPreset, initModelDir } from '@switchyard/model';
import { connectExpertClient, type WorkerDescription } from '@switchyard/rpc';
import { startGateway, startWorker, type ManagedProcess } from '@switchyard/launcher';
import { monolithicGreedy } from './helpers/oracle.ts';

const config = getPreset('skewed');
const PROMPTS = ['the hot expert', 'takes 41%', 'of every layer'];
const MAX_TOKENS = 8;
let root = '';
let dir = '';
let workers: (ManagedProcess & { address: string })[] = [];
const gateways: ManagedProcess[] = [];
/** The monolithic engine's greedy answers to PROMPTS. */
let oracle: string[] = [];

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'switchyard-eplb-'));
  dir = join(root, 'skewed');
  await initModelDir(dir, 'skewed', 11);
  workers = await Promise.all([0, 1].map((i) => startWorker(dir, `eplb-w${i}`)));
  oracle = (await monolithicGreedy(dir, PROMPTS, MAX_TOKENS)).map((events) => events.map((e) => e.text).join(''));
}, 120_000);

afterAll(async () => {
  await Promise.all([...gateways, ...workers].map((p) => p.kill('SIGTERM')));
  await rm(root, { recursive: true, force: true });
});

/** Greedy completions of PROMPTS, concurrently (so steps batch them), as texts. */
async function complete(url: string): Promise<string[]> {
  return Promise.all(
    PROMPTS.map(async (prompt) => {
      const res = await fetch(`${url}/v1/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'skewed', prompt, max_tokens: MAX_TOKENS, temperature: 0, ignore_eos: true }),
      });
      expect(res.status).toBe(200);
      const { choices } = (await res.json()) as { choices: { text: string }[] };
      return choices[0]?.text ?? '';
    }),
  );
}

async function describeWorkers(): Promise<WorkerDescription[]> {
  return Promise.all(
    workers.map(async (w) => {
      const client = await connectExpertClient(w.address, { deadlineMs: 5_000 });
      try {
        return await client.describe();
      } finally {
        client.close();
      }
    }),
  );
}

describe('a gateway with --placement eplb', () => {
  it('places from the loads a static run saved from its stats, replicating the hot expert on both workers, with the monolithic engine’s greedy answers', async () => {
    const addresses = workers.map((w) => w.address).join(',');
    // 1. A static run measures the loads: its stats are the loads file.
    const staticGateway = await startGateway(dir, ['--workers', addresses]);
    gateways.push(staticGateway);
    const staticText = await complete(staticGateway.url);
    const statsFile = join(root, 'stats.json');
    await writeFile(statsFile, await (await fetch(`${staticGateway.url}/v1/switchyard/stats`)).text());
    await staticGateway.kill('SIGTERM');
    // 2. The load-aware gateway over the same workers.
    const before = await describeWorkers();
    const eplb = await startGateway(dir, [
      '--workers',
      addresses,
      '--placement',
      'eplb',
      '--expert-loads',
      statsFile,
      '--redundant-experts',
      '2',
    ]);
    gateways.push(eplb);
    // Greedy answers equal the monolithic engine's (and so the static run's).
    expect(staticText).toEqual(oracle);
    expect(await complete(eplb.url)).toEqual(oracle);
    const after = await describeWorkers();
    for (let layer = 0; layer < config.numLayers; layer++) {
      for (const [w, described] of after.entries()) {
        // Expert 0 is hot in every layer: each worker hosts it and computed part of its pairs.
        expect(described.hosted).toContainEqual({ layer, expertId: 0 });
        const served = (d: WorkerDescription | undefined) =>
          d?.tokensServed.find((t) => t.layer === layer && t.expertId === 0)?.tokens ?? 0;
        expect(served(described) - served(before[w])).toBeGreaterThan(0);
      }
    }
  }, 180_000);

  it('switches once, after the warm-up, from the static placement to one placed from its own window', async () => {
    const eplb = await startGateway(dir, [
      '--workers',
      workers.map((w) => w.address).join(','),
      '--placement',
      'eplb',
      '--eplb-warmup-s',
      '1',
      '--redundant-experts',
      '2',
    ]);
    gateways.push(eplb);
    const revision = async () =>
      ((await (await fetch(`${eplb.url}/v1/switchyard/stats`)).json()) as { placementRevision: number })
        .placementRevision;
    expect(await revision()).toBe(1);
    // Under the static (contiguous) placement expert 0 is worker 0's alone.
    expect(await complete(eplb.url)).toEqual(oracle);
    for (let i = 0; i < 100 && (await revision()) < 2; i++) await new Promise((r) => setTimeout(r, 100));
    expect(await revision()).toBe(2);
    const before = await describeWorkers();
    expect(await complete(eplb.url)).toEqual(oracle);
    const after = await describeWorkers();
    const served = (d: WorkerDescription | undefined, layer: number) =>
      d?.tokensServed.find((t) => t.layer === layer && t.expertId === 0)?.tokens ?? 0;
    for (let layer = 0; layer < config.numLayers; layer++) {
      // Worker 1 computes part of the hot expert now: the switch happened and replicas share it.
      expect(served(after[1], layer) - served(before[1], layer)).toBeGreaterThan(0);
      expect(served(after[0], layer) - served(before[0], layer)).toBeGreaterThan(0);
    }
  }, 180_000);
});
