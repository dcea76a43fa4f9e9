/**
 * An engine killed mid-stream, with the queue's default 30 s ack wait: the frontend notices the engine is
 * gone from its load reports (TTL 2 s) and publishes its routed requests again at once; another engine
 * replays them and the client's stream stays exact (no gap, no duplicate). Before, a routed request
 * waited for the frontend's 5 s silence watchdog (measured here: a 5.4 s stall), and one on the shared
 * subject for the whole ack wait (issue 13: 29.9–30.4 s).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initModelDir } from '@switchyard/model';
import { createByteTokenizer } from '@switchyard/engine';
import { startGateway, startNatsServer, startWorker, type ManagedProcess, type NatsServer } from '@switchyard/launcher';
import { monolithicGreedy } from './helpers/oracle.ts';
import { streamThroughKill } from './helpers/stream-kill.ts';

const MAX_TOKENS = 48;
const tokenizer = createByteTokenizer();
let root = '';
let modelDir = '';
let nats: NatsServer;
const procs: ManagedProcess[] = [];
let engines: (ManagedProcess & { url: string })[] = [];
let frontend: ManagedProcess & { url: string };

const stats = async (url: string) =>
  (await (await fetch(`${url}/v1/switchyard/stats`)).json()) as { serving: number; rerouted: number };

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'switchyard-death-'));
  modelDir = join(root, 'tiny');
  await initModelDir(modelDir, 'tiny', 13);
  nats = await startNatsServer();
  // Experts on workers: each step makes gRPC calls, slow enough to kill the engine mid-stream.
  const ws = await Promise.all([startWorker(modelDir, 'dw0'), startWorker(modelDir, 'dw1')]);
  procs.push(...ws);
  // The queue's defaults: a 30 s ack wait, heartbeats every 10 s.
  const common = ['--workers', ws.map((w) => w.address).join(','), '--nats-url', nats.url];
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

describe('an engine killed mid-stream (default ack wait)', () => {
  it('is replaced once its load reports stop (2 s), not after 5 s of silence or the ack wait, exactly', async () => {
    const prompt = 'keep streaming when the engine dies';
    const [oracle] = await monolithicGreedy(modelDir, [prompt], MAX_TOKENS);
    const expected = tokenizer.encode(
      tokenizer.decode((oracle ?? []).filter((e) => e.tokenId >= 0).map((e) => e.tokenId)),
    );
    const { killed, stallMs, events, text } = await streamThroughKill(
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
    process.stderr.write(`engine killed mid-stream: the client's stream stalled ${stallMs.toFixed(0)} ms\n`);
    // The frontend's engine TTL is 2 s (measured 2.0 s); the silence watchdog it beat needs 5 s.
    expect(stallMs).toBeLessThan(4_500);
    expect(events.at(-1)).toBe('[DONE]');
    expect(tokenizer.encode(text)).toEqual(expected);
    expect((await stats(frontend.url)).rerouted).toBe(1);
  }, 120_000);
});
