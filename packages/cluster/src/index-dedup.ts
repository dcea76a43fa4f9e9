import type { TokenEvent } from '@switchyard/engine';

export type IndexVerdict = 'forward' | 'duplicate' | 'gap';

/**
 * Decides, for each token event of one request as it arrives, whether the client gets it. Pure.
 *
 * Invariant: the forwarded events have indices 0, 1, 2, … with no gap and no repeat, and nothing is
 * forwarded after a final event. Events of a replay (another engine serving the request again after a
 * crash, with the same seed, hence the same tokens) repeat indices already forwarded and are dropped
 * until the replay passes the last forwarded index. An index beyond the next one means events were
 * lost: it is not forwarded (the caller asks for a resend).
 */
export class IndexDedup {
  #next = 0;
  #finished = false;

  /** Index of the next event to forward (= number of events forwarded). */
  get nextIndex(): number {
    return this.#next;
  }

  get isFinished(): boolean {
    return this.#finished;
  }

  /**
   * NOTE: a final error event without a token ends the stream whatever its index: it comes from the
   * last allowed try (or a rejection), and earlier tries may have forwarded more indices than it
   * reached. The caller forwards it as index `nextIndex` (read before accepting).
   */
  accept(event: Pick<TokenEvent, 'index' | 'tokenId' | 'finishReason'>): IndexVerdict {
    if (this.#finished) return 'duplicate';
    if (event.finishReason === 'error' && event.tokenId < 0) {
      this.#finished = true;
      return 'forward';
    }
    if (event.index < this.#next) return 'duplicate';
    if (event.index > this.#next) return 'gap';
    this.#next += 1;
    if (event.finishReason !== undefined) this.#finished = true;
    return 'forward';
  }
}
