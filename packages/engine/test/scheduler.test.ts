import { describe, expect, it } from 'vitest';
import { BlockPool, KvCacheManager } from '@switchyard/kv-cache';
import { PrefixHasher } from '../src/prefix-hasher.ts';
import { Scheduler } from '../src/scheduler.ts';
import { Sequence } from '../src/sequence.ts';
import { resolveSamplingParams } from '../src/sampling-params.ts';
import type { StepPlan } from '../src/step-plan.ts';

const params = resolveSamplingParams({ maxTokens: 8, temperature: 0 });

function setup(numBlocks: number, maxBatchedTokens: number, maxRunningSequences = 8) {
  const kv = new KvCacheManager(new BlockPool({ numBlocks, blockSize: 4 }));
  const hasher = new PrefixHasher({ modelId: 't', weightsDigestHex: '00', kvDtype: 'f32', blockSize: 4 });
  const preempted: string[] = [];
  const scheduler = new Scheduler({ maxBatchedTokens, maxRunningSequences }, kv, hasher, (s) => preempted.push(s.id));
  return { kv, scheduler, preempted };
}

function seq(id: string, length: number, first = 0): Sequence {
  return new Sequence(
    id,
    Array.from({ length }, (_, i) => first + i),
    params,
  );
}

/** What update() does for the plan: mark chunks computed, and append a token to those that sample. */
function complete(plan: StepPlan): void {
  for (const c of plan.chunks) {
    c.seq.numComputedTokens += c.count;
    if (c.sample) c.seq.tokens.push(1);
  }
}

const shape = (plan: StepPlan) => plan.chunks.map((c) => [c.seq.id, c.start, c.count, c.sample]);

describe('Scheduler', () => {
  it('splits a long prompt into chunks that fit the token budget (chunked prefill)', () => {
    const { scheduler } = setup(16, 5);
    scheduler.add(seq('a', 12));
    const steps: unknown[] = [];
    for (let i = 0; i < 3; i++) {
      const plan = scheduler.schedule();
      steps.push(shape(plan));
      complete(plan);
    }
    expect(steps).toEqual([[['a', 0, 5, false]], [['a', 5, 5, false]], [['a', 10, 2, true]]]);
  });

  it('asks for logits on every prompt row of a request that scores its prompt, and only until it generates', () => {
    const { scheduler } = setup(16, 5);
    const scoring = new Sequence(
      's',
      Array.from({ length: 12 }, (_, i) => i),
      resolveSamplingParams({ maxTokens: 8, temperature: 0, promptLogprobs: 1 }),
    );
    scheduler.add(scoring);
    scheduler.add(seq('plain', 3, 50));
    const flags: unknown[] = [];
    for (let i = 0; i < 4; i++) {
      const plan = scheduler.schedule();
      flags.push(plan.chunks.map((c) => [c.seq.id, c.start, c.count, c.logitsOfEveryRow === true]));
      complete(plan);
    }
    expect(flags).toEqual([
      [['s', 0, 5, true]],
      [['s', 5, 5, true]],
      [
        ['s', 10, 2, true],
        ['plain', 0, 3, false],
      ],
      [
        ['s', 12, 1, false],
        ['plain', 3, 1, false],
      ],
    ]);
  });

  it('serves running sequences before admitting waiting ones, within the budget', () => {
    const { scheduler } = setup(16, 6);
    scheduler.add(seq('a', 4));
    complete(scheduler.schedule());
    scheduler.add(seq('b', 8, 100));
    const plan = scheduler.schedule();
    expect(shape(plan)).toEqual([
      ['a', 4, 1, true],
      ['b', 0, 5, false],
    ]);
    expect(plan.numBatchedTokens).toBe(6);
  });

  it('caps the number of running sequences', () => {
    const { scheduler } = setup(16, 100, 2);
    for (const id of ['a', 'b', 'c']) scheduler.add(seq(id, 2, id.charCodeAt(0) * 10));
    const plan = scheduler.schedule();
    expect(plan.chunks.map((c) => c.seq.id)).toEqual(['a', 'b']);
    expect(scheduler.waiting.map((s) => s.id)).toEqual(['c']);
  });

  it('preempts the newest running sequence when blocks run out, and puts it back at the front of the queue', () => {
    const { scheduler, kv, preempted } = setup(3, 100);
    const a = seq('a', 4);
    const b = seq('b', 4, 50);
    scheduler.add(a);
    scheduler.add(b);
    complete(scheduler.schedule()); // a: 1 block (+1 token pending), b: 1 block
    // Decode: a needs a 2nd block (5 tokens), b needs a 2nd block → only one free block left.
    const plan = scheduler.schedule();
    expect(shape(plan)).toEqual([['a', 4, 1, true]]);
    expect(plan.preempted.map((s) => s.id)).toEqual(['b']);
    expect(preempted).toEqual(['b']);
    expect(b.numComputedTokens).toBe(0);
    expect(b.status).toBe('waiting');
    expect(scheduler.waiting[0]).toBe(b);
    expect(kv.hasSequence('b')).toBe(false);
  });

  it('admits nothing new in a step that had to preempt', () => {
    const { scheduler } = setup(3, 100);
    scheduler.add(seq('a', 4));
    scheduler.add(seq('b', 4, 50));
    complete(scheduler.schedule());
    scheduler.add(seq('c', 1, 90));
    const plan = scheduler.schedule();
    expect(plan.chunks.map((c) => c.seq.id)).toEqual(['a']);
    expect(scheduler.waiting.map((s) => s.id)).toEqual(['b', 'c']);
  });

  it('starts a sequence after the cached prefix of an earlier one', () => {
    const { scheduler, kv } = setup(16, 100);
    const hasher = new PrefixHasher({ modelId: 't', weightsDigestHex: '00', kvDtype: 'f32', blockSize: 4 });
    const a = seq('a', 9);
    scheduler.add(a);
    complete(scheduler.schedule());
    kv.commitFullBlocks('a', hasher.hashes(a), a.tokens);
    const b = seq('b', 10);
    scheduler.add(b);
    const plan = scheduler.schedule();
    const chunkB = plan.chunks.find((c) => c.seq.id === 'b');
    expect(chunkB?.start).toBe(8);
    expect(chunkB?.count).toBe(2);
    expect(b.numCachedPromptTokens).toBe(8);
  });
});
