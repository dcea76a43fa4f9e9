import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getPreset, randomWeights, referenceForward } from '@switchyard/model';
import { createEngine } from '../src/create-engine.ts';
import {
  EngineLoop,
  type EngineBundle,
  resolveSamplingParams,
  type SamplingParams,
  type TokenEvent,
} from '@switchyard/engine';

const config = getPreset('tiny');
const weights = randomWeights(config, 1);
const model = { config, weights, weightsDigest: 'ab'.repeat(32) };
const greedy = (maxTokens: number, extra: Partial<SamplingParams> = {}) =>
  resolveSamplingParams({ maxTokens, temperature: 0, stopAtEos: false, ...extra });

const prompts = [
  'The quick brown fox',
  'Mixture of experts',
  'a',
  'Switchyard routes tokens to experts over gRPC',
  'zzz',
  'KV pages',
];

async function open(
  options: {
    numKvBlocks?: number;
    maxBatchedTokens?: number;
    maxRunningSequences?: number;
    microBatches?: number;
  } = {},
): Promise<{ bundle: EngineBundle; loop: EngineLoop }> {
  const bundle = await createEngine(model, {
    expertDtype: 'fp32',
    denseDtype: 'fp32',
    blockSize: 4,
    ...(options.numKvBlocks ? { numKvBlocks: options.numKvBlocks } : {}),
    microBatches: options.microBatches ?? 1,
    scheduler: {
      maxBatchedTokens: options.maxBatchedTokens ?? 64,
      maxRunningSequences: options.maxRunningSequences ?? 16,
    },
  });
  return { bundle, loop: new EngineLoop(bundle.engine) };
}

const ids = (events: readonly TokenEvent[]) => events.filter((e) => e.tokenId >= 0).map((e) => e.tokenId);

describe('monolithic engine on tiny', () => {
  let solo: number[][] = [];
  let engine: { bundle: EngineBundle; loop: EngineLoop };

  beforeAll(async () => {
    engine = await open();
    solo = [];
    for (const [i, p] of prompts.entries()) {
      solo.push(
        ids(
          await engine.loop.generate({
            id: `solo-${i}`,
            promptIds: engine.bundle.tokenizer.encode(p),
            params: greedy(12),
          }),
        ),
      );
    }
  });
  afterAll(async () => {
    await engine.loop.stop();
    await engine.bundle.close();
  });

  it('generates the tokens of the TypeScript reference forward, greedily', async () => {
    const prompt = engine.bundle.tokenizer.encode(prompts[0] ?? '');
    const tokens = [...prompt];
    for (let i = 0; i < 4; i++) {
      const { logits } = referenceForward(config, weights, tokens);
      const last = logits.subarray((tokens.length - 1) * config.vocabSize, tokens.length * config.vocabSize);
      let best = 0;
      for (let v = 1; v < last.length; v++) if ((last[v] ?? 0) > (last[best] ?? 0)) best = v;
      tokens.push(best);
    }
    expect(solo[0]?.slice(0, 4)).toEqual(tokens.slice(prompt.length));
  });

  it('gives the same text on every run at temperature 0', async () => {
    const again = ids(
      await engine.loop.generate({
        id: 'again',
        promptIds: engine.bundle.tokenizer.encode(prompts[1] ?? ''),
        params: greedy(12),
      }),
    );
    expect(again).toEqual(solo[1]);
  });

  it('makes continuous batching invisible: concurrent requests produce exactly their solo tokens', async () => {
    const runs = await Promise.all(
      prompts.map((p, i) =>
        engine.loop.generate({ id: `batch-${i}`, promptIds: engine.bundle.tokenizer.encode(p), params: greedy(12) }),
      ),
    );
    expect(runs.map(ids)).toEqual(solo);
  });

  it('stays invisible when a small block pool forces preemption and chunked prefill', async () => {
    const small = await open({ numKvBlocks: 16, maxBatchedTokens: 8 });
    let preemptions = 0;
    const loop = new EngineLoop(small.bundle.engine, (s) => (preemptions += s.numPreempted));
    try {
      const runs = await Promise.all(
        prompts.map((p, i) =>
          loop.generate({ id: `tight-${i}`, promptIds: small.bundle.tokenizer.encode(p), params: greedy(12) }),
        ),
      );
      expect(runs.map(ids)).toEqual(solo);
      expect(preemptions).toBeGreaterThan(0);
    } finally {
      await loop.stop();
      await small.loop.stop();
      await small.bundle.close();
    }
  });

  it('produces the same tokens when each step runs as two overlapped micro-batches', async () => {
    const overlapped = await open({ microBatches: 2 });
    try {
      const runs = await Promise.all(
        prompts.map((p, i) =>
          overlapped.loop.generate({
            id: `mb-${i}`,
            promptIds: overlapped.bundle.tokenizer.encode(p),
            params: greedy(12),
          }),
        ),
      );
      expect(runs.map(ids)).toEqual(solo);
    } finally {
      await overlapped.loop.stop();
      await overlapped.bundle.close();
    }
  });

  it('reuses a cached prompt prefix and still produces the same tokens', async () => {
    const prompt = engine.bundle.tokenizer.encode(prompts[3] ?? '');
    const events = await engine.loop.generate({ id: 'cached', promptIds: prompt, params: greedy(12) });
    expect(ids(events)).toEqual(solo[3]);
    expect(events.at(-1)?.usage?.cachedPromptTokens).toBe(Math.floor((prompt.length - 1) / 4) * 4);
  });

  it('replays a seeded sampled request exactly, and different seeds differ', async () => {
    const prompt = engine.bundle.tokenizer.encode('sample me');
    const sampled = (id: string, seed: number) =>
      engine.loop.generate({
        id,
        promptIds: prompt,
        params: resolveSamplingParams({ maxTokens: 16, temperature: 1, seed, stopAtEos: false }),
      });
    const [a, b, c] = await Promise.all([sampled('s1', 7), sampled('s2', 7), sampled('s3', 8)]);
    expect(ids(a ?? [])).toEqual(ids(b ?? []));
    expect(ids(a ?? [])).not.toEqual(ids(c ?? []));
  });

  it('ends at max tokens with finish reason length and reports usage', async () => {
    const prompt = engine.bundle.tokenizer.encode('usage');
    const events = await engine.loop.generate({ id: 'len', promptIds: prompt, params: greedy(5) });
    expect(ids(events)).toHaveLength(5);
    expect(events.at(-1)?.finishReason).toBe('length');
    expect(events.at(-1)?.usage).toMatchObject({ promptTokens: prompt.length, completionTokens: 5 });
  });

  it('stops at a stop string and never emits it', async () => {
    const full = engine.bundle.tokenizer.decode(solo[0] ?? []);
    const stop = full.slice(3, 5);
    const events = await engine.loop.generate({
      id: 'stop',
      promptIds: engine.bundle.tokenizer.encode(prompts[0] ?? ''),
      params: greedy(12, { stop: [stop] }),
    });
    const text = events.map((e) => e.text).join('');
    expect(events.at(-1)?.finishReason).toBe('stop');
    expect(text).toBe(full.slice(0, full.indexOf(stop)));
  });

  it('rejects a prompt longer than the context, naming both lengths', () => {
    const long = new Array<number>(config.maxContext + 5).fill(65);
    expect(() => engine.loop.submit({ id: 'long', promptIds: long, params: greedy(1) }, () => {})).toThrow(
      `the prompt has ${config.maxContext + 5} tokens but the model's context is ${config.maxContext} tokens`,
    );
  });

  it('rejects a prompt with a token id outside the vocabulary, naming the id (whoever queued it)', () => {
    for (const bad of [config.vocabSize, 999_999, -1, 1.5]) {
      expect(() => engine.loop.submit({ id: `bad-${bad}`, promptIds: [65, bad], params: greedy(1) }, () => {})).toThrow(
        `token id ${bad} is outside the vocabulary of ${config.vocabSize}`,
      );
    }
  });

  it('aborting a request ends it with finish reason abort and frees its blocks', async () => {
    const free = engine.bundle.kv.numFreeBlocks;
    const done = new Promise<TokenEvent>((resolve) => {
      engine.loop.submit(
        { id: 'abort-me', promptIds: engine.bundle.tokenizer.encode('abort'), params: greedy(200) },
        (e) => {
          if (e.index === 2) engine.loop.abort('abort-me');
          if (e.finishReason) resolve(e);
        },
      );
    });
    const last = await done;
    expect(last.finishReason).toBe('abort');
    expect(engine.bundle.kv.numFreeBlocks).toBe(free);
  });

  it('serves a prefix from pages imported from another engine, with the same tokens', async () => {
    const prompt = engine.bundle.tokenizer.encode(prompts[3] ?? '');
    const hashes = engine.bundle.hasher.hashTokens(prompt);
    // `engine` computed this prompt earlier (solo-3); its full blocks are still cached there.
    const pages = engine.bundle.pages.exportPages(hashes);
    expect(pages.map((p) => p.hash)).toEqual(hashes);
    const peer = await open();
    try {
      expect(peer.bundle.pages.numLeadingCached(hashes)).toBe(0);
      const imported = peer.bundle.pages.importPages(pages);
      expect(imported).toEqual({ numImported: hashes.length, numPresent: 0, numNoRoom: 0 });
      expect(peer.bundle.pages.numLeadingCached(hashes)).toBe(hashes.length);
      expect(peer.bundle.pages.importPages(pages)).toEqual({ numImported: 0, numPresent: hashes.length, numNoRoom: 0 });
      const events = await peer.loop.generate({ id: 'imported', promptIds: prompt, params: greedy(12) });
      expect(ids(events)).toEqual(solo[3]);
      expect(events.at(-1)?.usage?.cachedPromptTokens).toBe(Math.floor((prompt.length - 1) / 4) * 4);
    } finally {
      await peer.loop.stop();
      await peer.bundle.close();
    }
  });

  it('imports only as many pages as there are free blocks, and refuses a page of another shape', async () => {
    const small = await open({ numKvBlocks: 16 });
    try {
      const prompt = engine.bundle.tokenizer.encode(prompts[3] ?? '');
      const pages = engine.bundle.pages.exportPages(engine.bundle.hasher.hashTokens(prompt));
      const many = [
        ...pages,
        ...pages.map((p, i) => ({ ...p, hash: engine.bundle.hasher.hashTokens([i, ...prompt])[0] ?? p.hash })),
      ];
      expect(many.length).toBe(2 * pages.length);
      expect(many.length).toBeGreaterThan(16);
      expect(small.bundle.pages.importPages(many)).toEqual({
        numImported: 16,
        numPresent: 0,
        numNoRoom: many.length - 16,
      });
      const bad = { ...(pages[0] ?? pages[1]), data: new Float32Array(3) };
      expect(() => small.bundle.pages.importPages([bad as (typeof pages)[number]])).toThrow(RangeError);
    } finally {
      await small.loop.stop();
      await small.bundle.close();
    }
  });

  it('hands over the page of each evicted block to an offload listener, with its tokens', async () => {
    const small = await open({ numKvBlocks: 16 });
    const evicted: {
      hash: ReturnType<EngineBundle['hasher']['hashTokens']>[number];
      tokens: number[];
      floats: number;
    }[] = [];
    small.bundle.pages.onEvicted((p) => evicted.push({ hash: p.hash, tokens: [...p.tokens], floats: p.data.length }));
    try {
      const first = small.bundle.tokenizer.encode('x'.repeat(40));
      const firstHashes = small.bundle.hasher.hashTokens(first);
      await small.loop.generate({ id: 'fill-1', promptIds: first, params: greedy(1) });
      await small.loop.generate({
        id: 'fill-2',
        promptIds: small.bundle.tokenizer.encode('y'.repeat(60)),
        params: greedy(1),
      });
      expect(evicted.length).toBeGreaterThan(0);
      const first0 = evicted[0];
      if (first0 === undefined) throw new Error('nothing evicted');
      expect(firstHashes).toContain(first0.hash);
      const at = firstHashes.indexOf(first0.hash);
      expect(evicted[0]?.tokens).toEqual(first.slice(at * 4, at * 4 + 4));
      expect(evicted[0]?.floats).toBe(small.bundle.pages.pageFloats);
    } finally {
      await small.loop.stop();
      await small.bundle.close();
    }
  });
});
