import { describe, expect, it } from 'vitest';
import { splitMicroBatches } from '../src/moe-model-runner.ts';
import { Sequence } from '../src/sequence.ts';
import { resolveSamplingParams } from '../src/sampling-params.ts';
import type { ScheduledChunk } from '../src/step-plan.ts';

const params = resolveSamplingParams({ maxTokens: 1 });
const chunk = (id: string, count: number): ScheduledChunk => ({
  seq: new Sequence(id, [1], params),
  start: 0,
  count,
  sample: true,
});

describe('splitMicroBatches', () => {
  it('splits decode chunks into two halves of equal token counts, in order', () => {
    const groups = splitMicroBatches(
      ['a', 'b', 'c', 'd'].map((id) => chunk(id, 1)),
      2,
    );
    expect(groups.map((g) => g.map((c) => c.seq.id))).toEqual([
      ['a', 'b'],
      ['c', 'd'],
    ]);
  });

  it('balances by tokens, not by chunks', () => {
    const groups = splitMicroBatches([chunk('a', 10), chunk('b', 1), chunk('c', 1), chunk('d', 1)], 2);
    expect(groups.map((g) => g.map((c) => c.seq.id))).toEqual([['a'], ['b', 'c', 'd']]);
  });

  it('keeps a single chunk, or n = 1, as one batch', () => {
    expect(splitMicroBatches([chunk('a', 3)], 2)).toHaveLength(1);
    expect(splitMicroBatches([chunk('a', 3), chunk('b', 3)], 1)).toHaveLength(1);
  });
});
