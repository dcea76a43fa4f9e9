import type { KvCacheManager } from '@switchyard/kv-cache';
import type { ModelRunner } from './model-runner.ts';
import type { PrefixHasher } from './prefix-hasher.ts';
import { sampleToken } from './sampler.ts';
import type { SamplingParams } from './sampling-params.ts';
import { Scheduler, type SchedulerConfig } from './scheduler.ts';
import { Sequence, type FinishReason } from './sequence.ts';
import type { ExecuteResult, StepPlan } from './step-plan.ts';
import { logprobsOf, scorePromptRows } from './sequence-logprobs.ts';
import { StopChecker } from './stop-checker.ts';
import type { TokenEvent, TokenSink } from './token-event.ts';
import type { Tokenizer } from './tokenizer.ts';

export interface GenerateRequest {
  readonly id: string;
  readonly promptIds: readonly number[];
  readonly params: SamplingParams;
  /** Tenant salt for prefix-cache isolation, set by the server. */
  readonly cacheSalt?: string;
}

export interface EngineParts {
  readonly runner: ModelRunner;
  readonly kv: KvCacheManager;
  readonly hasher: PrefixHasher;
  readonly tokenizer: Tokenizer;
  readonly scheduler: SchedulerConfig;
  readonly maxContext: number;
  /** Token ids are below it: a prompt with any other id is rejected (it would index past the embedding). */
  readonly vocabSize?: number;
  readonly blockSize: number;
  /** Size of the KV block pool: a request that could outgrow it alone is rejected up front. */
  readonly numKvBlocks: number;
  readonly eosTokenId: number;
}

export interface StepStats {
  readonly numSequences: number;
  readonly numBatchedTokens: number;
  readonly numSampled: number;
  readonly numPreempted: number;
}

export type RejectCode =
  | 'prompt_too_long'
  | 'empty_prompt'
  | 'duplicate_id'
  | 'exceeds_kv_capacity'
  | 'invalid_token_id'
  /** A queued request for other weights than this engine's (two clusters share a namespace). */
  | 'weights_mismatch';

export class RequestRejectedError extends Error {
  override readonly name = 'RequestRejectedError';
  readonly code: RejectCode;
  constructor(code: RejectCode, message: string) {
    super(message);
    this.code = code;
  }
}

/** A sampled token as its event reports it (the request id and finish come from the caller). */
type EmittedToken = Pick<TokenEvent, 'index' | 'tokenId' | 'text' | 'logprob' | 'promptLogprobs'>;

interface Live {
  readonly seq: Sequence;
  readonly sink: TokenSink;
  readonly stop: StopChecker;
}

/**
 * The engine: `step()` is schedule → execute → update, the same whether its experts run in process
 * (the monolithic engine) or on expert workers (the executor decides). `EngineLoop` drives it; requests
 * enter with `add` and
 * leave through their sink's final event (finish reason set). Aborts requested during a step are
 * applied when the step ends, so a step never sees a sequence vanish under it.
 */
export class Engine {
  readonly #parts: EngineParts;
  readonly #scheduler: Scheduler;
  readonly #live = new Map<string, Live>();
  readonly #pendingAborts = new Map<string, Error | undefined>();
  #stepping = false;

  constructor(parts: EngineParts) {
    this.#parts = parts;
    this.#scheduler = new Scheduler(parts.scheduler, parts.kv, parts.hasher, (seq) => parts.runner.release(seq.id));
  }

  get hasWork(): boolean {
    return this.#scheduler.hasWork;
  }

  get numRunning(): number {
    return this.#scheduler.running.length;
  }

  get numWaiting(): number {
    return this.#scheduler.waiting.length;
  }

  /**
   * Prompt tokens queued for prefill: whole prompts of waiting sequences (their cached prefix is known
   * only at admission) and the uncomputed rest of running ones. What a router weighs as this engine's queue.
   */
  get numPendingPrefillTokens(): number {
    let n = 0;
    for (const seq of this.#scheduler.waiting) n += seq.numPromptTokens;
    for (const seq of this.#scheduler.running) n += Math.max(0, seq.numPromptTokens - seq.numComputedTokens);
    return n;
  }

  /** Queues a request; throws RequestRejectedError for one that can never run. */
  add(request: GenerateRequest, sink: TokenSink): void {
    this.#validate(request);
    const seq = new Sequence(request.id, request.promptIds, request.params, request.cacheSalt ?? '');
    const stop = new StopChecker(this.#parts.tokenizer.createStreamDecoder(), request.params.stop);
    this.#live.set(request.id, { seq, sink, stop });
    this.#scheduler.add(seq);
  }

  /** Ends a request (client gone, or an error outside the engine). Safe to call at any time. */
  abort(requestId: string, error?: Error): void {
    if (!this.#live.has(requestId)) return;
    if (this.#stepping) this.#pendingAborts.set(requestId, error);
    else this.#finish(requestId, error ? 'error' : 'abort', error);
  }

  async step(): Promise<StepStats> {
    const plan = this.#scheduler.schedule();
    this.#stepping = true;
    let result: ExecuteResult;
    try {
      result = await this.#parts.runner.execute(plan);
    } finally {
      this.#stepping = false;
    }
    return this.#update(plan, result);
  }

  #update(plan: StepPlan, result: ExecuteResult): StepStats {
    let numSampled = 0;
    for (const chunk of plan.chunks) {
      const { seq } = chunk;
      if (seq.isFinished) continue;
      const failure = result.failed.get(seq.id);
      if (failure) {
        this.#finish(seq.id, 'error', failure);
        continue;
      }
      this.#advance(seq, chunk.count);
      const rows = result.rowLogits?.get(seq.id);
      if (rows) scorePromptRows(seq, chunk.start, chunk.count, rows);
      const logits = result.logits.get(seq.id);
      if (chunk.sample && logits) {
        this.#emitToken(seq, sampleToken(logits, seq.params, seq.rng), logits);
        numSampled++;
      }
    }
    for (const [id, error] of this.#pendingAborts) this.#finish(id, error ? 'error' : 'abort', error);
    this.#pendingAborts.clear();
    return {
      numSequences: plan.chunks.length,
      numBatchedTokens: plan.numBatchedTokens,
      numSampled,
      numPreempted: plan.preempted.length,
    };
  }

  /** Marks `count` more tokens computed and keeps newly full blocks as cached pages. */
  #advance(seq: Sequence, count: number): void {
    const { blockSize } = this.#parts;
    const fullBefore = Math.floor(seq.numComputedTokens / blockSize);
    seq.numComputedTokens += count;
    const fullAfter = Math.floor(seq.numComputedTokens / blockSize);
    if (fullAfter === fullBefore) return;
    const hashes = this.#parts.hasher.hashes(seq);
    const blockIds = this.#parts.kv.blockTable(seq.id);
    this.#parts.runner.commitBlocks(seq, blockIds, fullBefore, fullAfter);
    this.#parts.kv.commitFullBlocks(seq.id, hashes.slice(0, fullAfter), seq.tokens);
  }

  #emitToken(seq: Sequence, tokenId: number, logits: Float32Array): void {
    const live = this.#live.get(seq.id);
    if (!live) return;
    seq.tokens.push(tokenId);
    const index = seq.numOutputTokens - 1;
    const { text, finish } = live.stop.accept(seq, tokenId, this.#parts.eosTokenId, this.#parts.maxContext);
    const token: EmittedToken = { index, tokenId, text, ...logprobsOf(seq, index, tokenId, logits) };
    if (finish) {
      this.#finish(seq.id, finish, undefined, token);
    } else {
      live.sink({ requestId: seq.id, ...token });
    }
  }

  #finish(requestId: string, reason: FinishReason, error?: Error, last?: EmittedToken): void {
    const live = this.#live.get(requestId);
    if (!live) return;
    const { seq } = live;
    this.#live.delete(requestId);
    seq.status = 'finished';
    seq.finishReason = reason;
    seq.error = error;
    this.#scheduler.finish(seq);
    this.#parts.runner.release(seq.id);
    const event: TokenEvent = {
      requestId,
      index: seq.numOutputTokens,
      tokenId: -1,
      text: '',
      ...last,
      finishReason: reason,
      usage: {
        promptTokens: seq.numPromptTokens,
        completionTokens: seq.numOutputTokens,
        cachedPromptTokens: seq.numCachedPromptTokens,
      },
      ...(error ? { error } : {}),
    };
    live.sink(event);
  }

  #validate(request: GenerateRequest): void {
    if (this.#live.has(request.id)) {
      throw new RequestRejectedError('duplicate_id', `request id ${request.id} is already running`);
    }
    const numPrompt = request.promptIds.length;
    if (numPrompt === 0) throw new RequestRejectedError('empty_prompt', 'the prompt has no tokens');
    const { vocabSize } = this.#parts;
    if (vocabSize !== undefined) {
      const bad = request.promptIds.find((id) => !Number.isInteger(id) || id < 0 || id >= vocabSize);
      if (bad !== undefined) {
        throw new RequestRejectedError('invalid_token_id', `token id ${bad} is outside the vocabulary of ${vocabSize}`);
      }
    }
    const { maxContext } = this.#parts;
    if (numPrompt + 1 > maxContext) {
      throw new RequestRejectedError(
        'prompt_too_long',
        `the prompt has ${numPrompt} tokens but the model's context is ${maxContext} tokens (at least one must be left to generate)`,
      );
    }
    const { blockSize, numKvBlocks } = this.#parts;
    const maxTokens = Math.min(maxContext, numPrompt + request.params.maxTokens);
    if (Math.ceil(maxTokens / blockSize) > numKvBlocks) {
      throw new RequestRejectedError(
        'exceeds_kv_capacity',
        `the request may need ${maxTokens} tokens of KV cache but the pool holds ${numKvBlocks * blockSize}`,
      );
    }
  }
}
