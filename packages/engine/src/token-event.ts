import type { TokenLogprob } from './logprobs.ts';
import type { FinishReason } from './sequence.ts';

export interface Usage {
  readonly promptTokens: number;
  readonly completionTokens: number;
  /** Prompt tokens whose K/V came from the prefix cache. */
  readonly cachedPromptTokens: number;
}

/**
 * One generated token (or the end of a request) as the engine reports it. `index` counts output tokens
 * from 0, so a consumer that forwards each index once survives a replay of the request.
 */
export interface TokenEvent {
  readonly requestId: string;
  readonly index: number;
  /** -1 on a final event that carries no token (abort, error). */
  readonly tokenId: number;
  /** Text this event adds (may be '' while a multi-byte character or a possible stop string is pending). */
  readonly text: string;
  readonly finishReason?: FinishReason;
  readonly error?: Error;
  /** Present on the final event. */
  readonly usage?: Usage;
  /** The sampled token's logprob, when the request asked for `logprobs`. */
  readonly logprob?: TokenLogprob;
  /**
   * On the event of index 0 only, when the request asked for `promptLogprobs`: one entry per prompt
   * token, the first null (nothing precedes it).
   */
  readonly promptLogprobs?: readonly (TokenLogprob | null)[];
}

export type TokenSink = (event: TokenEvent) => void;
