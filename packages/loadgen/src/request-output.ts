/**
 * What the load generator records for one request: the plain data every client metric is computed
 * from. Times are milliseconds on the client's monotonic clock (`performance.now()`).
 */

/** One request to send: prompt token ids and the exact number of tokens to generate. */
export interface BenchRequest {
  readonly promptIds: readonly number[];
  readonly outputLen: number;
  /** Arrival time in ms from the start of the run, for self-timed datasets (trace replay). */
  readonly arrivalMs?: number;
}

export interface RequestOutput {
  /** A first token chunk arrived and the stream ended without error (vLLM's `success`). */
  readonly success: boolean;
  /** Stopped by us (Ctrl-C, the duration bound) before it finished; neither completed nor failed. */
  readonly cancelled: boolean;
  /** Prompt tokens: the server's `usage.prompt_tokens` when it sends usage, else what we sent. */
  readonly promptLen: number;
  /** `usage.completion_tokens`, or the number of token chunks when the server sends no usage. */
  readonly outputTokens: number;
  /** Send time, ms from the start of the run. */
  readonly startMs: number;
  /** Time from send to the first chunk carrying a token. */
  readonly ttftMs: number;
  /** Every gap between consecutive token chunks. */
  readonly itlMs: readonly number[];
  /** Time from send to the last token chunk (vLLM's `latency`, the E2E latency). */
  readonly latencyMs: number;
  /** Time the request waited for a concurrency slot after it arrived (vLLM's `client_queue_time`). */
  readonly queueMs: number;
  readonly generatedText: string;
  readonly error: string;
}
