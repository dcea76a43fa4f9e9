/**
 * The OpenAI parameters evaluation tools use: `n`, completions' `logprobs` and `echo` (with
 * `max_tokens: 0`), chat's `logprobs` and `top_logprobs`, streaming and not, on the tiny model in process.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { getPreset, randomWeights } from '@switchyard/model';
import {
  createByteTokenizer,
  EngineLoop,
  resolveSamplingParams,
  type EngineBundle,
  type GenerationBackend,
  type TokenSink,
} from '@switchyard/engine';
import { createEngine } from '@switchyard/onnx';
import { createHttpServer } from '../src/http/server.ts';
import { LocalBackend } from '../src/local-backend.ts';

const config = getPreset('tiny');
const model = { config, weights: randomWeights(config, 3), weightsDigest: 'cd'.repeat(32) };

let bundle: EngineBundle;
let loop: EngineLoop;
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
  app = createHttpServer({ backend: new LocalBackend(bundle, loop, 64), bodyLimitBytes: 64 * 1024 });
  baseUrl = await app.listen({ host: '127.0.0.1', port: 0 });
});

afterAll(async () => {
  await app.close();
  await loop.stop();
  await bundle.close();
});

interface CompletionLogprobs {
  tokens: string[];
  token_logprobs: (number | null)[];
  top_logprobs: (Record<string, number> | null)[];
  text_offset: number[];
}
interface CompletionChoice {
  index: number;
  text: string;
  logprobs: CompletionLogprobs | null;
  finish_reason: string | null;
}
interface ChatTokenLogprob {
  token: string;
  logprob: number;
  bytes: number[];
  top_logprobs: { token: string; logprob: number; bytes: number[] }[];
}
interface ChatChoice {
  index: number;
  message: { role: string; content: string };
  logprobs: { content: ChatTokenLogprob[] } | null;
  finish_reason: string | null;
}
interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}
interface Answer<C> {
  choices: C[];
  usage: Usage;
}
interface StreamChunk {
  choices: {
    index: number;
    text?: string;
    delta?: { role?: string; content?: string };
    logprobs: CompletionLogprobs | { content: ChatTokenLogprob[] } | null;
    finish_reason: string | null;
  }[];
  usage?: Usage;
}

const post = (path: string, body: unknown) =>
  fetch(`${baseUrl}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });

async function complete(body: object): Promise<Answer<CompletionChoice>> {
  const res = await post('/v1/completions', { model: 'tiny', ...body });
  expect(res.status, await res.clone().text()).toBe(200);
  return (await res.json()) as Answer<CompletionChoice>;
}

async function chat(body: object): Promise<Answer<ChatChoice>> {
  const res = await post('/v1/chat/completions', {
    model: 'tiny',
    messages: [{ role: 'user', content: 'hi' }],
    ...body,
  });
  expect(res.status, await res.clone().text()).toBe(200);
  return (await res.json()) as Answer<ChatChoice>;
}

async function stream(path: string, body: object): Promise<StreamChunk[]> {
  const res = await post(path, { model: 'tiny', stream: true, stream_options: { include_usage: true }, ...body });
  expect(res.status).toBe(200);
  const events = (await res.text())
    .split('\n\n')
    .filter((s) => s.startsWith('data: '))
    .map((s) => s.slice(6));
  expect(events.at(-1)).toBe('[DONE]');
  return events.slice(0, -1).map((e) => JSON.parse(e) as StreamChunk);
}

/** Joins the completion chunks of one choice: its text and its logprobs lists, in order. */
function joinCompletion(chunks: readonly StreamChunk[], index: number) {
  const mine = chunks.flatMap((c) => c.choices.filter((ch) => ch.index === index));
  const lp = mine.map((c) => c.logprobs as CompletionLogprobs | null);
  return {
    text: mine.map((c) => c.text ?? '').join(''),
    finish: mine.at(-1)?.finish_reason,
    logprobs: lp.every((l) => l === null)
      ? null
      : {
          tokens: lp.flatMap((l) => l?.tokens ?? []),
          token_logprobs: lp.flatMap((l) => l?.token_logprobs ?? []),
          top_logprobs: lp.flatMap((l) => l?.top_logprobs ?? []),
          text_offset: lp.flatMap((l) => l?.text_offset ?? []),
        },
  };
}

const promptText = 'The quick brown fox';
const numPrompt = new TextEncoder().encode(promptText).length;

describe('n choices per prompt', () => {
  it('answers n greedy choices, all equal, indexed 0..n-1, with usage counting the prompt once', async () => {
    const body = await complete({ prompt: promptText, n: 3, max_tokens: 5, temperature: 0, ignore_eos: true });
    expect(body.choices.map((c) => c.index)).toEqual([0, 1, 2]);
    const single = await complete({ prompt: promptText, max_tokens: 5, temperature: 0, ignore_eos: true });
    expect(body.choices.map((c) => c.text)).toEqual(Array(3).fill(single.choices[0]?.text));
    expect(body.usage).toMatchObject({ prompt_tokens: numPrompt, completion_tokens: 15, total_tokens: numPrompt + 15 });
  });

  it('samples different choices from one seed, deterministically; choice 0 is the n = 1 answer', async () => {
    const request = { prompt: promptText, n: 4, max_tokens: 8, temperature: 1, seed: 11, ignore_eos: true };
    const first = await complete(request);
    const again = await complete(request);
    const texts = first.choices.map((c) => c.text);
    expect(again.choices.map((c) => c.text)).toEqual(texts);
    expect(new Set(texts).size).toBeGreaterThan(1);
    const alone = await complete({ ...request, n: 1 });
    expect(alone.choices[0]?.text).toBe(texts[0]);
  });

  it('numbers a batch of prompts prompt-major: choice i of prompt p is p × n + i', async () => {
    const prompts = ['alpha beta', 'gamma'];
    const body = await complete({ prompt: prompts, n: 2, max_tokens: 4, temperature: 0, ignore_eos: true });
    expect(body.choices.map((c) => c.index)).toEqual([0, 1, 2, 3]);
    for (const [p, prompt] of prompts.entries()) {
      const alone = (await complete({ prompt, max_tokens: 4, temperature: 0, ignore_eos: true })).choices[0]?.text;
      expect(body.choices[2 * p]?.text).toBe(alone);
      expect(body.choices[2 * p + 1]?.text).toBe(alone);
    }
    expect(body.usage).toMatchObject({ prompt_tokens: 15, completion_tokens: 16 });
  });

  it('streams n choices as interleaved chunks that add up to the plain answer, with summed usage', async () => {
    const request = { prompt: promptText, n: 3, max_tokens: 6, temperature: 0.8, seed: 5, ignore_eos: true };
    const plain = await complete(request);
    const chunks = await stream('/v1/completions', request);
    for (const i of [0, 1, 2]) {
      expect(joinCompletion(chunks, i).text).toBe(plain.choices[i]?.text);
      expect(joinCompletion(chunks, i).finish).toBe('length');
    }
    expect(chunks.at(-1)?.usage).toMatchObject({ prompt_tokens: numPrompt, completion_tokens: 18 });

    const chatRequest = { n: 2, max_tokens: 5, temperature: 0.8, seed: 5, ignore_eos: true };
    const plainChat = await chat(chatRequest);
    const chatChunks = await stream('/v1/chat/completions', {
      messages: [{ role: 'user', content: 'hi' }],
      ...chatRequest,
    });
    for (const i of [0, 1]) {
      const mine = chatChunks.flatMap((c) => c.choices.filter((ch) => ch.index === i));
      expect(mine[0]?.delta).toEqual({ role: 'assistant', content: '' });
      expect(mine.map((c) => c.delta?.content ?? '').join('')).toBe(plainChat.choices[i]?.message.content);
    }
    expect(chatChunks.at(-1)?.usage?.completion_tokens).toBe(10);
  });
});

describe('n choices in flight', () => {
  it('cancels every choice of a stream when the client disconnects, freeing their KV blocks', async () => {
    const freeBefore = bundle.kv.numFreeBlocks;
    const res = await post('/v1/completions', {
      model: 'tiny',
      prompt: 'a long one',
      n: 3,
      max_tokens: 200,
      temperature: 0.5,
      ignore_eos: true,
      stream: true,
    });
    const reader = res.body?.getReader();
    await reader?.read();
    expect(bundle.engine.numRunning + bundle.engine.numWaiting).toBe(3);
    await reader?.cancel();
    for (let i = 0; i < 100 && (bundle.engine.numRunning > 0 || bundle.kv.numFreeBlocks !== freeBefore); i++)
      await new Promise((r) => setTimeout(r, 20));
    expect(bundle.engine.numRunning).toBe(0);
    expect(bundle.kv.numFreeBlocks).toBe(freeBefore);
  });

  it('fails the request when one choice fails, aborting the others, streamed or not', async () => {
    const aborted: string[] = [];
    const sinks = new Map<string, TokenSink>();
    // Every choice sends a token; choice 1 then fails; the others run until aborted.
    const backend: GenerationBackend = {
      modelId: 'tiny',
      maxContext: 256,
      vocabSize: 258,
      tokenizer: createByteTokenizer(),
      isReady: () => true,
      canAdmit: () => true,
      submit: (request, sink) => {
        sinks.set(request.id, sink);
        setTimeout(() => {
          sink({ requestId: request.id, index: 0, tokenId: 65, text: 'A' });
          if (!request.id.endsWith('-1')) return;
          setTimeout(() => {
            const error = new Error('expert worker lost');
            sink({ requestId: request.id, index: 1, tokenId: -1, text: '', finishReason: 'error', error });
          }, 20);
        }, 5);
      },
      abort: (id) => {
        aborted.push(id);
        sinks.get(id)?.({ requestId: id, index: 1, tokenId: -1, text: '', finishReason: 'abort' });
      },
    };
    const failing = createHttpServer({ backend, bodyLimitBytes: 64 * 1024 });
    const url = await failing.listen({ host: '127.0.0.1', port: 0 });
    try {
      const send = (stream: boolean) =>
        fetch(`${url}/v1/completions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ model: 'tiny', prompt: 'x', n: 3, max_tokens: 5, stream }),
        });
      const plain = await send(false);
      expect(plain.status).toBe(500);
      expect(((await plain.json()) as { error: { code: string } }).error.code).toBe('generation_failed');
      expect(aborted.filter((id) => id.endsWith('-0') || id.endsWith('-2'))).toHaveLength(2);
      expect(aborted.some((id) => id.endsWith('-1'))).toBe(false);

      aborted.length = 0;
      const streamed = await (await send(true)).text();
      const events = streamed.split('\n\n').filter((e) => e.startsWith('data: '));
      expect(events.at(-1)).toBe('data: [DONE]');
      expect(events.at(-2)).toContain('generation_failed');
      // The three first tokens, then the error: nothing from the aborted choices after it.
      expect(events.slice(0, -2).map((e) => (JSON.parse(e.slice(6)) as StreamChunk).choices[0]?.index)).toEqual([
        0, 1, 2,
      ]);
      expect(aborted).toHaveLength(2);
    } finally {
      await failing.close();
    }
  });
});

describe('completions logprobs', () => {
  it('reports each token with its logprob, its top alternatives (with itself) and its text offset', async () => {
    const body = await complete({ prompt: promptText, max_tokens: 6, temperature: 0, logprobs: 3, ignore_eos: true });
    const lp = body.choices[0]?.logprobs;
    if (!lp) throw new Error('no logprobs');
    expect(lp.tokens).toHaveLength(6);
    expect(lp.token_logprobs).toHaveLength(6);
    expect(lp.top_logprobs).toHaveLength(6);
    let offset = 0;
    lp.tokens.forEach((token, i) => {
      const chosen = lp.token_logprobs[i] ?? NaN;
      const top = lp.top_logprobs[i] ?? {};
      expect(chosen).toBeLessThanOrEqual(0);
      expect(top[token]).toBe(chosen);
      // Greedy: the chosen token is the most likely one.
      expect(chosen).toBe(Math.max(...Object.values(top)));
      expect(Object.keys(top).length).toBeGreaterThanOrEqual(1);
      expect(Object.keys(top).length).toBeLessThanOrEqual(3);
      expect(lp.text_offset[i]).toBe(offset);
      offset += token.length;
    });
  });

  it('streams the same logprobs as the plain answer', async () => {
    const request = { prompt: promptText, max_tokens: 5, temperature: 0, logprobs: 2, ignore_eos: true };
    const plain = (await complete(request)).choices[0];
    const joined = joinCompletion(await stream('/v1/completions', request), 0);
    expect(joined.text).toBe(plain?.text);
    expect(joined.logprobs).toEqual(plain?.logprobs);
  });

  it('reports logprobs 0 as the chosen token alone, and nothing without logprobs', async () => {
    const zero = (await complete({ prompt: promptText, max_tokens: 3, temperature: 0, logprobs: 0 })).choices[0];
    for (const [i, top] of (zero?.logprobs?.top_logprobs ?? []).entries()) {
      expect(Object.values(top ?? {})).toEqual([zero?.logprobs?.token_logprobs[i]]);
    }
    expect(zero?.logprobs?.tokens.length).toBeGreaterThan(0);
    const none = (await complete({ prompt: promptText, max_tokens: 3, temperature: 0 })).choices[0];
    expect(none?.logprobs).toBeNull();
  });
});

describe('completions echo', () => {
  it('puts the prompt before the text, and with max_tokens 0 answers the prompt alone', async () => {
    const generated = await complete({ prompt: promptText, max_tokens: 4, temperature: 0, ignore_eos: true });
    const echoed = await complete({ prompt: promptText, max_tokens: 4, temperature: 0, echo: true, ignore_eos: true });
    expect(echoed.choices[0]?.text).toBe(promptText + (generated.choices[0]?.text ?? ''));
    const only = await complete({ prompt: promptText, max_tokens: 0, echo: true });
    expect(only.choices[0]).toMatchObject({ text: promptText, logprobs: null, finish_reason: 'length' });
    expect(only.usage).toMatchObject({ prompt_tokens: numPrompt, completion_tokens: 0, total_tokens: numPrompt });
  });

  it('scores the prompt with max_tokens 0: first token null, the rest as the greedy continuation reports them', async () => {
    const promptIds = bundle.tokenizer.encode(promptText);
    const numGenerated = 6;
    const greedy = await complete({
      prompt: promptIds,
      max_tokens: numGenerated,
      temperature: 0,
      logprobs: 2,
      ignore_eos: true,
    });
    const generatedIds = (
      await loop.generate({
        id: 'oracle-ids',
        promptIds,
        params: resolveSamplingParams({ maxTokens: numGenerated, temperature: 0, stopAtEos: false }),
      })
    )
      .filter((e) => e.tokenId >= 0)
      .map((e) => e.tokenId);
    expect(bundle.tokenizer.decode(generatedIds)).toBe(greedy.choices[0]?.text);

    const scored = await complete({ prompt: [...promptIds, ...generatedIds], max_tokens: 0, echo: true, logprobs: 2 });
    const lp = scored.choices[0]?.logprobs;
    const gen = greedy.choices[0]?.logprobs;
    if (!lp || !gen) throw new Error('no logprobs');
    expect(lp.tokens).toHaveLength(promptIds.length + numGenerated);
    expect(lp.token_logprobs[0]).toBeNull();
    expect(lp.top_logprobs[0]).toBeNull();
    expect(lp.token_logprobs.slice(1).every((v) => typeof v === 'number' && v <= 0)).toBe(true);
    expect(scored.usage.completion_tokens).toBe(0);
    for (let j = 0; j < numGenerated; j++) {
      expect(lp.tokens[promptIds.length + j]).toBe(gen.tokens[j]);
      expect(lp.token_logprobs[promptIds.length + j]).toBeCloseTo(gen.token_logprobs[j] ?? NaN, 4);
      const scoredTop = lp.top_logprobs[promptIds.length + j] ?? {};
      const genTop = gen.top_logprobs[j] ?? {};
      expect(Object.keys(scoredTop).sort()).toEqual(Object.keys(genTop).sort());
      for (const [token, value] of Object.entries(genTop)) expect(scoredTop[token]).toBeCloseTo(value, 4);
    }
  });

  it('streams the echoed prompt and its logprobs in the first chunk, the same as the plain answer', async () => {
    const request = { prompt: promptText, max_tokens: 3, temperature: 0, echo: true, logprobs: 1, ignore_eos: true };
    const plain = (await complete(request)).choices[0];
    const chunks = await stream('/v1/completions', request);
    expect(chunks[0]?.choices[0]?.text?.startsWith(promptText)).toBe(true);
    const joined = joinCompletion(chunks, 0);
    expect(joined.text).toBe(plain?.text);
    expect(joined.logprobs).toEqual(plain?.logprobs);
    expect(plain?.logprobs?.tokens).toHaveLength(numPrompt + 3);

    const only = joinCompletion(await stream('/v1/completions', { ...request, max_tokens: 0 }), 0);
    expect(only.text).toBe(promptText);
    expect(only.finish).toBe('length');
    expect(only.logprobs?.tokens).toHaveLength(numPrompt);
  });
});

describe('chat logprobs', () => {
  it('reports content entries with bytes and exactly top_logprobs sorted alternatives', async () => {
    const body = await chat({ max_tokens: 5, temperature: 0, logprobs: true, top_logprobs: 4, ignore_eos: true });
    const content = body.choices[0]?.logprobs?.content;
    if (!content) throw new Error('no logprobs');
    expect(content).toHaveLength(5);
    for (const entry of content) {
      expect(entry.logprob).toBeLessThanOrEqual(0);
      expect(entry.top_logprobs).toHaveLength(4);
      const values = entry.top_logprobs.map((t) => t.logprob);
      expect(values).toEqual([...values].sort((a, b) => b - a));
      // Greedy: the chosen token heads the list.
      expect(entry.top_logprobs[0]).toEqual({ token: entry.token, logprob: entry.logprob, bytes: entry.bytes });
      // The byte tokenizer: every token stands for one byte, or none (BOS/EOS).
      expect(entry.bytes.length).toBeLessThanOrEqual(1);
    }
    const bytes = content.flatMap((e) => e.bytes);
    expect(new TextDecoder().decode(Uint8Array.from(bytes))).toBe(body.choices[0]?.message.content);
  });

  it('streams the same content entries, and answers logprobs: true with top_logprobs 0 as no alternatives', async () => {
    const request = { max_tokens: 4, temperature: 0, logprobs: true, top_logprobs: 2, ignore_eos: true };
    const plain = await chat(request);
    const chunks = await stream('/v1/chat/completions', { messages: [{ role: 'user', content: 'hi' }], ...request });
    const streamed = chunks.flatMap((c) =>
      c.choices.flatMap((ch) => (ch.logprobs as { content: ChatTokenLogprob[] } | null)?.content ?? []),
    );
    expect(streamed).toEqual(plain.choices[0]?.logprobs?.content);
    const bare = await chat({ max_tokens: 2, temperature: 0, logprobs: true });
    expect(bare.choices[0]?.logprobs?.content.map((e) => e.top_logprobs)).toEqual([[], []]);
  });
});

describe('refusals', () => {
  it.each([
    ['/v1/completions', { prompt: 'x', n: 17 }, 'n'],
    ['/v1/completions', { prompt: 'x', n: 0 }, 'n'],
    ['/v1/chat/completions', { messages: [{ role: 'user', content: 'x' }], n: 1.5 }, 'n'],
    ['/v1/completions', { prompt: 'x', logprobs: 6 }, 'logprobs'],
    ['/v1/completions', { prompt: 'x', logprobs: -1 }, 'logprobs'],
    ['/v1/completions', { prompt: 'x', logprobs: true }, 'logprobs'],
    ['/v1/completions', { prompt: 'x', echo: 'yes' }, 'echo'],
    ['/v1/completions', { prompt: 'x', max_tokens: 0 }, 'max_tokens'],
    ['/v1/completions', { prompt: 'x', max_tokens: -1, echo: true }, 'max_tokens'],
    ['/v1/chat/completions', { messages: [{ role: 'user', content: 'x' }], logprobs: 1 }, 'logprobs'],
    [
      '/v1/chat/completions',
      { messages: [{ role: 'user', content: 'x' }], logprobs: true, top_logprobs: 21 },
      'top_logprobs',
    ],
    ['/v1/chat/completions', { messages: [{ role: 'user', content: 'x' }], top_logprobs: 2 }, 'top_logprobs'],
    ['/v1/chat/completions', { messages: [{ role: 'user', content: 'x' }], max_tokens: 0 }, 'max_tokens'],
    ['/v1/chat/completions', { messages: [{ role: 'user', content: 'x' }], echo: true }, 'echo'],
  ])('%s refuses %j with a 400 naming %s', async (path, body, param) => {
    const res = await post(path, { model: 'tiny', ...body });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { param: string } }).error.param).toBe(param);
  });
});
