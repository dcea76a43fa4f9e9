import { describe, expect, it } from 'vitest';
import { colocatedWorkerThreads } from '../src/index.ts';

describe('colocatedWorkerThreads', () => {
  it('divides the cores among the workers on one machine, at least one thread each', () => {
    expect(colocatedWorkerThreads(2, 2)).toBe(1);
    expect(colocatedWorkerThreads(2, 8)).toBe(4);
    expect(colocatedWorkerThreads(3, 8)).toBe(2);
    expect(colocatedWorkerThreads(4, 2)).toBe(1);
    expect(colocatedWorkerThreads(1, 16)).toBe(16);
  });

  it('gives every core when there are no workers to share them with', () => {
    expect(colocatedWorkerThreads(0, 6)).toBe(6);
  });
});
