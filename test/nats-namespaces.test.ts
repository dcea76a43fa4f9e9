/**
 * Two `switchyard up` clusters on one broker, serving the same model name (`tiny`) with different weights:
 * each run gets its own namespace, so every answer comes from its own cluster's weights (before
 * namespaces both shared the consumer `engines-tiny` and 6 of 10 answers came from the other cluster).
 * A request that names other weights than an engine's is refused with `weights_mismatch`, never served.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initModelDir } from '@switchyard/model';
import { createByteTokenizer, resolveSamplingParams, type TokenEvent } from '@switchyard/engine';
import { ClusterConnection, RequestQueue, TokenSubscriber } from '@switchyard/cluster';
import { freePort, REPO_ROOT, startNatsServer, type NatsServer } from '@switchyard/launcher';
import { monolithicGreedy } from './helpers/oracle.ts';

const MAX_TOKENS = 8;
const NUM_REQUESTS = 20;
const tokenizer = createByteTokenizer();

interface Up {
  readonly child: ChildProcess;
  readonly url: string;
  readonly modelDir: string;
  out: string;
}

let root = '';
let nats: NatsServer;
const ups: Up[] = [];

async function until<T>(what: string, ms: number, probe: () => T | undefined, log: () => string): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}:\n${log().slice(-3000)}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function startUp(modelDir: string): Promise<Up> {
  const port = await freePort();
  const child = spawn(
    process.execPath,
    ['services/cli/src/main.ts', 'up', '--model', modelDir, '--workers', '1', '--port', String(port)],
    {
      cwd: REPO_ROOT,
      env: withoutNamespace({ ...process.env, NATS_URL: nats.url }),
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const up: Up = { child, url: `http://127.0.0.1:${port}`, modelDir, out: '' };
  child.stdout?.on('data', (d: Buffer) => (up.out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (up.out += d.toString()));
  ups.push(up);
  await until(
    'up to be ready',
    120_000,
    () => (up.out.includes('Press Ctrl-C') ? true : undefined),
    () => up.out,
  );
  return up;
}

/** Each `up` must choose its own namespace: none is inherited from the test's environment. */
function withoutNamespace(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const { SWITCHYARD_NAMESPACE: _, ...rest } = env;
  return rest;
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

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'switchyard-ns-'));
  await Promise.all([initModelDir(join(root, 'a'), 'tiny', 11), initModelDir(join(root, 'b'), 'tiny', 12)]);
  nats = await startNatsServer();
  // One after the other: two clusters starting at once on 2 cores only slow each other down.
  await startUp(join(root, 'a'));
  await startUp(join(root, 'b'));
}, 300_000);

afterAll(async () => {
  for (const up of ups) if (up.child.exitCode === null) up.child.kill('SIGKILL');
  await nats?.stop();
  await rm(root, { recursive: true, force: true });
});

describe('two clusters on one broker', () => {
  it('each run of up takes a fresh namespace of its own', () => {
    const namespaces = ups.map((up) => /namespace (\S+) on NATS/.exec(up.out)?.[1]);
    expect(namespaces[0]).toMatch(/^run-[0-9a-f]{8}$/);
    expect(namespaces[1]).toMatch(/^run-[0-9a-f]{8}$/);
    expect(namespaces[0]).not.toBe(namespaces[1]);
  });

  it('answers every request from its own weights (20 each, equal to its own monolithic engine)', async () => {
    const prompts = Array.from({ length: NUM_REQUESTS }, (_, i) => `request ${i}: the quick brown fox`);
    for (const up of ups) {
      const expected = (await monolithicGreedy(up.modelDir, prompts, MAX_TOKENS)).map((events) =>
        events.filter((e) => e.tokenId >= 0).map((e) => e.tokenId),
      );
      // Both clusters loaded at once: the other cluster has requests in flight while this one answers.
      const [own] = await Promise.all([
        Promise.all(prompts.map((p) => complete(up.url, p))),
        Promise.all(prompts.map((p) => complete((ups.find((u) => u !== up) ?? up).url, p))),
      ]);
      expect(own).toEqual(expected.map((ids) => tokenizer.encode(tokenizer.decode(ids))));
    }
    // The two weights really differ: otherwise the test proves nothing.
    const a = await monolithicGreedy(ups[0]?.modelDir ?? '', prompts.slice(0, 4), MAX_TOKENS);
    const b = await monolithicGreedy(ups[1]?.modelDir ?? '', prompts.slice(0, 4), MAX_TOKENS);
    expect(a.map((e) => e.map((t) => t.tokenId))).not.toEqual(b.map((e) => e.map((t) => t.tokenId)));
  }, 180_000);

  it('an engine refuses a request queued for other weights with weights_mismatch, and serves on', async () => {
    const up = ups[0];
    const namespace = /namespace (\S+) on NATS/.exec(up?.out ?? '')?.[1];
    expect(namespace).toBeDefined();
    const conn = await ClusterConnection.open({ url: nats.url, name: 'ns-test', namespace: namespace ?? '' });
    try {
      const queue = await RequestQueue.open(conn);
      const tokens = new TokenSubscriber(conn);
      const events: TokenEvent[] = [];
      const done = new Promise<void>((resolve) => {
        tokens.open('other-weights-1', (event) => {
          events.push(event);
          if (event.finishReason !== undefined) resolve();
        });
      });
      await queue.publish({
        id: 'other-weights-1',
        promptIds: [72, 105],
        params: resolveSamplingParams({ maxTokens: 4, temperature: 0 }),
        model: 'tiny',
        createdAtMs: Date.now(),
        weightsDigest: 'f'.repeat(64),
      });
      await done;
      expect(events).toHaveLength(1);
      expect(events[0]?.finishReason).toBe('error');
      expect(events[0]?.error?.message).toMatch(/other weights|weights/);
      expect((events[0]?.error as { remoteCode?: string } | undefined)?.remoteCode).toBe('weights_mismatch');
      // And the cluster still serves (complete() checks the status and the token count).
      await complete(up?.url ?? '', 'still serving');
    } finally {
      await conn.close();
    }
  }, 60_000);
});
