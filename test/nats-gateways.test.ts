import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initModelDir } from '@switchyard/model';
import { createByteTokenizer } from '@switchyard/engine';
import { monolithicGreedy } from './helpers/oracle.ts';
import { streamThroughKill } from './helpers/stream-kill.ts';
import {
  startGateway,
  startProcess,
  startWorker,
  freePort,
  type ManagedProcess,
  startNatsServer,
  type NatsServer,
} from '@switchyard/launcher';

const MAX_TOKENS = 24;
const tokenizer = createByteTokenizer();
let root = '';
let modelDir = '';
let nats: NatsServer;
const procs: ManagedProcess[] = [];
let workers: string[] = [];
let engines: (ManagedProcess & { url: string })[] = [];
let frontend: ManagedProcess & { url: string };

async function expectedTokens(prompts: readonly string[]): Promise<number[][]> {
  return (await monolithicGreedy(modelDir, prompts, MAX_TOKENS)).map((events) =>
    events.filter((e) => e.tokenId >= 0).map((e) => e.tokenId),
  );
}

async function complete(url: string, prompt: string): Promise<number[]> {
  const res = await fetch(`${url}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'tiny', prompt, max_tokens: MAX_TOKENS, temperature: 0, ignore_eos: true }),
  });
  expect(res.status).toBe(200);
  const body = (await res.json()) as { choices: { text: string }[]; usage: { completion_tokens: number } };
  expect(body.usage.completion_tokens).toBe(MAX_TOKENS);
  return tokenizer.encode(body.choices[0]?.text ?? '');
}

interface Stats {
  served: number;
  serving: number;
  kvCachedBlocks: number;
  kvIndexBlocks: Record<string, number>;
}
const stats = async (url: string) => (await (await fetch(`${url}/v1/switchyard/stats`)).json()) as Stats;
const isAlive = (p: ManagedProcess) => p.child.exitCode === null && p.child.signalCode === null;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'switchyard-natsgw-'));
  modelDir = join(root, 'tiny');
  await initModelDir(modelDir, 'tiny', 9);
  nats = await startNatsServer();
  const ws = await Promise.all([startWorker(modelDir, 'nw0'), startWorker(modelDir, 'nw1')]);
  procs.push(...ws);
  workers = ws.map((w) => w.address);
  const common = [
    '--workers',
    workers.join(','),
    '--nats-url',
    nats.url,
    '--ack-wait-ms',
    '2000',
    '--heartbeat-ms',
    '500',
  ];
  engines = await Promise.all([
    startGateway(modelDir, [...common, '--name', 'engine-a']),
    startGateway(modelDir, [...common, '--name', 'engine-b']),
  ]);
  frontend = await startGateway(modelDir, [...common, '--name', 'frontend', '--no-engine']);
  procs.push(...engines, frontend);
}, 180_000);

afterAll(async () => {
  await Promise.all(procs.map((p) => p.kill('SIGKILL')));
  await nats?.stop();
  await rm(root, { recursive: true, force: true });
});

describe('gateways behind the NATS request queue (separate processes, real nats-server)', () => {
  it('serves 50 requests sent to both frontends with the monolithic engine’s tokens, and each engine serves some', async () => {
    const prompts = Array.from({ length: 50 }, (_, i) => `request ${i} to the cluster`);
    const expected = await expectedTokens(prompts);
    const actual: number[][] = new Array(prompts.length);
    for (let i = 0; i < prompts.length; i += 10) {
      await Promise.all(
        prompts.slice(i, i + 10).map(async (p, j) => {
          actual[i + j] = await complete(engines[(i + j) % 2]?.url ?? '', p);
        }),
      );
    }
    expect(actual).toEqual(expected.map((ids) => tokenizer.encode(tokenizer.decode(ids))));
    const [a, b] = await Promise.all(engines.map((e) => stats(e.url)));
    expect(a?.served).toBeGreaterThan(0);
    expect(b?.served).toBeGreaterThan(0);
    expect((a?.served ?? 0) + (b?.served ?? 0)).toBe(50);
  }, 240_000);

  it('shows the frontend, from the engines’ KV events, exactly which blocks each engine’s cache holds', async () => {
    await Promise.all(
      ['kv events '.repeat(10), 'another prefix '.repeat(8), 'third '.repeat(20)].map((p) => complete(frontend.url, p)),
    );
    const named = (['engine-a', 'engine-b'] as const).map((name, i) => ({ name, engine: engines[i] }));
    const live = named.filter(
      (n): n is { name: (typeof n)['name']; engine: ManagedProcess & { url: string } } =>
        n.engine !== undefined && isAlive(n.engine),
    );
    expect(live.length).toBeGreaterThan(0);
    // The index follows the caches within a few publish intervals (50 ms each).
    const deadline = Date.now() + 10_000;
    let mismatch: string;
    for (;;) {
      const front = await stats(frontend.url);
      const own = await Promise.all(live.map((n) => stats(n.engine.url)));
      mismatch = live
        .map((n, i) => ({ name: n.name, indexed: front.kvIndexBlocks[n.name] ?? 0, cached: own[i]?.kvCachedBlocks }))
        .filter((m) => m.indexed !== m.cached)
        .map((m) => `${m.name}: index ${m.indexed}, cache ${m.cached}`)
        .join('; ');
      if (mismatch === '' || Date.now() > deadline) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(mismatch).toBe('');
    const front = await stats(frontend.url);
    expect(Object.values(front.kvIndexBlocks).reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
  }, 60_000);

  it('finishes a streaming request exactly — no gap, no duplicate — after kill -9 of the engine serving it', async () => {
    const prompt = 'survive the loss of an engine';
    const [expected] = await expectedTokens([prompt]);
    const { killed, events, text } = await streamThroughKill(
      frontend.url,
      { model: 'tiny', prompt, max_tokens: MAX_TOKENS, temperature: 0, ignore_eos: true },
      async () => {
        const serving = await Promise.all(engines.map(async (e) => ({ e, s: await stats(e.url) })));
        const victim = serving.find((x) => x.s.serving > 0)?.e;
        expect(victim).toBeDefined();
        await victim?.kill('SIGKILL');
        return victim?.url ?? '';
      },
    );
    expect(killed).not.toBe('');
    expect(events.at(-1)).toBe('[DONE]');
    expect(tokenizer.encode(text)).toEqual(tokenizer.encode(tokenizer.decode(expected ?? [])));
  }, 120_000);

  it('refuses to start with wrong NATS credentials, naming NATS and the URL but not the secret', async () => {
    const secured = await startNatsServer({ user: 'switchyard', pass: 'right-password' });
    try {
      const port = await freePort();
      const env = { NATS_USER: 'switchyard', NATS_PASSWORD: 'wrong-password-123' };
      const attempt = startProcess(
        'services/gateway/src/main.ts',
        ['--model', modelDir, '--port', String(port), '--nats-url', secured.url],
        'gateway serving',
        30_000,
        { env },
      );
      const error = await attempt.then(
        async (p) => {
          await p.kill();
          return undefined;
        },
        (e: unknown) => e as Error,
      );
      expect(error?.message).toMatch(/exited \(code 2\) before it was ready/);
      expect(error?.message).toMatch(/NATS/);
      expect(error?.message).toContain(secured.url.replace(/^nats:\/\//, ''));
      expect(error?.message).not.toContain('wrong-password-123');
    } finally {
      await secured.stop();
    }
  }, 60_000);
});
