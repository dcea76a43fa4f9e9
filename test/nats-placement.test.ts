import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initModelDir } from '@switchyard/model';
import { monolithicGreedy } from './helpers/oracle.ts';
import { startGateway, startWorker, type ManagedProcess, startNatsServer, type NatsServer } from '@switchyard/launcher';

const TTL_MS = 2000;
const MAX_TOKENS = 40;
let root = '';
let modelDir = '';
let nats: NatsServer;
const procs: ManagedProcess[] = [];
let gateway: ManagedProcess & { url: string };

const workerEnv = () => ({ SWITCHYARD_REGISTRY_TTL_MS: String(TTL_MS) });
const register = (id: string) => startWorker(modelDir, id, ['--nats-url', nats.url], workerEnv());

async function expectedTexts(prompts: readonly string[]): Promise<string[]> {
  return (await monolithicGreedy(modelDir, prompts, MAX_TOKENS)).map((events) => events.map((e) => e.text).join(''));
}

/** A streaming completion; resolves with its text once [DONE] arrives. */
async function stream(prompt: string): Promise<string> {
  const res = await fetch(`${gateway.url}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      model: 'tiny',
      prompt,
      max_tokens: MAX_TOKENS,
      temperature: 0,
      ignore_eos: true,
      stream: true,
    }),
  });
  const events = (await res.text())
    .split('\n\n')
    .filter((s) => s.startsWith('data: '))
    .map((s) => s.slice(6));
  expect(events.at(-1)).toBe('[DONE]');
  return events
    .slice(0, -1)
    .map((e) => (JSON.parse(e) as { choices: { text: string }[] }).choices[0]?.text ?? '')
    .join('');
}

const stats = async () =>
  (await (await fetch(`${gateway.url}/v1/switchyard/stats`)).json()) as {
    placementRevision: number;
    placementWorkers: string;
  };

async function waitFor(check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const started = Date.now();
  while (!(await check())) {
    if (Date.now() - started > timeoutMs) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'switchyard-placement-'));
  modelDir = join(root, 'tiny');
  await initModelDir(modelDir, 'tiny', 13);
  nats = await startNatsServer();
  procs.push(...(await Promise.all(['pw0', 'pw1', 'pw2'].map(register))));
  gateway = await startGateway(modelDir, [
    '--nats-url',
    nats.url,
    '--discover-workers',
    '3',
    '--replication',
    '2',
    '--registry-ttl-ms',
    String(TTL_MS),
    '--ack-wait-ms',
    '5000',
  ]);
  procs.push(gateway);
}, 180_000);

afterAll(async () => {
  await Promise.all(procs.map((p) => p.kill('SIGKILL')));
  await nats?.stop();
  await rm(root, { recursive: true, force: true });
});

describe('worker registry and placement store (separate processes, real nats-server)', () => {
  // NOTE: one test, in steps: each placement revision follows from the one before (3 workers → one
  // killed → one joins), so splitting the steps into tests would make each depend on the previous one.
  it('places experts over the registered workers, re-places them when a worker is killed or joins under load, and loses no request', async () => {
    // Step 1: the first placement covers the three registered workers.
    let s = await stats();
    expect(s.placementRevision).toBe(1);
    expect(s.placementWorkers).toBe('pw0,pw1,pw2');

    // Step 2: kill pw2 under load. It leaves the registry within the TTL (a few heartbeats), the
    // experts are re-placed over pw0 and pw1 (revision 2), and every stream is exact.
    const lossPrompts = Array.from({ length: 8 }, (_, i) => `worker loss ${i}`);
    const lossExpected = await expectedTexts(lossPrompts);
    const duringLoss = Promise.all(lossPrompts.map(stream));
    await new Promise((r) => setTimeout(r, 300));
    await procs[2]?.kill('SIGKILL');
    const killedAt = Date.now();
    expect(await duringLoss).toEqual(lossExpected);
    await waitFor(async () => !(await stats()).placementWorkers.includes('pw2'), TTL_MS * 4);
    expect(Date.now() - killedAt).toBeLessThan(TTL_MS * 4);
    s = await stats();
    expect(s.placementRevision).toBe(2);
    expect(s.placementWorkers).toBe('pw0,pw1');

    // Step 3: pw3 joins under load: revision 3 includes it, and every stream is exact.
    const joinPrompts = Array.from({ length: 8 }, (_, i) => `worker join ${i}`);
    const joinExpected = await expectedTexts(joinPrompts);
    const duringJoin = Promise.all(joinPrompts.map(stream));
    procs.push(await register('pw3'));
    await waitFor(async () => (await stats()).placementWorkers.includes('pw3'), 30_000);
    expect(await duringJoin).toEqual(joinExpected);
    s = await stats();
    expect(s.placementRevision).toBe(3);
    expect(s.placementWorkers).toBe('pw0,pw1,pw3');
    expect(await stream('after the change')).toEqual((await expectedTexts(['after the change']))[0]);
  }, 240_000);
});
