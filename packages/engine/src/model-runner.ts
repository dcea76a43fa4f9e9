import type { ExecuteResult, StepPlan } from './step-plan.ts';
import type { Sequence } from './sequence.ts';

/**
 * Runs a step's chunks through the model and returns next-token logits. Owns the sequences' working
 * K/V; the engine tells it when a sequence's cache is gone and which full blocks to keep as pages.
 */
export interface ModelRunner {
  execute(plan: StepPlan): Promise<ExecuteResult>;
  /**
   * Keeps the K/V of seq's full blocks [fromBlock, toBlock) as pages under the given block ids, so a
   * later sequence with the same prefix can start from them.
   */
  commitBlocks(seq: Sequence, blockIds: readonly number[], fromBlock: number, toBlock: number): void;
  /** Drops seq's working K/V (finished, aborted or preempted). */
  release(seqId: string): void;
  close(): Promise<void>;
}
