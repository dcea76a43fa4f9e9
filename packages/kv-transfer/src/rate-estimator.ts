/**
 * A rate (units per millisecond) from recent observations: an exponentially weighted mean of the
 * units and of the time, so a long transfer weighs more than a short one. Starts from a prior until the
 * first observation. Pure.
 */
export class RateEstimator {
  readonly #alpha: number;
  #units: number;
  #ms: number;
  #numObserved = 0;

  /** `priorPerMs`: the rate assumed before anything is measured; `alpha`: weight of each new sample. */
  constructor(priorPerMs: number, alpha = 0.3) {
    if (!(priorPerMs > 0)) throw new RangeError(`priorPerMs must be > 0, got ${priorPerMs}`);
    if (!(alpha > 0 && alpha <= 1)) throw new RangeError(`alpha must be in (0, 1], got ${alpha}`);
    this.#alpha = alpha;
    this.#units = priorPerMs;
    this.#ms = 1;
  }

  get perMs(): number {
    return this.#units / this.#ms;
  }

  get numObserved(): number {
    return this.#numObserved;
  }

  /** Time `units` would take at the current rate. */
  msFor(units: number): number {
    return units / this.perMs;
  }

  observe(units: number, ms: number): void {
    if (!(units > 0) || !(ms > 0)) return;
    const a = this.#numObserved === 0 ? 1 : this.#alpha;
    this.#units = (1 - a) * this.#units + a * units;
    this.#ms = (1 - a) * this.#ms + a * ms;
    this.#numObserved++;
  }
}
