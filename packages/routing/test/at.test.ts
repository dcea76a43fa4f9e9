import { describe, expect, it } from 'vitest';
import { at } from '../src/at.ts';

describe('at', () => {
  it('reads an element in range, including a legitimate 0', () => {
    expect(at(Int32Array.of(4, 0, 7), 1)).toBe(0);
    expect(at([4, 0, 7], 2)).toBe(7);
  });

  it('throws on an index out of range instead of reading it as row 0', () => {
    expect(() => at(Int32Array.of(4, 0, 7), 3)).toThrow(RangeError);
    expect(() => at(Int32Array.of(4, 0, 7), -1)).toThrow(/index -1 is out of range \(length 3\)/);
  });
});
