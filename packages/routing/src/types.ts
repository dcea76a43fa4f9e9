/**
 * Plain data that routing hands to the executors. Per-token routes are stored CSR-style so that a
 * full top-k decision and a worker's subset (a variable number of pairs per token) share one shape.
 */

/** Per-token (expert id, gate weight) pairs: token t's pairs are [offsets[t], offsets[t+1]). */
export interface TokenRoutes {
  readonly numTokens: number;
  /** Length numTokens + 1; offsets[0] = 0, offsets[numTokens] = total pairs. */
  readonly offsets: Int32Array;
  readonly expertIds: Int32Array;
  readonly weights: Float32Array;
}

/** Rows of one expert: which batch rows go to it and with which gate weight. */
export interface ExpertRows {
  readonly expertId: number;
  /** Indices into the batch, ascending. */
  readonly rows: Int32Array;
  readonly weights: Float32Array;
}

/** A layer's rows grouped by expert, experts in ascending id order, experts with no rows omitted. */
export interface DispatchPlan {
  readonly numTokens: number;
  readonly experts: readonly ExpertRows[];
}
