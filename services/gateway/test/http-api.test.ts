import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { getPreset, randomWeights } from '@switchyard/model';
import { EngineLoop, type EngineBundle } from '@switchyard/engine';
import { createEngine } from '@switchyard/onnx';
import { createHttpServer } from '../src/http/server.ts';
import { LocalBackend } from '../src/local-backend.ts';

const config = getPreset('tiny');
const model = { config, weights: randomWeights(config, 3), weightsDigest: 'cd'.repeat(32) };

let bundle: EngineBundle;
let loop: EngineLoop;
let backend: LocalBackend;
let app: FastifyInstance;
let baseUrl: string;

beforeAll(async () => {
  bundle = await createEngine(model, {
    expertDtype: 'fp32',
    denseDtype: 'fp32',
    blockSize: 4,
    scheduler: { maxBatchedTokens: 128, maxRunningSequences: 8 },
  });
  loop = new EngineLoop(bundle.engine);
  backend = new LocalBackend(bundle, loop, 16);
  app = createHttpServer({ backend, bodyLimitBytes: 64 * 1024 });
  baseUrl = await app.listen({ host: '127.0.0.1', port: 0 });
});

afterAll(async () => {
  await app.close();
  await loop.stop();
  await bundle.close();
});

const post = (path: string, body: unknown) =>
  fetch(`${baseUrl}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });

async function sseEvents(res: Response): Promise<string[]> {
  const text = await res.text();
  return text
    .split('\n\n')
    .filter((s) => s.startsWith('data: '))
    .map((s) => s.slice(6));
}

describe('OpenAI HTTP API', () => {
  it('answers a non-streaming completion with the OpenAI shape and exact usage', async () => {
    const res = await post('/v1/completions', {
      model: 'tiny',
      prompt: 'Hello there',
      max_tokens: 7,
      temperature: 0,
      ignore_eos: true,
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as {
      object: string;
      id: string;
      choices: { text: string; finish_reason: string; index: number }[];
      usage: Record<string, number>;
    };
    expect(body.object).toBe('text_completion');
    expect(body.id).toMatch(/^cmpl-/);
    expect(body.choices[0]?.finish_reason).toBe('length');
    expect(body.usage).toMatchObject({ prompt_tokens: 11, completion_tokens: 7, total_tokens: 18 });
  });

  it('streams a completion as SSE chunks ending in [DONE], with usage when asked, and the same text', async () => {
    const request = { model: 'tiny', prompt: 'Hello there', max_tokens: 7, temperature: 0, ignore_eos: true };
    const plain = (await (await post('/v1/completions', request)).json()) as { choices: { text: string }[] };
    const res = await post('/v1/completions', { ...request, stream: true, stream_options: { include_usage: true } });
    expect(res.headers.get('content-type')).toContain('text/event-stream');
    const events = await sseEvents(res);
    expect(events.at(-1)).toBe('[DONE]');
    const chunks = events.slice(0, -1).map(
      (e) =>
        JSON.parse(e) as {
          choices: { text: string; finish_reason: string | null }[];
          usage?: Record<string, number>;
        },
    );
    const usageChunk = chunks.at(-1);
    expect(usageChunk?.choices).toEqual([]);
    expect(usageChunk?.usage).toMatchObject({ prompt_tokens: 11, completion_tokens: 7, total_tokens: 18 });
    const text = chunks
      .slice(0, -1)
      .map((c) => c.choices[0]?.text ?? '')
      .join('');
    expect(text).toBe(plain.choices[0]?.text);
    expect(chunks.at(-2)?.choices[0]?.finish_reason).toBe('length');
  });

  it('answers chat completions, streaming and not', async () => {
    const request = {
      model: 'tiny',
      messages: [{ role: 'user', content: 'hi' }],
      max_tokens: 5,
      temperature: 0,
      ignore_eos: true,
    };
    const res = await post('/v1/chat/completions', request);
    const body = (await res.json()) as {
      object: string;
      choices: { message: { role: string; content: string } }[];
      usage: { completion_tokens: number };
    };
    expect(body.object).toBe('chat.completion');
    expect(body.choices[0]?.message.role).toBe('assistant');
    expect(body.usage.completion_tokens).toBe(5);
    const events = await sseEvents(await post('/v1/chat/completions', { ...request, stream: true }));
    expect(events.at(-1)).toBe('[DONE]');
    const chunks = events
      .slice(0, -1)
      .map((e) => JSON.parse(e) as { object: string; choices: { delta: { role?: string; content?: string } }[] });
    expect(chunks[0]?.choices[0]?.delta.role).toBe('assistant');
    expect(chunks.every((c) => c.object === 'chat.completion.chunk')).toBe(true);
    expect(chunks.map((c) => c.choices[0]?.delta.content ?? '').join('')).toBe(body.choices[0]?.message.content);
  });

  it('lists the model with its root', async () => {
    const body = (await (await fetch(`${baseUrl}/v1/models`)).json()) as { data: { id: string; root: string }[] };
    expect(body.data).toEqual([expect.objectContaining({ id: 'tiny', root: 'tiny', object: 'model' })]);
    const one = await fetch(`${baseUrl}/v1/models/tiny`);
    expect(await one.json()).toEqual(
      expect.objectContaining({ id: 'tiny', object: 'model', max_model_len: config.maxContext }),
    );
    const missing = await fetch(`${baseUrl}/v1/models/gpt-9`);
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as { error: { code: string } }).error.code).toBe('model_not_found');
    expect((await fetch(`${baseUrl}/health`)).status).toBe(200);
    expect((await fetch(`${baseUrl}/ready`)).status).toBe(200);
  });

  it.each([
    ['malformed JSON', '{"model": "tiny", "prompt": ', 400, 'invalid_json'],
    ['an unknown model', { model: 'gpt-9', prompt: 'x' }, 404, 'model_not_found'],
    [
      'max_tokens beyond the context',
      { model: 'tiny', prompt: 'x', max_tokens: 100_000 },
      400,
      'context_length_exceeded',
    ],
    ['a negative temperature', { model: 'tiny', prompt: 'x', temperature: -1 }, 400, 'invalid_value'],
    ['a missing prompt', { model: 'tiny' }, 400, 'invalid_value'],
    ['a token id outside the vocabulary', { model: 'tiny', prompt: [1, 99999] }, 400, 'invalid_token_id'],
    ['a prompt of booleans', { model: 'tiny', prompt: [true] }, 400, 'invalid_value'],
    ['a boolean prompt', { model: 'tiny', prompt: true }, 400, 'invalid_value'],
    ['a fractional token id', { model: 'tiny', prompt: [1.5] }, 400, 'invalid_value'],
    ['a negative token id', { model: 'tiny', prompt: [-1] }, 400, 'invalid_value'],
    ['a nested list of strings', { model: 'tiny', prompt: [['a']] }, 400, 'invalid_value'],
    [
      'a batch of prompts × n over 64 choices',
      { model: 'tiny', prompt: ['a', 'b', 'c', 'd', 'e'], n: 16 },
      400,
      'too_many_choices',
    ],
    ['a stop string over the limit', { model: 'tiny', prompt: 'x', stop: 's'.repeat(1025) }, 400, 'invalid_value'],
    [
      'a numeric temperature sent as a string',
      { model: 'tiny', prompt: 'x', temperature: '0.5' },
      400,
      'invalid_value',
    ],
    ['an oversized body', { model: 'tiny', prompt: 'x'.repeat(100_000) }, 413, 'request_too_large'],
    ['best_of > 1 (not implemented)', { model: 'tiny', prompt: 'x', best_of: 2 }, 400, 'unsupported_parameter'],
    ['top_logprobs in completions', { model: 'tiny', prompt: 'x', top_logprobs: 2 }, 400, 'unsupported_parameter'],
    [
      'tools (not implemented)',
      { model: 'tiny', prompt: 'x', tools: [{ type: 'function' }] },
      400,
      'unsupported_parameter',
    ],
    ['an argument OpenAI does not know', { model: 'tiny', prompt: 'x', frobnicate: 1 }, 400, 'unknown_parameter'],
  ])('rejects %s with an OpenAI error body', async (_what, body, status, code) => {
    const res = await post('/v1/completions', body);
    expect(res.status).toBe(status);
    const json = (await res.json()) as { error: { message: string; type: string; code: string } };
    expect(json.error.code).toBe(code);
    expect(json.error.message.length).toBeGreaterThan(0);
    expect(typeof json.error.type).toBe('string');
  });

  it('names the parameter it does not implement, and accepts such parameters at their off values', async () => {
    const refused = await post('/v1/chat/completions', {
      model: 'tiny',
      messages: [{ role: 'user', content: 'hi' }],
      echo: true,
    });
    expect(refused.status).toBe(400);
    const error = ((await refused.json()) as { error: { param: string; message: string } }).error;
    expect(error.param).toBe('echo');
    expect(error.message).toMatch(/^echo is not supported/);
    const accepted = await post('/v1/completions', {
      model: 'tiny',
      prompt: 'x',
      max_tokens: 2,
      n: 1,
      logprobs: null,
      echo: false,
      presence_penalty: 0,
      frequency_penalty: 0,
      logit_bias: {},
      user: 'someone',
      metadata: { team: 'a' },
    });
    expect(accepted.status).toBe(200);
    const offChat = await post('/v1/chat/completions', {
      model: 'tiny',
      messages: [{ role: 'user', content: 'hi' }],
      max_tokens: 2,
      n: null,
      logprobs: false,
      top_logprobs: 0,
      echo: false,
    });
    expect(offChat.status).toBe(200);
    const offBody = (await offChat.json()) as { choices: { logprobs: unknown }[] };
    expect(offBody.choices.map((c) => c.logprobs)).toEqual([null]);
    const offCompletion = await post('/v1/completions', { model: 'tiny', prompt: 'x', max_tokens: 1, logprobs: false });
    expect(offCompletion.status).toBe(200);
  });

  it('takes a prompt as what it is: [65] is one token id, [[65]] a batch of one, with no conversion', async () => {
    const usage = async (prompt: unknown) => {
      const res = await post('/v1/completions', { model: 'tiny', prompt, max_tokens: 1, temperature: 0 });
      expect(res.status).toBe(200);
      return ((await res.json()) as { usage: { prompt_tokens: number } }).usage.prompt_tokens;
    };
    expect(await usage([65])).toBe(1);
    expect(await usage([[65, 66]])).toBe(2);
    expect(await usage(['65'])).toBe(2);
    const res = await post('/v1/completions', { model: 'tiny', prompt: [config.vocabSize], max_tokens: 1 });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { message: string } }).error.message).toContain(String(config.vocabSize));
  });

  it('refuses a prompt too long for the context in characters before tokenizing it', async () => {
    const res = await post('/v1/completions', { model: 'tiny', prompt: 'x'.repeat(40_000), max_tokens: 1 });
    expect(res.status).toBe(400);
    const body = (await res.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('context_length_exceeded');
    expect(body.error.message).toContain('at least 40000 tokens (40000 characters)');
    const chat = await post('/v1/chat/completions', {
      model: 'tiny',
      messages: [{ role: 'user', content: 'y'.repeat(40_000) }],
    });
    expect(chat.status).toBe(400);
  });

  it('lets a client read the 413 for an over-limit body of megabytes (the body is drained, not reset)', async () => {
    for (let i = 0; i < 3; i++) {
      const res = await post('/v1/completions', { model: 'tiny', prompt: 'x'.repeat(8 * 2 ** 20) });
      expect(res.status).toBe(413);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('request_too_large');
    }
    expect((await post('/v1/completions', { model: 'tiny', prompt: 'ok', max_tokens: 1 })).status).toBe(200);
  });

  it('still answers a valid request after 1,000 malformed ones in a row', async () => {
    for (let i = 0; i < 1000; i += 50) {
      const batch = Array.from({ length: 50 }, (_, j) =>
        post('/v1/completions', j % 2 ? '{not json' : { model: 'tiny', prompt: 'x', temperature: -5 }),
      );
      const statuses = await Promise.all(batch.map(async (r) => (await r).status));
      expect(statuses.every((s) => s === 400)).toBe(true);
    }
    const res = await post('/v1/completions', { model: 'tiny', prompt: 'ok', max_tokens: 3, temperature: 0 });
    expect(res.status).toBe(200);
  });

  it('answers 503 while not ready and 429 when the queue is full', async () => {
    backend.setReady(false);
    expect((await post('/v1/completions', { model: 'tiny', prompt: 'x', max_tokens: 2 })).status).toBe(503);
    expect((await fetch(`${baseUrl}/ready`)).status).toBe(503);
    backend.setReady(true);
    const full = new LocalBackend(bundle, loop, 0);
    const app2 = createHttpServer({ backend: full, bodyLimitBytes: 1024 });
    const res = await app2.inject({
      method: 'POST',
      url: '/v1/completions',
      payload: { model: 'tiny', prompt: 'x', max_tokens: 2 },
    });
    expect(res.statusCode).toBe(429);
    expect(res.json()).toMatchObject({ error: { type: 'rate_limit_error', code: 'queue_full' } });
    await app2.close();
  });

  it('cancels a streaming request when the client disconnects, freeing its KV blocks', async () => {
    const freeBefore = bundle.kv.numFreeBlocks;
    const controller = new AbortController();
    const res = await fetch(`${baseUrl}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        model: 'tiny',
        prompt: 'a long one',
        max_tokens: 200,
        temperature: 0,
        ignore_eos: true,
        stream: true,
      }),
      signal: controller.signal,
    });
    const reader = res.body?.getReader();
    await reader?.read();
    controller.abort();
    for (let i = 0; i < 100 && (bundle.engine.numRunning > 0 || bundle.kv.numFreeBlocks !== freeBefore); i++)
      await new Promise((r) => setTimeout(r, 20));
    expect(bundle.engine.numRunning).toBe(0);
    expect(bundle.kv.numFreeBlocks).toBe(freeBefore);
  });
});
