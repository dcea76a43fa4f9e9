/**
 * The dense part of the model as the runner sees it: plain functions over Float32Arrays. The factory
 * backs them with onnxruntime sessions; tests may back them with the TypeScript reference.
 */

export interface AttentionOutput {
  /** [S, H] residual after attention. */
  readonly h: Float32Array;
  /** [S, H] RMSNorm_post(h): the MoE input. */
  readonly moeIn: Float32Array;
  /** [S, E] router logits. */
  readonly routerLogits: Float32Array;
  /** [S, numKvHeads × headDim] K and V of the new tokens, as they go into the cache. */
  readonly newK: Float32Array;
  readonly newV: Float32Array;
  /** [S] sigmoid gate of the shared expert, when the model has one. */
  readonly sharedGate?: Float32Array;
}

export interface AttentionKernel {
  /**
   * One sequence's chunk: `x` [S, H] at absolute positions [start, start + S), attending to `numPast`
   * cached tokens whose K/V are the first numPast × kvWidth floats of pastK / pastV.
   */
  run(
    x: Float32Array,
    numTokens: number,
    start: number,
    pastK: Float32Array,
    pastV: Float32Array,
    numPast: number,
  ): Promise<AttentionOutput>;
}

/** One sequence's share of a batched attention call. */
export interface AttentionSlot {
  readonly numTokens: number;
  /** Absolute position of the first new token (= tokens already cached). */
  readonly start: number;
  readonly pastK: Float32Array;
  readonly pastV: Float32Array;
}

/**
 * Attention for several sequences in one call: projections, norms and the router run once over all
 * rows (the weights are read once per step), the attention core per sequence over its own past.
 */
export interface BatchedAttentionKernel {
  /** `x` [Σ numTokens, H], the slots' rows one after another. */
  run(x: Float32Array, slots: readonly AttentionSlot[]): Promise<AttentionOutput>;
}

/** x [N, H] → y [N, out] (a SwiGLU expert, the shared expert, or the final norm + LM head). */
export interface RowKernel {
  run(x: Float32Array, numRows: number): Promise<Float32Array>;
}

export interface DenseKernels {
  readonly attention: readonly AttentionKernel[];
  /** Per layer, when available: used for steps with more than one sequence. */
  readonly batchedAttention?: readonly BatchedAttentionKernel[];
  /** Per layer, when the model has a shared expert. */
  readonly sharedExperts: readonly RowKernel[];
  readonly lmHead: RowKernel;
  /** [V, H] embedding table. */
  readonly embedding: Float32Array;
  /** Per layer selection bias (DeepSeek-V3), when the model has one. */
  readonly selectionBias: readonly (Float32Array | undefined)[];
  release(): Promise<void>;
}
