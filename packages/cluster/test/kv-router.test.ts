import { describe, expect, it } from 'vitest';
import { chooseEngine, DEFAULT_ROUTER_WEIGHTS, engineCost, rendezvous } from '../src/kv-router.ts';
import type { EngineLoad } from '../src/engine-load.ts';

const engine = (engineId: string, numRunning = 0, numWaiting = 0, kvUsage = 0, numPrefillTokens = 0): EngineLoad => ({
  engineId,
  model: 'tiny',
  numRunning,
  numWaiting,
  maxRunning: 8,
  kvUsage,
  numPrefillTokens,
  leaving: false,
});

// 8 blocks of 16 tokens: a 128-token prompt, of which at most 127 can come from a cache (one is computed).
const base = { mode: 'kv' as const, numPromptBlocks: 8, promptTokens: 128, blockSize: 16, pick: 0 };

describe('chooseEngine', () => {
  const engines = [engine('a'), engine('b'), engine('c')];

  it('in kv mode picks the engine holding the longest prefix, and names the overlap and its cost', () => {
    const decision = chooseEngine({
      ...base,
      engines,
      overlap: new Map([
        ['a', 2],
        ['b', 6],
      ]),
    });
    // a computes 128 − 32 = 96 tokens, b 128 − 96 = 32, c all 128.
    expect(decision).toEqual({
      mode: 'kv',
      engineId: 'b',
      overlapBlocks: 6,
      numPromptBlocks: 8,
      score: 32,
      computeTokens: 32,
    });
  });

  it('weighs the prefix against the work queued there: a holder with a long prefill queue loses', () => {
    const busy = [engine('a', 1, 2, 0, 600), engine('b', 1)];
    const decision = chooseEngine({
      ...base,
      engines: busy,
      overlap: new Map([
        ['a', 8],
        ['b', 6],
      ]),
    });
    // a: 600 queued + 1 + 16·3 = 649; b: 32 + 16·1 = 48.
    expect(decision.engineId).toBe('b');
    expect(decision.score).toBe(48);
  });

  it('with fetching on, counts a prefix held elsewhere as fetchable: an idle engine beats a busy holder', () => {
    const input = { ...base, engines: [engine('a', 4), engine('b')], overlap: new Map([['a', 8]]) };
    // Without fetching, b would compute all 128 tokens: a (1 + 16·4 = 65) is cheaper.
    expect(chooseEngine(input).engineId).toBe('a');
    // With it, b fetches 127 tokens at 0.15 (and 8 for the call) and computes 1: 28.05 < 65.
    const decision = chooseEngine({ ...input, fetch: true });
    expect(decision).toMatchObject({ engineId: 'b', overlapBlocks: 0, computeTokens: 1 });
    expect(decision.score).toBeCloseTo(1 + 0.15 * 127 + 8, 12);
    // A page store (not an engine) holding the prefix makes it fetchable just the same.
    const fromStore = chooseEngine({
      ...input,
      engines: [engine('a', 4), engine('b')],
      overlap: new Map([['store', 8]]),
      fetch: true,
    });
    expect(fromStore.computeTokens).toBe(1);
  });

  it("counts this frontend's requests an engine's load report does not show yet", () => {
    const idle = [engine('a'), engine('b')];
    const overlap = new Map([
      ['a', 8],
      ['b', 8],
    ]);
    const pending = new Map([['a', { prefillTokens: 200, sequences: 1 }]]);
    expect(chooseEngine({ ...base, engines: idle, overlap, pending }).engineId).toBe('b');
    // The larger of the report and the ledger counts, not their sum.
    const reported = [engine('a', 1, 0, 0, 200), engine('b', 0, 0, 0, 150)];
    const both = chooseEngine({ ...base, engines: reported, overlap, pending });
    expect(both.engineId).toBe('b');
    expect(both.score).toBe(150 + 1);
  });

  it('sends a prefix no engine holds yet to its home engine (rendezvous hashing) when costs tie', () => {
    const input = { ...base, engines, overlap: new Map<string, number>() };
    const keys = ['h1', 'h2', 'h3', 'h4', 'h5', 'h6'];
    const homes = keys.map((h) => chooseEngine({ ...input, firstBlockHash: h }).engineId);
    // Deterministic per prefix, and spread over the engines.
    expect(keys.map((h) => chooseEngine({ ...input, firstBlockHash: h }).engineId)).toEqual(homes);
    expect(new Set(homes).size).toBeGreaterThan(1);
    const home = homes[0] ?? '';
    expect(rendezvous(engines, 'h1')?.engineId).toBe(home);
    // Removing another engine does not move this prefix's home.
    const fewer = engines.filter((e) => e.engineId === home || e.engineId === homes.find((x) => x !== home));
    expect(chooseEngine({ ...input, engines: fewer, firstBlockHash: 'h1' }).engineId).toBe(home);
    // A busier home loses to an idle engine.
    const busyHome = engines.map((e) => (e.engineId === home ? engine(home, 2) : e));
    const moved = chooseEngine({ ...input, engines: busyHome, firstBlockHash: 'h1' }).engineId;
    expect(moved).toBeDefined();
    expect(moved).not.toBe(home);
  });

  it('skips full engines, and uses the shared queue only when every engine is full', () => {
    const full = [engine('a', 8), engine('b', 4, 4), engine('c', 2)];
    expect(chooseEngine({ ...base, engines: full, overlap: new Map([['a', 8]]) }).engineId).toBe('c');
    const pendingFull = new Map([['c', { prefillTokens: 0, sequences: 8 }]]);
    expect(
      chooseEngine({ ...base, engines: full, overlap: new Map([['a', 8]]), pending: pendingFull }).engineId,
    ).toBeUndefined();
  });

  it('counts holders that take no requests (not live, a store) only as sources to fetch from', () => {
    const decision = chooseEngine({ ...base, engines: [engine('b')], overlap: new Map([['a', 8]]) });
    expect(decision).toMatchObject({ engineId: 'b', overlapBlocks: 0, computeTokens: 128 });
  });

  it('goes to the shared queue when no engine is live, in every mode', () => {
    for (const mode of ['kv', 'round-robin', 'random'] as const) {
      expect(
        chooseEngine({ mode, engines: [], overlap: new Map([['a', 8]]), numPromptBlocks: 8, pick: 0 }).engineId,
      ).toBeUndefined();
    }
  });

  it('in round-robin mode takes the engines in turn, and in random mode the one the pick lands on', () => {
    const turns = [0, 1, 2, 3].map(
      (pick) => chooseEngine({ mode: 'round-robin', engines, overlap: new Map(), numPromptBlocks: 4, pick }).engineId,
    );
    expect(turns).toEqual(['a', 'b', 'c', 'a']);
    expect(
      chooseEngine({ mode: 'random', engines, overlap: new Map([['c', 3]]), numPromptBlocks: 4, pick: 0.99 }),
    ).toMatchObject({
      engineId: 'c',
      overlapBlocks: 3,
    });
  });
});

describe('engineCost', () => {
  it('adds queued, computed, fetched, running and KV-usage costs with the documented weights', () => {
    const cost = engineCost(
      engine('a', 3, 1, 0.5, 40),
      { localBlocks: 2, fetchableBlocks: 5, promptTokens: 100, blockSize: 16 },
      DEFAULT_ROUTER_WEIGHTS,
    );
    // local 32 tokens, reachable 80: compute 20, fetch 48.
    expect(cost).toEqual({ cost: 40 + 20 + (0.15 * 48 + 8) + 16 * 4 + 64 * 0.5, computeTokens: 20, fetchTokens: 48 });
  });

  it('always leaves the last prompt token to compute, however much is cached', () => {
    const cost = engineCost(
      engine('a'),
      { localBlocks: 4, fetchableBlocks: 4, promptTokens: 64, blockSize: 16 },
      DEFAULT_ROUTER_WEIGHTS,
    );
    expect(cost.computeTokens).toBe(1);
  });
});
