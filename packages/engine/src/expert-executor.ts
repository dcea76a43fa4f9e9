import type { TokenRoutes } from '@switchyard/routing';

/** A layer's expert output, with the batch rows (if any) whose experts could not be run. */
export interface LayerResult {
  /** [numTokens, hidden]: per token, the weighted sum of its chosen experts' outputs (routed experts only). */
  readonly output: Float32Array;
  /** Batch rows whose output is missing because an expert failed; empty when all went well. */
  readonly failedRows: Int32Array;
  /** Why those rows failed. */
  readonly error?: Error;
}

/**
 * Where the engine sends each layer's routed tokens. The monolithic engine runs experts in process;
 * the distributed one sends them to expert workers over gRPC. Both must give the same numbers.
 */
export interface ExpertExecutor {
  /** `hidden` is [routes.numTokens, hiddenSize] — the MoE input of every token in the batch. */
  runLayer(layer: number, hidden: Float32Array, routes: TokenRoutes, signal?: AbortSignal): Promise<LayerResult>;
  close(): Promise<void>;
}
