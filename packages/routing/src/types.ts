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

/** How scores are computed from router logits (docs/architecture.md §3). */
export type Scoring = 'softmax' | 'sigmoid';

/**
 * The gating policy of one MoE layer, with Hugging Face semantics (Mixtral, OLMoE, Qwen-MoE,
 * DeepSeek-V3). Plain data: the engine builds it once from the model config.
 */
export interface RouterConfig {
  readonly numExperts: number;
  /** Experts chosen per token; 1 ≤ topK ≤ numExperts. */
  readonly topK: number;
  readonly scoring: Scoring;
  /** Renormalise the chosen weights to sum to 1 (before scaling). */
  readonly normTopKProb: boolean;
  /** Multiplies the final weights (DeepSeek-V3); 1 for most families. */
  readonly routedScalingFactor: number;
  /**
   * Opt-in capacity policy: each expert takes at most ceil(capacityFactor · numTokens · topK / numExperts)
   * (token, expert) pairs per call, first come first served in token order. Absent = dropless.
   */
  readonly capacityFactor?: number;
}

/**
 * What one expert worker receives for one layer: each batch row it needs exactly once, plus that row's
 * pairs for the experts this worker hosts.
 */
export interface WorkerShard {
  readonly workerIndex: number;
  /** Batch rows sent to this worker, ascending, each once. */
  readonly tokenRows: Int32Array;
  /** Local routes: token i of the shard is batch row tokenRows[i]; only pairs hosted by this worker. */
  readonly routes: TokenRoutes;
}
