/**
 * Live re-placement (issue 14 item 4, acceptance 4): two gateway processes over the same three expert
 * workers, on one nats-server (the request queue and the placement store), serving the `skewed` preset.
 * First a worker is frozen and killed while a re-placement loads its experts: the re-placement is
 * abandoned and both gateways stay on the revision in force. Then, with the worker back and under load,
 * one gateway is asked to re-place (`switchyard rebalance`): the workers load the experts they gain while
 * serving goes on, the new revision is written to the store, and both gateways switch to it — every
 * request answered meanwhile equals the monolithic engine's.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getPreset, initModelDir } from '@switchyard/model';
import { ClusterConnection, PlacementStore } from '@switchyard/cluster';
import { connectExpertClient } from '@switchyard/rpc';
import {
  startGateway,
  startNatsServer,
  startWorker,
  startWorkerOn,
  type ManagedProcess,
  type NatsServer,
} from '@switchyard/launcher';
import { monolithicGreedy } from './helpers/oracle.ts';

const run = promisify(execFile);
const CLI = new URL('../services/cli/src/main.ts', import.meta.url).pathname;

const config = getPreset('skewed');
const PROMPTS = ['the hot expert', 'takes 41%', 'of every layer', 'while it moves'];
const MAX_TOKENS = 12;
let root = '';
let nats: NatsServer;
let workers: (ManagedProcess & { address: string; port: number })[] = [];
let dir = '';
const gateways: (ManagedProcess & { url: string })[] = [];
let oracle: string[] = [];

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'switchyard-rebalance-'));
  dir = join(root, 'skewed');
  await initModelDir(dir, 'skewed', 11);
  nats = await startNatsServer();
  workers = await Promise.all([0, 1, 2].map((i) => startWorker(dir, `rb-w${i}`)));
  const common = [
    '--workers',
    workers.map((w) => w.address).join(','),
    '--nats-url',
    nats.url,
    '--placement',
    'eplb',
    // No loads file: start on the static placement; re-place on demand only (interval 0).
    '--rebalance-interval-s',
    '0',
    '--redundant-experts',
    '3',
  ];
  for (const name of ['rb-a', 'rb-b']) gateways.push(await startGateway(dir, [...common, '--name', name]));
  oracle = (await monolithicGreedy(dir, PROMPTS, MAX_TOKENS)).map((events) => events.map((e) => e.text).join(''));
}, 180_000);

afterAll(async () => {
  await Promise.all([...gateways, ...workers].map((p) => p.kill('SIGKILL')));
  await nats?.stop();
  await rm(root, { recursive: true, force: true });
});

async function complete(url: string, prompt: string): Promise<string> {
  const res = await fetch(`${url}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'skewed', prompt, max_tokens: MAX_TOKENS, temperature: 0, ignore_eos: true }),
  });
  expect(res.status).toBe(200);
  return ((await res.json()) as { choices: { text: string }[] }).choices[0]?.text ?? '';
}

const revisionOf = async (g: { url: string }) =>
  ((await (await fetch(`${g.url}/v1/switchyard/stats`)).json()) as { placementRevision: number }).placementRevision;

/** Asks each gateway in turn until one re-places (a gateway whose engine served nothing has an empty window). */
async function rebalance(force: boolean): Promise<{ switched: boolean; revision: number; reason?: string }[]> {
  const results = [];
  for (const g of gateways) {
    const res = await fetch(`${g.url}/v1/switchyard/rebalance?force=${force}`, { method: 'POST' });
    expect(res.status).toBe(200);
    const result = (await res.json()) as { switched: boolean; revision: number; reason?: string };
    results.push(result);
    if (result.switched) break;
  }
  return results;
}

async function storedPlacement() {
  const conn = await ClusterConnection.open({ url: nats.url, name: 'rebalance-test' });
  try {
    return (await (await PlacementStore.open(conn)).get('skewed'))?.placement;
  } finally {
    await conn.close(1_000);
  }
}

async function waitFor(what: string, ms: number, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe('live re-placement over two gateways', () => {
  it('leaves the revision in force on both gateways when a worker dies while a re-placement loads', async () => {
    // Traffic first, so the windows hold the skewed loads (expert 0 takes ~41% of each layer's pairs).
    for (const [i, p] of PROMPTS.entries()) expect(await complete(gateways[i % 2]?.url ?? '', p)).toBe(oracle[i]);
    const victim = workers[1];
    if (!victim) throw new Error('no worker 1');
    // Frozen: the re-placement's LoadExperts to it hangs until it is killed.
    victim.child.kill('SIGSTOP');
    const pending = rebalance(true);
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    await victim.kill('SIGKILL');
    const results = await pending;
    expect(
      results.every((r) => !r.switched),
      JSON.stringify(results),
    ).toBe(true);
    expect(
      results.some((r) => /stays in force/.test(r.reason ?? '')),
      JSON.stringify(results),
    ).toBe(true);
    expect(await Promise.all(gateways.map(revisionOf))).toEqual([1, 1]);
    expect((await storedPlacement())?.revision).toBe(1);
    // The worker comes back on its address; the gateways' health probes give it its experts again.
    workers[1] = await startWorkerOn(victim.port, dir, 'rb-w1');
    await waitFor('the restarted worker reloaded', 20_000, async () => {
      const client = await connectExpertClient(workers[1]?.address ?? '', { deadlineMs: 5_000 });
      try {
        return (await client.describe()).hosted.length > 0;
      } finally {
        client.close();
      }
    });
  }, 120_000);

  it('re-places under load without a failed or different answer, and both gateways take the new revision', async () => {
    // Load that runs through the re-placement: every answer must stay the monolithic engine's.
    let stop = false;
    const answers: { prompt: number; text: string }[] = [];
    const load = (async () => {
      for (let i = 0; !stop; i++) {
        const prompt = i % PROMPTS.length;
        const g = gateways[i % gateways.length];
        answers.push({ prompt, text: await complete(g?.url ?? '', PROMPTS[prompt] ?? '') });
      }
    })();
    await waitFor('some answers before the re-placement', 20_000, async () => answers.length >= PROMPTS.length);
    // From the CLI, as an operator would.
    const { stdout } = await run(process.execPath, [CLI, 'rebalance', '--url', gateways[0]?.url ?? '', '--json']);
    const result = JSON.parse(stdout) as { switched: boolean; revision: number; before: number; after: number };
    expect(result, stdout).toMatchObject({ switched: true, revision: 2 });
    expect(result.after).toBeGreaterThan(result.before);
    await waitFor('both gateways on revision 2', 10_000, async () =>
      (await Promise.all(gateways.map(revisionOf))).every((r) => r === 2),
    );
    // More load on the new placement, then stop.
    const served = answers.length;
    await waitFor('answers on the new placement', 30_000, async () => answers.length >= served + 2 * PROMPTS.length);
    stop = true;
    await load;
    expect(answers.filter((a) => a.text !== oracle[a.prompt])).toEqual([]);
    // Each gateway's cluster load is its own window plus the other's (exchanged over NATS every 2 s).
    type LoadStats = { expertLoad: number[][]; clusterExpertLoad: number[][]; clusterExpertLoadEngines: string };
    const loadStats = () =>
      Promise.all(gateways.map(async (g) => (await (await fetch(`${g.url}/v1/switchyard/stats`)).json()) as LoadStats));
    await waitFor('each gateway to count the other’s window', 15_000, async () => {
      const [a, b] = await loadStats();
      if (!a || !b) return false;
      const sum = a.expertLoad.map((row, l) => row.map((x, e) => x + (b.expertLoad[l]?.[e] ?? 0)));
      return (
        JSON.stringify(a.clusterExpertLoad) === JSON.stringify(sum) &&
        JSON.stringify(b.clusterExpertLoad) === JSON.stringify(sum)
      );
    });
    const [a] = await loadStats();
    expect(a?.clusterExpertLoadEngines).toBe('rb-a,rb-b');
    // The store holds revision 2, with the hot expert (0) on more than one worker in every layer.
    const stored = await storedPlacement();
    expect(stored?.revision).toBe(2);
    for (let layer = 0; layer < config.numLayers; layer++)
      expect(stored?.replicas[layer]?.[0]?.length ?? 0).toBeGreaterThan(1);
  }, 180_000);
});
