/**
 * A frontend killed mid-stream: nobody reads the request's tokens any more. The engine notices the
 * frontend’s heartbeats stopped (1.5 s) and stops the request, acking its message, so it is neither
 * generated to the end nor replayed later for nobody (issue 13: it was replayed ≈ 30 s later).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initModelDir } from '@switchyard/model';
import { startGateway, startNatsServer, type ManagedProcess, type NatsServer } from '@switchyard/launcher';

let root = '';
let nats: NatsServer;
let engine: ManagedProcess & { url: string };
let frontend: ManagedProcess & { url: string };

interface Stats {
  serving: number;
  served: number;
  orphansStopped: number;
}
const stats = async (url: string) => (await (await fetch(`${url}/v1/switchyard/stats`)).json()) as Stats;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'switchyard-fdeath-'));
  const modelDir = join(root, 'small');
  await initModelDir(modelDir, 'small', 17);
  nats = await startNatsServer();
  const common = ['--nats-url', nats.url, '--ack-wait-ms', '3000', '--heartbeat-ms', '500'];
  engine = await startGateway(modelDir, [...common, '--name', 'engine-0']);
  frontend = await startGateway(modelDir, [...common, '--name', 'frontend-0', '--no-engine']);
}, 180_000);

afterAll(async () => {
  await Promise.all([engine, frontend].map((p) => p?.kill('SIGKILL')));
  await nats?.stop();
  await rm(root, { recursive: true, force: true });
});

async function waitFor<T>(what: string, ms: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('a frontend killed mid-stream', () => {
  it('has its request stopped by the engine within seconds, and never replayed', async () => {
    const res = await fetch(`${frontend.url}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      // Long enough to run for many seconds on `small`.
      body: JSON.stringify({
        model: 'small',
        prompt: 'a long story',
        max_tokens: 1500,
        ignore_eos: true,
        stream: true,
      }),
    });
    const reader = res.body?.getReader();
    await reader?.read();
    await waitFor('the engine to serve the request', 10_000, async () =>
      (await stats(engine.url)).serving > 0 ? true : undefined,
    );
    await frontend.kill('SIGKILL');
    const killedAt = Date.now();
    await waitFor('the engine to stop the orphaned request', 6_000, async () =>
      (await stats(engine.url)).serving === 0 ? true : undefined,
    );
    const stoppedAfterMs = Date.now() - killedAt;
    process.stderr.write(`frontend killed: the engine stopped its request after ${stoppedAfterMs} ms\n`);
    expect(stoppedAfterMs).toBeLessThan(4_000);
    const after = await stats(engine.url);
    expect(after.orphansStopped).toBe(1);
    // Past the 3 s ack wait: the message was acked, so nothing comes back to be replayed.
    await new Promise((resolve) => setTimeout(resolve, 4_000));
    const later = await stats(engine.url);
    expect(later.serving).toBe(0);
    expect(later.served).toBe(after.served);
  }, 60_000);
});
