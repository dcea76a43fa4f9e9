/**
 * KV-aware routing across gateway processes on a real nats-server: engines publish KV events and load,
 * the frontend routes a request to the engine that holds its prefix, and a request routed to an engine
 * that died before taking it is served by another, exactly.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initModelDir } from '@switchyard/model';
import { createByteTokenizer } from '@switchyard/engine';
import { startGateway, startNatsServer, type ManagedProcess, type NatsServer } from '@switchyard/launcher';
import { parseExposition } from '@switchyard/loadgen';
import { monolithicGreedy } from './helpers/oracle.ts';

const MAX_TOKENS = 8;
const tokenizer = createByteTokenizer();
let root = '';
let modelDir = '';
let nats: NatsServer;
type Gateway = ManagedProcess & { url: string };
const engines = new Map<string, Gateway>();
let frontend: Gateway;

interface Stats {
  kvCachedBlocks: number;
  kvIndexBlocks: Record<string, number>;
  routedToEngine: number;
  routedShared: number;
  rerouted: number;
  routedOverlapBlocks: number;
  takenFromOwnLane: number;
  served: number;
  liveEngines: string;
}
const stats = async (g: Gateway) => (await (await fetch(`${g.url}/v1/switchyard/stats`)).json()) as Stats;

async function complete(prompt: string): Promise<number[]> {
  const res = await fetch(`${frontend.url}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'tiny', prompt, max_tokens: MAX_TOKENS, temperature: 0, ignore_eos: true }),
  });
  expect(res.status).toBe(200);
  const body = (await res.json()) as { choices: { text: string }[] };
  return tokenizer.encode(body.choices[0]?.text ?? '');
}

async function expected(prompts: readonly string[]): Promise<number[][]> {
  const events = await monolithicGreedy(modelDir, prompts, MAX_TOKENS);
  return events.map((list) =>
    tokenizer.encode(tokenizer.decode(list.filter((e) => e.tokenId >= 0).map((e) => e.tokenId))),
  );
}

/**
 * The engine that took a prompt's blocks: waits until the frontend's index shows an engine holding at
 * least `blocks` more blocks than in `before`, and returns its name.
 */
async function holderOf(before: Record<string, number>, blocks: number): Promise<string> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const { kvIndexBlocks } = await stats(frontend);
    const found = Object.entries(kvIndexBlocks).find(([name, n]) => n - (before[name] ?? 0) >= blocks);
    if (found) return found[0];
    if (Date.now() > deadline) throw new Error(`no engine took ${blocks} blocks: ${JSON.stringify(kvIndexBlocks)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'switchyard-kvroute-'));
  modelDir = join(root, 'tiny');
  await initModelDir(modelDir, 'tiny', 21);
  nats = await startNatsServer();
  const common = ['--nats-url', nats.url, '--ack-wait-ms', '3000', '--heartbeat-ms', '500'];
  // The frontend keeps engines it has heard from for 30 s, so a killed engine is still "live" to it.
  const [a, b] = await Promise.all([
    startGateway(modelDir, [...common, '--name', 'engine-a']),
    startGateway(modelDir, [...common, '--name', 'engine-b']),
  ]);
  engines.set('engine-a', a as Gateway);
  engines.set('engine-b', b as Gateway);
  frontend = await startGateway(modelDir, [
    ...common,
    '--name',
    'frontend',
    '--no-engine',
    '--engine-ttl-ms',
    '30000',
    '--reroute-after-ms',
    '1000',
  ]);
  const deadline = Date.now() + 10_000;
  while ((await stats(frontend)).liveEngines !== 'engine-a,engine-b' && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}, 180_000);

afterAll(async () => {
  await Promise.all([...engines.values(), frontend].map((p) => p?.kill('SIGKILL')));
  await nats?.stop();
  await rm(root, { recursive: true, force: true });
});

describe('KV-aware routing (gateway processes, real nats-server)', () => {
  it('sends requests that share a cached prefix to the engine that holds it, with the monolithic tokens', async () => {
    const prefix = 'You are a careful assistant. Answer in one word. '.repeat(2); // 100 bytes: 6 full blocks
    const suffixes = ['red?', 'blue?', 'green?', 'gold?', 'grey?', 'pink?'];
    const start = await stats(frontend);
    expect(await complete(`${prefix}first`)).toEqual((await expected([`${prefix}first`]))[0]);
    const holder = await holderOf(start.kvIndexBlocks, 6);
    const before = await stats(frontend);
    const holderBefore = await stats(engines.get(holder) as Gateway);
    const prompts = suffixes.map((s) => prefix + s);
    // One after another: the holder is idle each time, and its cached prefix makes it the cheapest engine.
    const answers: number[][] = [];
    for (const prompt of prompts) answers.push(await complete(prompt));
    expect(answers).toEqual(await expected(prompts));
    const after = await stats(frontend);
    expect(after.routedToEngine - before.routedToEngine).toBe(6);
    expect(after.routedOverlapBlocks - before.routedOverlapBlocks).toBe(6 * 6);
    expect((await stats(engines.get(holder) as Gateway)).takenFromOwnLane - holderBefore.takenFromOwnLane).toBe(6);
    // The same decisions on the frontend's /metrics.
    const exposition = parseExposition(await (await fetch(`${frontend.url}/metrics`)).text());
    const sample = (name: string, labels: Record<string, string> = {}) =>
      exposition.samples.find((x) => x.name === name && Object.entries(labels).every(([k, v]) => x.labels[k] === v))
        ?.value;
    expect(sample('switchyard_router_decisions_total', { switchyard_router_target: 'engine' })).toBe(
      after.routedToEngine,
    );
    expect(sample('switchyard_router_decisions_total', { switchyard_router_target: 'shared' })).toBe(
      after.routedShared,
    );
    expect(sample('switchyard_router_overlap_blocks_total')).toBe(after.routedOverlapBlocks);
    expect(sample('switchyard_kv_index_entries')).toBeGreaterThan(0);
  }, 120_000);

  it('spreads a burst of requests for one prefix over both engines (the queue outweighs the cache), exactly', async () => {
    const prefix = 'Summarise the following report in a single sentence. '.repeat(2); // 108 bytes: 6 full blocks
    const prompts = ['alpha', 'beta', 'gamma', 'delta', 'epsilon', 'zeta'].map((s) => `${prefix}${s}`);
    const start = await stats(frontend);
    expect(await complete(`${prefix}first`)).toEqual((await expected([`${prefix}first`]))[0]);
    await holderOf(start.kvIndexBlocks, 6);
    const taken = async () =>
      Promise.all(['engine-a', 'engine-b'].map(async (n) => (await stats(engines.get(n) as Gateway)).takenFromOwnLane));
    const before = await taken();
    // Sent at once: the frontend's ledger sees each request it has sent and not yet seen answered, so the
    // second goes to the other engine (fetching or recomputing the prefix there) instead of queueing.
    expect(await Promise.all(prompts.map(complete))).toEqual(await expected(prompts));
    const after = await taken();
    expect(after.map((n, i) => n - (before[i] ?? 0)).every((n) => n > 0)).toBe(true);
    expect(after.reduce((a, b) => a + b, 0) - before.reduce((a, b) => a + b, 0)).toBe(6);
  }, 120_000);

  it('serves a request routed to an engine that died before taking it from another engine, exactly', async () => {
    const prefix = 'The quick brown fox jumps over the lazy dog; '.repeat(2); // 92 bytes: 5 full blocks
    const start = await stats(frontend);
    expect(await complete(`${prefix}one`)).toEqual((await expected([`${prefix}one`]))[0]);
    const holder = await holderOf(start.kvIndexBlocks, 6);
    const other = [...engines.keys()].find((name) => name !== holder) ?? '';
    await engines.get(holder)?.kill('SIGKILL');
    const before = await stats(frontend);
    const otherBefore = await stats(engines.get(other) as Gateway);
    const prompt = `${prefix}two`;
    expect(await complete(prompt)).toEqual((await expected([prompt]))[0]);
    const after = await stats(frontend);
    expect(after.routedToEngine - before.routedToEngine).toBe(1);
    expect(after.rerouted - before.rerouted).toBe(1);
    expect((await stats(engines.get(other) as Gateway)).served - otherBefore.served).toBe(1);
  }, 120_000);
});
