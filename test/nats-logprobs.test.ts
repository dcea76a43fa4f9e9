/**
 * `n`, `logprobs` and `echo` through the NATS request queue (a frontend-only gateway and an engine
 * gateway, separate processes, a real nats-server) answer what a gateway with its own engine answers:
 * the same choices, texts, tokens and finish reasons, and the same logprobs.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initModelDir } from '@switchyard/model';
import { startGateway, startNatsServer, type ManagedProcess, type NatsServer } from '@switchyard/launcher';

let root = '';
let nats: NatsServer;
const procs: ManagedProcess[] = [];
let inProcess: ManagedProcess & { url: string };
let frontend: ManagedProcess & { url: string };

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'switchyard-natslp-'));
  const modelDir = join(root, 'tiny');
  await initModelDir(modelDir, 'tiny', 13);
  nats = await startNatsServer();
  const queue = ['--nats-url', nats.url, '--ack-wait-ms', '2000', '--heartbeat-ms', '500'];
  const [local, engine] = await Promise.all([
    startGateway(modelDir, ['--name', 'local']),
    startGateway(modelDir, [...queue, '--name', 'engine']),
  ]);
  procs.push(local, engine);
  inProcess = local;
  frontend = await startGateway(modelDir, [...queue, '--name', 'frontend', '--no-engine']);
  procs.push(frontend);
}, 180_000);

afterAll(async () => {
  await Promise.all(procs.map((p) => p.kill('SIGKILL')));
  await nats?.stop();
  await rm(root, { recursive: true, force: true });
});

/** The answer without what differs per response by design (id, creation time). */
async function answer(url: string, path: string, body: object): Promise<unknown> {
  const res = await fetch(`${url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'tiny', ...body }),
  });
  const text = await res.text();
  expect(res.status, text).toBe(200);
  if (text.startsWith('data: ')) {
    return text
      .split('\n\n')
      .filter((s) => s.startsWith('data: {'))
      .map((s) => withoutIdentity(JSON.parse(s.slice(6))));
  }
  return withoutIdentity(JSON.parse(text));
}

function withoutIdentity(value: unknown): unknown {
  const { id: _id, created: _created, ...rest } = value as Record<string, unknown>;
  return rest;
}

/**
 * Equal in structure, strings and integers, and logprobs within 1e-5: the engines batch the choices
 * differently (over the queue they arrive one by one), and onnxruntime may round a row differently in
 * another batch shape.
 */
function expectSame(actual: unknown, expected: unknown, path = '$'): void {
  if (typeof expected === 'number' && !Number.isInteger(expected)) {
    expect(typeof actual, path).toBe('number');
    expect(Math.abs((actual as number) - expected), path).toBeLessThan(1e-5);
    return;
  }
  if (typeof expected !== 'object' || expected === null) {
    expect(actual, path).toEqual(expected);
    return;
  }
  expect(typeof actual === 'object' && actual !== null, path).toBe(true);
  const a = actual as Record<string, unknown>;
  const e = expected as Record<string, unknown>;
  expect(Object.keys(a).sort(), path).toEqual(Object.keys(e).sort());
  for (const key of Object.keys(e)) expectSame(a[key], e[key], `${path}.${key}`);
}

describe('logprobs and n through the NATS queue', () => {
  it.each([
    [
      'completions, n = 3 sampled with a seed, logprobs 2',
      '/v1/completions',
      { prompt: 'The queue carries', n: 3, max_tokens: 6, temperature: 0.9, seed: 4, logprobs: 2, ignore_eos: true },
    ],
    [
      'completions, a batch of two prompts × n = 2, streamed',
      '/v1/completions',
      {
        prompt: ['alpha', 'beta gamma'],
        n: 2,
        max_tokens: 4,
        temperature: 0.7,
        seed: 8,
        logprobs: 1,
        stream: true,
        stream_options: { include_usage: true },
        ignore_eos: true,
      },
    ],
    [
      'completions, echo with max_tokens 0 (prompt scoring), logprobs 3',
      '/v1/completions',
      { prompt: 'Score this prompt, token by token', max_tokens: 0, echo: true, logprobs: 3 },
    ],
    [
      'chat, n = 2, logprobs with top_logprobs 3, streamed',
      '/v1/chat/completions',
      {
        messages: [{ role: 'user', content: 'hello there' }],
        n: 2,
        max_tokens: 5,
        temperature: 0.8,
        seed: 21,
        logprobs: true,
        top_logprobs: 3,
        stream: true,
        ignore_eos: true,
      },
    ],
  ])(
    '%s: the same answer as the in-process engine',
    async (_what, path, body) => {
      const expected = await answer(inProcess.url, path, body);
      const actual = await answer(frontend.url, path, body);
      if (Array.isArray(expected)) {
        // Streams interleave choices as their tokens come: compare each choice's chunks in order.
        const byChoice = (chunks: unknown) =>
          (chunks as { choices: { index: number }[]; usage?: unknown }[]).reduce<Record<string, unknown[]>>(
            (acc, chunk) => {
              for (const choice of chunk.choices) (acc[choice.index] ??= []).push(choice);
              if (chunk.usage) (acc['usage'] ??= []).push(chunk.usage);
              return acc;
            },
            {},
          );
        expectSame(byChoice(actual), byChoice(expected));
      } else {
        expectSame(actual, expected);
      }
    },
    60_000,
  );
});
