import type { Sequence } from './sequence.ts';

/** One sequence's share of a step: run tokens [start, start + count) through the model. */
export interface ScheduledChunk {
  readonly seq: Sequence;
  readonly start: number;
  readonly count: number;
  /** True when this chunk reaches the end of the sequence, so the step samples its next token. */
  readonly sample: boolean;
  /**
   * True when the LM head runs on every row of the chunk, not only on the last row of a sampling chunk:
   * set by the scheduler where `scoresPromptRows` holds. Absent means false.
   */
  readonly logitsOfEveryRow?: boolean;
}

/**
 * What the scheduler decided for one step, handed to the model runner and to update.
 * NOTE: the plan itself is readonly, but its chunks carry the live (mutable) `Sequence` objects, not
 * copies: the runner reads their tokens and the engine advances them after the step.
 */
export interface StepPlan {
  readonly chunks: readonly ScheduledChunk[];
  /** Sequences preempted (cache dropped, back to waiting) while planning this step. */
  readonly preempted: readonly Sequence[];
  readonly numBatchedTokens: number;
}

/**
 * True when the runner must run the LM head on every row of this chunk, not only the last: the request
 * asked for prompt logprobs and the chunk holds prompt rows whose next token is a prompt token, before
 * anything was generated (after a preemption those rows were scored already).
 */
export function scoresPromptRows(chunk: ScheduledChunk): boolean {
  const { seq } = chunk;
  return seq.params.promptLogprobs !== undefined && seq.numOutputTokens === 0 && chunk.start < seq.numPromptTokens - 1;
}

/** What the model runner returns: the next-token logits of every chunk that samples. */
export interface ExecuteResult {
  /** Keyed by sequence id; one row of vocabulary logits. */
  readonly logits: ReadonlyMap<string, Float32Array>;
  /**
   * Keyed by sequence id, for chunks with `logitsOfEveryRow`: the logits of every row of the
   * chunk, `count` rows of the vocabulary, row r predicting token `start + r + 1`.
   */
  readonly rowLogits?: ReadonlyMap<string, Float32Array>;
  /** Sequences whose computation failed this step (e.g. an expert worker lost without a replica). */
  readonly failed: ReadonlyMap<string, Error>;
}
