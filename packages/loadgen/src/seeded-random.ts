/**
 * Seeded random variates for datasets and arrivals, over the model package's portable xoshiro128**
 * stream: the same seed and key give the same requests and arrival times on every run.
 *
 * NOTE: gamma and exponential variates use `Math.log`/`Math.pow`, whose last bit may differ between
 * JavaScript engines; that is fine for load shapes (only the weights need bit-portability).
 */

import { Prng } from '@switchyard/model';

export class SeededRandom {
  readonly #prng: Prng;

  constructor(seed: number, key: string) {
    this.#prng = new Prng(seed, key);
  }

  /** Uniform in the open interval (0, 1). */
  uniform(): number {
    return this.#prng.nextFloat();
  }

  /** Uniform integer in [lo, hi] (both inclusive), like numpy's `integers(lo, hi + 1)`. */
  integer(lo: number, hi: number): number {
    if (!(Number.isInteger(lo) && Number.isInteger(hi) && lo <= hi))
      throw new RangeError(`bad integer range [${lo}, ${hi}]`);
    return lo + Math.min(hi - lo, Math.floor(this.uniform() * (hi - lo + 1)));
  }

  normal(): number {
    return this.#prng.nextNormal();
  }

  /** Exponential with the given mean. */
  exponential(mean: number): number {
    return -Math.log(this.uniform()) * mean;
  }

  /**
   * Gamma(shape, scale) by Marsaglia and Tsang's method (shape ≥ 1), boosted for shape < 1 by
   * Gamma(shape + 1) × U^(1/shape). Mean shape × scale, variance shape × scale².
   */
  gamma(shape: number, scale: number): number {
    if (!(shape > 0 && scale > 0)) throw new RangeError(`gamma needs shape > 0 and scale > 0, got ${shape}, ${scale}`);
    if (shape < 1) return this.gamma(shape + 1, scale) * Math.pow(this.uniform(), 1 / shape);
    const d = shape - 1 / 3;
    const c = 1 / Math.sqrt(9 * d);
    for (;;) {
      const x = this.normal();
      const v0 = 1 + c * x;
      if (v0 <= 0) continue;
      const v = v0 * v0 * v0;
      const u = this.uniform();
      if (Math.log(u) < 0.5 * x * x + d - d * v + d * Math.log(v)) return d * v * scale;
    }
  }

  /** Fisher–Yates shuffle of a copy. */
  shuffled<T>(items: readonly T[]): T[] {
    const out = [...items];
    for (let i = out.length - 1; i > 0; i--) {
      const j = this.integer(0, i);
      const a = out[i];
      const b = out[j];
      if (a === undefined || b === undefined) continue;
      out[i] = b;
      out[j] = a;
    }
    return out;
  }
}
