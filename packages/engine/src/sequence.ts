import type { SamplingParams } from './sampling-params.ts';
import type { TokenLogprob } from './logprobs.ts';
import { RequestRng } from './sampler.ts';

export type SequenceStatus = 'waiting' | 'running' | 'finished';
export type FinishReason = 'stop' | 'length' | 'abort' | 'error';

/**
 * One request's generation state, owned by the engine. The scheduler moves it between the waiting and
 * running queues and sets `numComputedTokens` when it admits (to the cached prefix) or preempts (to 0) a
 * sequence; the engine advances it after each executed chunk; `update` appends sampled tokens.
 *
 * Invariants: `numComputedTokens ≤ tokens.length`; tokens whose K/V are in the cache are exactly
 * `tokens[0, numComputedTokens)`; a preempted sequence drops its cache and starts again from 0
 * (recompute), keeping its output so far and its rng state.
 */
export class Sequence {
  readonly id: string;
  readonly params: SamplingParams;
  readonly numPromptTokens: number;
  /** Prompt followed by every generated token. */
  readonly tokens: number[];
  readonly rng: RequestRng;
  /** Tenant salt for prefix hashing; set by the server, never by the client. */
  readonly cacheSalt: string;
  status: SequenceStatus = 'waiting';
  numComputedTokens = 0;
  /** Tokens of the prompt found in the prefix cache when the sequence was last admitted. */
  numCachedPromptTokens = 0;
  numPreemptions = 0;
  finishReason: FinishReason | undefined;
  error: Error | undefined;
  /** Text emitted so far (for stop-sequence matching). */
  text = '';
  /**
   * Logprobs of the prompt tokens scored so far (entry 0 is null), when the request asked for them;
   * entry p is written once, by the step that computes prompt row p - 1, and never rewritten (a
   * preempted sequence recomputes its rows but keeps what it reported).
   */
  readonly promptLogprobs: (TokenLogprob | null)[] | undefined;

  constructor(id: string, promptIds: readonly number[], params: SamplingParams, cacheSalt = '') {
    this.id = id;
    this.params = params;
    this.numPromptTokens = promptIds.length;
    this.tokens = [...promptIds];
    this.rng = new RequestRng(params.seed);
    this.cacheSalt = cacheSalt;
    this.promptLogprobs = params.promptLogprobs === undefined ? undefined : [null];
  }

  get numOutputTokens(): number {
    return this.tokens.length - this.numPromptTokens;
  }

  get outputIds(): number[] {
    return this.tokens.slice(this.numPromptTokens);
  }

  get isFinished(): boolean {
    return this.status === 'finished';
  }

  /** Tokens still to run through the model before the next token can be sampled. */
  get numUncomputedTokens(): number {
    return this.tokens.length - this.numComputedTokens;
  }
}
