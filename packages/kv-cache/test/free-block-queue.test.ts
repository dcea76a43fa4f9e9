import { describe, expect, it } from 'vitest';
import { FreeBlockQueue } from '../src/index.ts';

describe('FreeBlockQueue', () => {
  it('starts with every block in ascending id order', () => {
    const queue = new FreeBlockQueue(4);
    expect(queue.toArray()).toEqual([0, 1, 2, 3]);
    expect(queue.length).toBe(4);
  });

  it('pops from the head and pushes to the tail', () => {
    const queue = new FreeBlockQueue(3);
    expect(queue.popFront()).toBe(0);
    queue.pushBack(0);
    expect(queue.toArray()).toEqual([1, 2, 0]);
  });

  it('removes a block from the middle, the head or the tail', () => {
    const queue = new FreeBlockQueue(5);
    queue.remove(2);
    queue.remove(0);
    queue.remove(4);
    expect(queue.toArray()).toEqual([1, 3]);
    expect(queue.has(2)).toBe(false);
    queue.remove(1);
    queue.remove(3);
    expect(queue.popFront()).toBeUndefined();
    queue.pushBack(2);
    expect(queue.toArray()).toEqual([2]);
  });

  it('refuses to hold a block twice or remove an absent one', () => {
    const queue = new FreeBlockQueue(2);
    expect(() => queue.pushBack(1)).toThrow();
    queue.remove(1);
    expect(() => queue.remove(1)).toThrow();
  });
});
