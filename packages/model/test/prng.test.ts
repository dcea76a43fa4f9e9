import { describe, expect, it } from 'vitest';
import { normalQuantile, portableLog, Prng } from '../src/prng.ts';

describe('Prng', () => {
  it('produces a fixed stream for a (seed, key) pair', () => {
    // Pinned: these values must never change, or every random model changes its weights.
    const prng = new Prng(42, 'model.embed_tokens.weight');
    expect([prng.nextUint32(), prng.nextUint32(), prng.nextUint32()]).toEqual([3062095570, 4147477371, 1439159113]);
    const normals = new Float32Array(4);
    new Prng(7).fillNormal(normals, 0, 1);
    expect(Array.from(normals)).toEqual([
      -1.0624974966049194, 2.0256755352020264, 0.10994480550289154, 1.3323254585266113,
    ]);
  });

  it('gives independent streams for different seeds and keys', () => {
    const a = new Prng(1, 'a').nextUint32();
    expect(new Prng(1, 'a').nextUint32()).toBe(a);
    expect(new Prng(2, 'a').nextUint32()).not.toBe(a);
    expect(new Prng(1, 'b').nextUint32()).not.toBe(a);
    expect(new Prng(2 ** 32 + 1, 'a').nextUint32()).not.toBe(a);
  });

  it('continues the same stream across chunked fills', () => {
    const whole = new Float32Array(1001);
    new Prng(3, 'x').fillNormal(whole, 0.5, 2);
    const prng = new Prng(3, 'x');
    const parts = [new Float32Array(500), new Float32Array(501)];
    for (const part of parts) prng.fillNormal(part, 0.5, 2);
    expect(Array.from(parts[0] ?? [])).toEqual(Array.from(whole.subarray(0, 500)));
    expect(Array.from(parts[1] ?? [])).toEqual(Array.from(whole.subarray(500)));
  });

  it('draws normals with the requested mean, spread and tails', () => {
    const n = 1_000_000;
    const xs = new Float32Array(n);
    new Prng(11).fillNormal(xs, 1, 2);
    let sum = 0;
    let sumSq = 0;
    let beyond3 = 0;
    for (const x of xs) {
      sum += x;
      sumSq += (x - 1) ** 2;
      if (Math.abs(x - 1) > 6) beyond3++;
    }
    expect(sum / n).toBeCloseTo(1, 2);
    expect(Math.sqrt(sumSq / n)).toBeCloseTo(2, 2);
    // P(|z| > 3) = 0.0027.
    expect(beyond3 / n).toBeGreaterThan(0.0022);
    expect(beyond3 / n).toBeLessThan(0.0032);
  });

  it('rejects seeds that are not non-negative safe integers', () => {
    expect(() => new Prng(-1)).toThrow(RangeError);
    expect(() => new Prng(1.5)).toThrow(RangeError);
  });
});

describe('portable math', () => {
  it('portableLog matches Math.log closely', () => {
    for (const x of [1e-300, 2 ** -32, 0.1, 0.5, 0.999, 1, 1.5, 2, 1234.5, 1e300]) {
      expect(Math.abs(portableLog(x) - Math.log(x))).toBeLessThan(1e-9 * Math.max(1, Math.abs(Math.log(x))));
    }
  });

  it('normalQuantile inverts the normal CDF', () => {
    expect(normalQuantile(0.5)).toBeCloseTo(0, 12);
    expect(normalQuantile(0.975)).toBeCloseTo(1.959964, 5);
    expect(normalQuantile(0.01)).toBeCloseTo(-2.326348, 5);
    expect(normalQuantile(1e-9)).toBeCloseTo(-5.997807, 4);
  });
});
