import { describe, expect, it } from 'vitest';
import { BlockPool, KvCacheManager } from '@switchyard/kv-cache';
import { Engine } from '../src/engine.ts';
import { tokenLogprob } from '../src/logprobs.ts';
import type { ModelRunner } from '../src/model-runner.ts';
import { PrefixHasher } from '../src/prefix-hasher.ts';
import { resolveSamplingParams, type SamplingParams } from '../src/sampling-params.ts';
import type { ExecuteResult, StepPlan } from '../src/step-plan.ts';
import type { TokenEvent } from '../src/token-event.ts';
import { BYTE_VOCAB_SIZE, createByteTokenizer } from '../src/tokenizer.ts';

const VOCAB = BYTE_VOCAB_SIZE;

/** Logits of a row: a fixed function of the token at that position and the position, spread over ±6. */
function rowLogits(tokenId: number, position: number): Float32Array {
  return Float32Array.from({ length: VOCAB }, (_, v) => 6 * Math.sin(v * 0.37 + tokenId * 1.3 + position * 0.11));
}

/** The reference: log of the plain softmax, p_v = exp(l_v) / Σ exp(l_u), with no shift and no shortcut. */
function referenceLogprobs(logits: Float32Array): number[] {
  const exps = Array.from(logits, (l) => Math.exp(l));
  const total = exps.reduce((a, b) => a + b, 0);
  return exps.map((e) => Math.log(e / total));
}

/** A runner that returns `rowLogits` for the rows the engine asks for, and records which chunks scored all rows. */
class FakeRunner implements ModelRunner {
  readonly scoredChunks: [string, number, number][] = [];
  async execute(plan: StepPlan): Promise<ExecuteResult> {
    const logits = new Map<string, Float32Array>();
    const rowLogitsBySeq = new Map<string, Float32Array>();
    for (const c of plan.chunks) {
      const row = (p: number) => rowLogits(c.seq.tokens[p] ?? -1, p);
      if (c.sample) logits.set(c.seq.id, row(c.start + c.count - 1));
      if (c.logitsOfEveryRow === true) {
        this.scoredChunks.push([c.seq.id, c.start, c.count]);
        const rows = new Float32Array(c.count * VOCAB);
        for (let r = 0; r < c.count; r++) rows.set(row(c.start + r), r * VOCAB);
        rowLogitsBySeq.set(c.seq.id, rows);
      }
    }
    return { logits, rowLogits: rowLogitsBySeq, failed: new Map() };
  }
  commitBlocks(): void {}
  release(): void {}
  async close(): Promise<void> {}
}

function setup(maxBatchedTokens: number) {
  const runner = new FakeRunner();
  const tokenizer = createByteTokenizer();
  const engine = new Engine({
    runner,
    kv: new KvCacheManager(new BlockPool({ numBlocks: 64, blockSize: 4 })),
    hasher: new PrefixHasher({ modelId: 't', weightsDigestHex: '00', kvDtype: 'f32', blockSize: 4 }),
    tokenizer,
    scheduler: { maxBatchedTokens, maxRunningSequences: 4 },
    maxContext: 128,
    vocabSize: VOCAB,
    blockSize: 4,
    numKvBlocks: 64,
    eosTokenId: tokenizer.eosTokenId,
  });
  return { engine, runner };
}

async function run(engine: Engine, id: string, promptIds: number[], params: SamplingParams): Promise<TokenEvent[]> {
  const events: TokenEvent[] = [];
  engine.add({ id, promptIds, params }, (e) => events.push(e));
  while (engine.hasWork) await engine.step();
  return events;
}

const prompt = Array.from('logprobs!!', (c) => c.charCodeAt(0));

describe('tokenLogprob (raw log-softmax of the logits)', () => {
  const logits = rowLogits(42, 7);
  const reference = referenceLogprobs(logits);

  it('equals the log of an independently computed softmax for every token, and exp sums to 1', () => {
    let total = 0;
    for (let v = 0; v < VOCAB; v++) {
      const { logprob } = tokenLogprob(logits, v, 0);
      expect(logprob).toBeCloseTo(reference[v] ?? NaN, 9);
      expect(logprob).toBeLessThanOrEqual(0);
      total += Math.exp(logprob);
    }
    expect(total).toBeCloseTo(1, 9);
  });

  it('lists the k most likely tokens, sorted, with the same values as the token logprobs', () => {
    const { top } = tokenLogprob(logits, 3, 5);
    const expected = reference
      .map((logprob, tokenId) => ({ tokenId, logprob }))
      .sort((a, b) => b.logprob - a.logprob || a.tokenId - b.tokenId)
      .slice(0, 5);
    expect(top.map((t) => t.tokenId)).toEqual(expected.map((t) => t.tokenId));
    top.forEach((t, i) => {
      expect(t.logprob).toBeCloseTo(expected[i]?.logprob ?? NaN, 9);
      expect(t.logprob).toBe(tokenLogprob(logits, t.tokenId, 0).logprob);
    });
    expect(tokenLogprob(logits, 3, 0).top).toEqual([]);
  });

  it('breaks ties toward the lower id, as greedy sampling does', () => {
    const flat = new Float32Array([1, 3, 3, 0, 3]);
    expect(tokenLogprob(flat, 0, 3).top.map((t) => t.tokenId)).toEqual([1, 2, 4]);
    expect(tokenLogprob(flat, 4, 3).logprob).toBeCloseTo(3 - Math.log(Math.exp(1) + 3 * Math.exp(3) + 1), 12);
  });
});

describe('Engine logprobs', () => {
  it('reports each sampled token with its raw logprob; at temperature 0 it is the most likely token', async () => {
    const { engine } = setup(64);
    const params = resolveSamplingParams({ maxTokens: 5, temperature: 0, stopAtEos: false, logprobs: 3 });
    const events = await run(engine, 'a', prompt, params);
    const tokens = [...prompt];
    expect(events).toHaveLength(5);
    for (const e of events) {
      const lp = e.logprob;
      if (!lp) throw new Error(`event ${e.index} has no logprob`);
      const reference = referenceLogprobs(rowLogits(tokens.at(-1) ?? -1, tokens.length - 1));
      expect(lp.tokenId).toBe(e.tokenId);
      expect(lp.logprob).toBeCloseTo(reference[e.tokenId] ?? NaN, 9);
      expect(lp.logprob).toBeCloseTo(Math.max(...reference), 9);
      expect(lp.top).toHaveLength(3);
      expect(lp.top[0]).toEqual({ tokenId: e.tokenId, logprob: lp.logprob });
      expect(lp.top.map((t) => t.logprob)).toEqual([...lp.top.map((t) => t.logprob)].sort((a, b) => b - a));
      tokens.push(e.tokenId);
    }
  });

  it('reports logprobs before temperature: a sampled request scores tokens as a greedy one would', async () => {
    const { engine } = setup(64);
    const hot = resolveSamplingParams({ maxTokens: 6, temperature: 1.7, topP: 0.5, seed: 9, logprobs: 0 });
    const events = (await run(engine, 'hot', prompt, hot)).filter((e) => e.tokenId >= 0);
    const tokens = [...prompt];
    for (const e of events) {
      const reference = referenceLogprobs(rowLogits(tokens.at(-1) ?? -1, tokens.length - 1));
      expect(e.logprob?.logprob).toBeCloseTo(reference[e.tokenId] ?? NaN, 9);
      expect(e.logprob?.top).toEqual([]);
      tokens.push(e.tokenId);
    }
  });

  it('scores every prompt token across chunked prefill, first one null, and only when asked', async () => {
    const { engine, runner } = setup(4);
    const params = resolveSamplingParams({ maxTokens: 1, temperature: 0, promptLogprobs: 2 });
    const events = await run(engine, 'echo', prompt, params);
    const scores = events[0]?.promptLogprobs;
    if (!scores) throw new Error('no prompt logprobs on the first event');
    expect(scores).toHaveLength(prompt.length);
    expect(scores[0]).toBeNull();
    for (let p = 1; p < prompt.length; p++) {
      const reference = referenceLogprobs(rowLogits(prompt[p - 1] ?? -1, p - 1));
      expect(scores[p]?.tokenId).toBe(prompt[p]);
      expect(scores[p]?.logprob).toBeCloseTo(reference[prompt[p] ?? -1] ?? NaN, 9);
      expect(scores[p]?.top).toHaveLength(2);
    }
    // Chunks of 4 over a 10-token prompt; the last prompt row (position 9) predicts the output, not the prompt.
    expect(runner.scoredChunks).toEqual([
      ['echo', 0, 4],
      ['echo', 4, 4],
      ['echo', 8, 2],
    ]);
    expect(events[0]?.logprob).toBeUndefined();

    const plain = await run(engine, 'plain', prompt, resolveSamplingParams({ maxTokens: 2, temperature: 0 }));
    expect(plain.every((e) => e.logprob === undefined && e.promptLogprobs === undefined)).toBe(true);
    expect(runner.scoredChunks.some(([id]) => id === 'plain')).toBe(false);
  });

  it('bypasses the prefix cache for a request that scores its prompt, and still reports every token', async () => {
    const { engine } = setup(64);
    const greedy = resolveSamplingParams({ maxTokens: 1, temperature: 0 });
    await run(engine, 'warm', prompt, greedy);
    const cached = await run(engine, 'cached', prompt, greedy);
    expect(cached.at(-1)?.usage?.cachedPromptTokens).toBe(8);
    const scored = await run(engine, 'scored', prompt, { ...greedy, promptLogprobs: 0 });
    expect(scored.at(-1)?.usage?.cachedPromptTokens).toBe(0);
    expect(scored[0]?.promptLogprobs?.filter((s) => s !== null)).toHaveLength(prompt.length - 1);
  });

  it('refuses a logprobs count outside 0..20, naming the field', () => {
    expect(() => resolveSamplingParams({ logprobs: 21 })).toThrow(/logprobs/);
    expect(() => resolveSamplingParams({ promptLogprobs: -1 })).toThrow(/prompt_logprobs/);
    expect(() => resolveSamplingParams({ logprobs: 1.5 })).toThrow(/logprobs/);
  });
});
