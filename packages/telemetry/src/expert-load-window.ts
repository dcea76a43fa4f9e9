/**
 * Expert load over a sliding window: (token, expert) pairs routed per layer and expert during the last
 * `windowMs`, counted from the routing decisions this engine made. What a load-aware placement is
 * computed from (docs/architecture.md §1 "Placement"), and what `/metrics` and the stats show.
 *
 * The window is a ring of `numBuckets` buckets of windowMs ÷ numBuckets each, so it slides by whole
 * buckets: `totals` covers the current bucket and the numBuckets − 1 before it. Time is always an
 * argument (no clock here). Counting allocates nothing.
 *
 * Invariant: `#sum` is the element-wise sum of the buckets still in the window; `#advance` keeps it so,
 * subtracting a bucket as it leaves (pair counts are integers, so the sums stay exact in float64).
 */
export interface ExpertLoadWindowOptions {
  readonly numLayers: number;
  readonly numExperts: number;
  readonly windowMs: number;
  /** Buckets the window is cut into (default 12: it slides in twelfths). */
  readonly numBuckets?: number;
}

export class ExpertLoadWindow {
  readonly numLayers: number;
  readonly numExperts: number;
  readonly windowMs: number;
  readonly #bucketMs: number;
  readonly #buckets: Float64Array[];
  readonly #sum: Float64Array;
  /** Index (time ÷ bucketMs) of the newest bucket; buckets older than numBuckets − 1 behind it are zero. */
  #current = Number.NEGATIVE_INFINITY;

  constructor(opts: ExpertLoadWindowOptions) {
    const numBuckets = opts.numBuckets ?? 12;
    for (const [name, v] of Object.entries({ ...opts, numBuckets })) {
      if (!(Number.isFinite(v) && v > 0 && (name === 'windowMs' || Number.isInteger(v)))) {
        throw new RangeError(
          `expert load window: ${name} must be a positive ${name === 'windowMs' ? 'number' : 'integer'}, got ${v}`,
        );
      }
    }
    this.numLayers = opts.numLayers;
    this.numExperts = opts.numExperts;
    this.windowMs = opts.windowMs;
    this.#bucketMs = opts.windowMs / numBuckets;
    const size = opts.numLayers * opts.numExperts;
    this.#buckets = Array.from({ length: numBuckets }, () => new Float64Array(size));
    this.#sum = new Float64Array(size);
  }

  /** Counts one layer call's routing decisions at `nowMs`: one pair per entry of `expertIds`. */
  add(layer: number, expertIds: ArrayLike<number>, nowMs: number): void {
    if (!Number.isInteger(layer) || layer < 0 || layer >= this.numLayers) {
      throw new RangeError(`layer ${layer} outside [0, ${this.numLayers})`);
    }
    const bucket = this.#advance(nowMs);
    const base = layer * this.numExperts;
    for (let p = 0; p < expertIds.length; p++) {
      const e = expertIds[p] ?? -1;
      if (e < 0 || e >= this.numExperts) throw new RangeError(`expert id ${e} outside [0, ${this.numExperts})`);
      bucket[base + e] = (bucket[base + e] ?? 0) + 1;
      this.#sum[base + e] = (this.#sum[base + e] ?? 0) + 1;
    }
  }

  /** Pairs per layer and expert in the window ending at `nowMs`: totals[layer][expert]. */
  totals(nowMs: number): number[][] {
    this.#advance(nowMs);
    return Array.from({ length: this.numLayers }, (_, layer) =>
      Array.from(this.#sum.subarray(layer * this.numExperts, (layer + 1) * this.numExperts)),
    );
  }

  /** Moves the window to `nowMs` (never backwards) and returns the bucket now being filled. */
  #advance(nowMs: number): Float64Array {
    const n = this.#buckets.length;
    const index = Math.floor(nowMs / this.#bucketMs);
    if (index > this.#current) {
      // Every bucket between the old newest and the new one leaves the window (at most all of them).
      const first = Math.max(this.#current + 1, index - n + 1);
      for (let i = first; i <= index; i++) {
        const bucket = this.#buckets[i % n];
        if (!bucket) continue;
        for (let j = 0; j < bucket.length; j++) this.#sum[j] = (this.#sum[j] ?? 0) - (bucket[j] ?? 0);
        bucket.fill(0);
      }
      this.#current = index;
    }
    // NOTE: a time before the newest bucket (a clock step back) counts into the newest bucket.
    return this.#buckets[this.#current % n] ?? new Float64Array(0);
  }
}
