import { describe, expect, it } from 'vitest';
import { chooseEngine, DEFAULT_ROUTER_WEIGHTS, kvScore, rendezvous } from '../src/kv-router.ts';
import type { EngineLoad } from '../src/engine-load.ts';

const engine = (engineId: string, numRunning = 0, numWaiting = 0, kvUsage = 0): EngineLoad => ({
  engineId,
  model: 'tiny',
  numRunning,
  numWaiting,
  maxRunning: 8,
  kvUsage,
  leaving: false,
});

describe('chooseEngine', () => {
  const engines = [engine('a'), engine('b'), engine('c')];

  it('in kv mode picks the engine holding the longest prefix, and names the overlap', () => {
    const decision = chooseEngine({
      mode: 'kv',
      engines,
      overlap: new Map([
        ['a', 2],
        ['b', 6],
      ]),
      numPromptBlocks: 8,
      pick: 0,
    });
    expect(decision).toEqual({ mode: 'kv', engineId: 'b', overlapBlocks: 6, numPromptBlocks: 8, score: 0.75 });
  });

  it('weighs the overlap against load: a busy holder loses to a less busy one with a shorter prefix', () => {
    const busy = [engine('a', 8, 8), engine('b', 1)];
    const decision = chooseEngine({
      mode: 'kv',
      engines: busy,
      overlap: new Map([
        ['a', 8],
        ['b', 6],
      ]),
      numPromptBlocks: 8,
      pick: 0,
    });
    // a: 1 − 0.5·2 = 0; b: 0.75 − 0.5·0.125 = 0.6875.
    expect(decision.engineId).toBe('b');
    expect(decision.score).toBeCloseTo(0.6875, 12);
  });

  it('sends a request with no overlap, or whose only holder is swamped, to the shared queue', () => {
    expect(
      chooseEngine({ mode: 'kv', engines, overlap: new Map(), numPromptBlocks: 8, pick: 0 }).engineId,
    ).toBeUndefined();
    const swamped = [engine('a', 8, 24), engine('b')];
    // a: 1 − 0.5·4 = −1, below an idle engine's 0.
    expect(
      chooseEngine({ mode: 'kv', engines: swamped, overlap: new Map([['a', 8]]), numPromptBlocks: 8, pick: 0 })
        .engineId,
    ).toBeUndefined();
  });

  it('sends a prefix no engine holds yet to its home engine (rendezvous hashing), unless that engine is full', () => {
    const input = { mode: 'kv' as const, engines, overlap: new Map<string, number>(), numPromptBlocks: 8, pick: 0 };
    const homes = ['h1', 'h2', 'h3', 'h4', 'h5', 'h6'].map(
      (h) => chooseEngine({ ...input, firstBlockHash: h }).engineId,
    );
    // Deterministic per prefix, and spread over the engines.
    expect(
      ['h1', 'h2', 'h3', 'h4', 'h5', 'h6'].map((h) => chooseEngine({ ...input, firstBlockHash: h }).engineId),
    ).toEqual(homes);
    expect(new Set(homes).size).toBeGreaterThan(1);
    const home = homes[0] ?? '';
    expect(rendezvous(engines, 'h1')?.engineId).toBe(home);
    // The home engine is full: the shared queue instead.
    const full = engines.map((e) => (e.engineId === home ? engine(home, 8, 0) : e));
    expect(chooseEngine({ ...input, engines: full, firstBlockHash: 'h1' }).engineId).toBeUndefined();
    // Removing another engine does not move this prefix's home (rendezvous).
    const fewer = engines.filter((e) => e.engineId === home || e.engineId === homes.find((x) => x !== home));
    expect(chooseEngine({ ...input, engines: fewer, firstBlockHash: 'h1' }).engineId).toBe(home);
  });

  it('ignores holders that are not live (absent from the engines list)', () => {
    const decision = chooseEngine({
      mode: 'kv',
      engines: [engine('b')],
      overlap: new Map([['a', 8]]),
      numPromptBlocks: 8,
      pick: 0,
    });
    expect(decision.engineId).toBeUndefined();
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

  it('scores load and KV usage with the documented weights', () => {
    expect(kvScore(engine('a', 4, 4, 0.5), 4, 8, DEFAULT_ROUTER_WEIGHTS)).toBeCloseTo(0.5 - 0.5 * 1 - 0.1 * 0.5, 12);
  });
});
