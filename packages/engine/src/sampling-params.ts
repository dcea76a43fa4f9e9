import { MAX_TOP_LOGPROBS } from './logprobs.ts';

/** What a request asks of the sampler and the stop logic. Resolved and validated before it reaches the engine. */
export interface SamplingParams {
  readonly maxTokens: number;
  /** 0 means greedy. */
  readonly temperature: number;
  /** 0 means no top-k cut. */
  readonly topK: number;
  /** 1 means no nucleus cut. */
  readonly topP: number;
  /** Seed of the request's own random stream, so a replay samples the same tokens. */
  readonly seed: number;
  /** Generation stops when the decoded text ends with one of these; the stop text is not returned. */
  readonly stop: readonly string[];
  /** Stop at the model's EOS token (default true). */
  readonly stopAtEos: boolean;
  /**
   * Report each sampled token's logprob with this many alternatives (0..MAX_TOP_LOGPROBS); absent: no
   * logprobs are computed at all.
   */
  readonly logprobs?: number;
  /**
   * Report every prompt token's logprob (the first as null) with this many alternatives. Runs the LM head
   * on every prompt row and bypasses the prefix cache for this request; absent: neither happens.
   */
  readonly promptLogprobs?: number;
}

export const DEFAULT_SAMPLING: SamplingParams = Object.freeze({
  maxTokens: 16,
  temperature: 1,
  topK: 0,
  topP: 1,
  seed: 0,
  stop: [],
  stopAtEos: true,
});

export class InvalidSamplingError extends Error {
  override readonly name = 'InvalidSamplingError';
  readonly code = 'invalid_sampling' as const;
  readonly field: string;
  constructor(field: string, message: string) {
    super(`${field}: ${message}`);
    this.field = field;
  }
}

/** Fills defaults and checks ranges; throws InvalidSamplingError naming the field. */
export function resolveSamplingParams(input: Partial<SamplingParams>): SamplingParams {
  const params = { ...DEFAULT_SAMPLING, ...stripUndefined(input) };
  if (!Number.isInteger(params.maxTokens) || params.maxTokens < 1) {
    throw new InvalidSamplingError('max_tokens', `must be a positive integer, got ${params.maxTokens}`);
  }
  if (!Number.isFinite(params.temperature) || params.temperature < 0) {
    throw new InvalidSamplingError('temperature', `must be ≥ 0, got ${params.temperature}`);
  }
  if (!Number.isInteger(params.topK) || params.topK < 0) {
    throw new InvalidSamplingError('top_k', `must be a non-negative integer, got ${params.topK}`);
  }
  if (!Number.isFinite(params.topP) || params.topP <= 0 || params.topP > 1) {
    throw new InvalidSamplingError('top_p', `must be in (0, 1], got ${params.topP}`);
  }
  if (!Number.isInteger(params.seed)) {
    throw new InvalidSamplingError('seed', `must be an integer, got ${params.seed}`);
  }
  checkNumTop('logprobs', params.logprobs);
  checkNumTop('prompt_logprobs', params.promptLogprobs);
  return Object.freeze({ ...params, stop: Object.freeze([...params.stop]) });
}

function checkNumTop(field: string, value: number | undefined): void {
  if (value === undefined) return;
  if (!Number.isInteger(value) || value < 0 || value > MAX_TOP_LOGPROBS) {
    throw new InvalidSamplingError(field, `must be an integer from 0 to ${MAX_TOP_LOGPROBS}, got ${value}`);
  }
}

function stripUndefined<T extends object>(input: T): Partial<T> {
  return Object.fromEntries(Object.entries(input).filter(([, v]) => v !== undefined)) as Partial<T>;
}
