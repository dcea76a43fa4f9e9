import { ClusterConfigError } from './errors.ts';

/** Deadlines of a frontend's token streams, resolved once and frozen. */
export interface TokenStreamOptions {
  /** From submission to the first event (queue wait + prefill); past it the request fails. */
  readonly firstEventTimeoutMs: number;
  /** Between events once the request is being served; must exceed the queue's AckWait so a migration fits. */
  readonly idleTimeoutMs: number;
  /** Quiet time after which the frontend asks the serving engine to resend (lost events); doubles up to 4×. */
  readonly resendAfterMs: number;
  /** How often deadlines and resends are checked (one timer for all streams). */
  readonly tickMs: number;
}

export function resolveTokenStreamOptions(input: Partial<TokenStreamOptions> = {}): TokenStreamOptions {
  const options: TokenStreamOptions = {
    firstEventTimeoutMs: input.firstEventTimeoutMs ?? 120_000,
    idleTimeoutMs: input.idleTimeoutMs ?? 60_000,
    resendAfterMs: input.resendAfterMs ?? 2_000,
    tickMs: input.tickMs ?? 250,
  };
  for (const [name, value] of Object.entries(options)) {
    if (!Number.isInteger(value) || value < 1)
      throw new ClusterConfigError(`token stream ${name} must be a positive integer, got ${value}`);
  }
  return Object.freeze(options);
}
