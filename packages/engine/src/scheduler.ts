import type { Sequence } from './sequence.ts';
import { scoresPromptRows, type ScheduledChunk, type StepPlan } from './step-plan.ts';
import type { PrefixHasher } from './prefix-hasher.ts';
import type { KvCacheManager } from '@switchyard/kv-cache';

export interface SchedulerConfig {
  /** Token budget of one step (prefill chunks + decode tokens). */
  readonly maxBatchedTokens: number;
  /** Most sequences running at once. */
  readonly maxRunningSequences: number;
}

/** Told when a sequence loses its cache, so the runner can drop its working K/V too. */
export type PreemptListener = (seq: Sequence) => void;

/**
 * Continuous batching with chunked prefill and preemption by recompute (vLLM v1's policy, simplified).
 *
 * Invariants: `running` holds sequences in admission order, each with blocks for its computed tokens;
 * `waiting` is FIFO except that preempted sequences go back to its front; a step never schedules more
 * than `maxBatchedTokens` tokens. Running sequences are served before waiting ones, and nothing new is
 * admitted in a step that had to preempt.
 */
export class Scheduler {
  readonly #config: SchedulerConfig;
  readonly #kv: KvCacheManager;
  readonly #hasher: PrefixHasher;
  readonly #onPreempt: PreemptListener;
  readonly waiting: Sequence[] = [];
  readonly running: Sequence[] = [];

  constructor(config: SchedulerConfig, kv: KvCacheManager, hasher: PrefixHasher, onPreempt: PreemptListener) {
    this.#config = config;
    this.#kv = kv;
    this.#hasher = hasher;
    this.#onPreempt = onPreempt;
  }

  add(seq: Sequence): void {
    this.waiting.push(seq);
  }

  get hasWork(): boolean {
    return this.waiting.length > 0 || this.running.length > 0;
  }

  schedule(): StepPlan {
    const chunks: ScheduledChunk[] = [];
    const preempted: Sequence[] = [];
    let budget = this.#config.maxBatchedTokens;
    budget = this.#scheduleRunning(chunks, preempted, budget);
    if (preempted.length === 0) budget = this.#admitWaiting(chunks, budget);
    return { chunks, preempted, numBatchedTokens: this.#config.maxBatchedTokens - budget };
  }

  /** Removes a finished (or aborted) sequence and frees its blocks. */
  finish(seq: Sequence): void {
    removeFrom(this.running, seq);
    removeFrom(this.waiting, seq);
    this.#kv.free(seq.id);
    this.#hasher.forget(seq.id);
  }

  #scheduleRunning(chunks: ScheduledChunk[], preempted: Sequence[], budget: number): number {
    for (let i = 0; i < this.running.length && budget > 0; i++) {
      const seq = this.running[i];
      if (!seq) break;
      const count = Math.min(seq.numUncomputedTokens, budget);
      if (count === 0) continue;
      if (!this.#reserveOrPreempt(seq, count, preempted)) break;
      chunks.push(chunkOf(seq, count));
      budget -= count;
    }
    return budget;
  }

  /** Grows seq's blocks for `count` more tokens, preempting the newest running sequences if needed. */
  #reserveOrPreempt(seq: Sequence, count: number, preempted: Sequence[]): boolean {
    for (;;) {
      if (this.#kv.appendSlots(seq.id, seq.numComputedTokens + count).ok) return true;
      const victim = this.running[this.running.length - 1];
      if (!victim) return false;
      this.#preempt(victim);
      preempted.push(victim);
      if (victim === seq) return false;
    }
  }

  #admitWaiting(chunks: ScheduledChunk[], budget: number): number {
    while (budget > 0 && this.running.length < this.#config.maxRunningSequences) {
      const seq = this.waiting[0];
      if (!seq) break;
      const cached = this.#cachedPrefixOf(seq);
      const count = Math.min(seq.tokens.length - cached.numCachedTokens, budget);
      if (!this.#kv.allocate(seq.id, cached.numCachedTokens + count, cached.blockIds).ok) break;
      this.waiting.shift();
      seq.status = 'running';
      seq.numComputedTokens = cached.numCachedTokens;
      if (seq.numPreemptions === 0) seq.numCachedPromptTokens = cached.numCachedTokens;
      this.running.push(seq);
      chunks.push(chunkOf(seq, count));
      budget -= count;
    }
    return budget;
  }

  /**
   * The prefix of seq already in the cache. NOTE: none for a request that scores its prompt: a cached
   * row would skip the LM head its prompt logprobs need (vLLM skips the prefix cache for them too). Its
   * own full blocks are still cached for the requests after it.
   */
  #cachedPrefixOf(seq: Sequence): { numCachedTokens: number; blockIds: readonly number[] } {
    if (seq.params.promptLogprobs !== undefined) return { numCachedTokens: 0, blockIds: [] };
    return this.#kv.findCachedPrefix(this.#hasher.hashes(seq), seq.tokens);
  }

  #preempt(seq: Sequence): void {
    removeFrom(this.running, seq);
    this.#kv.free(seq.id);
    seq.status = 'waiting';
    seq.numComputedTokens = 0;
    seq.numPreemptions++;
    this.waiting.unshift(seq);
    this.#onPreempt(seq);
  }
}

function chunkOf(seq: Sequence, count: number): ScheduledChunk {
  const start = seq.numComputedTokens;
  const chunk = { seq, start, count, sample: start + count === seq.tokens.length };
  return scoresPromptRows(chunk) ? { ...chunk, logitsOfEveryRow: true } : chunk;
}

function removeFrom(list: Sequence[], seq: Sequence): void {
  const i = list.indexOf(seq);
  if (i >= 0) list.splice(i, 1);
}
