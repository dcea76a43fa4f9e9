import { describe, expect, it } from 'vitest';
import { BlockPool, asBlockHash } from '../src/index.ts';
import type { BlockPoolEvent } from '../src/index.ts';

const hashA = asBlockHash('aa'.repeat(32));
const hashB = asBlockHash('bb'.repeat(32));
const tokensA = [1, 2, 3, 4];
const tokensB = [5, 6, 7, 8];

function poolWithEvents(numBlocks: number): { pool: BlockPool; events: BlockPoolEvent[] } {
  const events: BlockPoolEvent[] = [];
  return { pool: new BlockPool({ numBlocks, blockSize: 4, onEvent: (e) => events.push(e) }), events };
}

describe('BlockPool', () => {
  it('allocates from the head of the free queue with ref count 1', () => {
    const pool = new BlockPool({ numBlocks: 4, blockSize: 4 });
    expect(pool.allocate(2)).toEqual({ ok: true, blockIds: [0, 1] });
    expect([pool.refCount(0), pool.refCount(1), pool.refCount(2)]).toEqual([1, 1, 0]);
    expect(pool.freeQueue()).toEqual([2, 3]);
    expect(pool.numFreeBlocks).toBe(2);
  });

  it('evicts least recently freed first', () => {
    const pool = new BlockPool({ numBlocks: 4, blockSize: 4 });
    pool.allocate(4);
    pool.free([2]);
    pool.free([0]);
    pool.free([3]);
    expect(pool.freeQueue()).toEqual([2, 0, 3]);
    expect(pool.allocate(2)).toEqual({ ok: true, blockIds: [2, 0] });
  });

  it('keeps a freed block findable by hash until the block is reused', () => {
    const { pool, events } = poolWithEvents(2);
    pool.allocate(1);
    expect(pool.cacheFullBlock(0, hashA, tokensA, 0)).toBe(true);
    pool.free([0]);
    expect(pool.blockHash(0)).toBe(hashA);
    expect(pool.findCachedBlock(hashA, tokensA, 0)).toBe(0);

    expect(pool.allocate(2)).toEqual({ ok: true, blockIds: [1, 0] });
    expect(pool.blockHash(0)).toBeUndefined();
    expect(pool.findCachedBlock(hashA, tokensA, 0)).toBeUndefined();
    expect(events).toEqual([
      { type: 'stored', blockHash: hashA, blockId: 0 },
      { type: 'removed', blockHash: hashA, blockId: 0 },
    ]);
  });

  it('revives a freed cached block from the middle of the free queue', () => {
    const pool = new BlockPool({ numBlocks: 3, blockSize: 4 });
    pool.allocate(3);
    pool.cacheFullBlock(1, hashA, tokensA, 0);
    pool.free([0, 1, 2]);
    pool.touch([1]);
    expect(pool.refCount(1)).toBe(1);
    expect(pool.freeQueue()).toEqual([0, 2]);
    pool.touch([1]);
    expect(pool.refCount(1)).toBe(2);
  });

  it('changes nothing when an allocation cannot be satisfied', () => {
    const pool = new BlockPool({ numBlocks: 3, blockSize: 4 });
    pool.allocate(1);
    expect(pool.allocate(3)).toEqual({ ok: false, reason: 'no-free-blocks', numFree: 2, numNeeded: 3 });
    expect(pool.freeQueue()).toEqual([1, 2]);
    expect(pool.refCount(1)).toBe(0);
  });

  it('misses on a hash hit whose stored tokens differ', () => {
    const pool = new BlockPool({ numBlocks: 1, blockSize: 4 });
    pool.allocate(1);
    pool.cacheFullBlock(0, hashA, tokensA, 0);
    expect(pool.findCachedBlock(hashA, [0, 1, 2, 3, 4], 1)).toBe(0);
    expect(pool.findCachedBlock(hashA, tokensB, 0)).toBeUndefined();
  });

  it('keeps one block per hash and leaves a duplicate unhashed', () => {
    const { pool, events } = poolWithEvents(2);
    pool.allocate(2);
    expect(pool.cacheFullBlock(0, hashA, tokensA, 0)).toBe(true);
    expect(pool.cacheFullBlock(1, hashA, tokensA, 0)).toBe(false);
    expect(pool.blockHash(1)).toBeUndefined();
    expect(pool.cacheFullBlock(0, hashA, tokensA, 0)).toBe(true);
    expect(() => pool.cacheFullBlock(0, hashB, tokensB, 0)).toThrow();
    expect(pool.numCachedBlocks).toBe(1);
    expect(events).toHaveLength(1);
  });

  it('throws on a double free and on an unknown block id', () => {
    const pool = new BlockPool({ numBlocks: 2, blockSize: 4 });
    pool.allocate(1);
    pool.free([0]);
    expect(() => pool.free([0])).toThrow();
    expect(() => pool.refCount(2)).toThrow(RangeError);
  });
});
