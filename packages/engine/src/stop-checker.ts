import type { FinishReason, Sequence } from './sequence.ts';
import type { StreamDecoder } from './tokenizer.ts';

/**
 * Turns a sequence's new token into the text to emit and decides whether it ends the request.
 * Text that could be the start of a stop string is held back until it is known not to be one, so a
 * stop string never reaches the client.
 */
export class StopChecker {
  readonly #decoder: StreamDecoder;
  readonly #stops: readonly string[];
  readonly #holdBack: number;
  #emitted = 0;

  constructor(decoder: StreamDecoder, stops: readonly string[]) {
    this.#decoder = decoder;
    this.#stops = stops.filter((s) => s.length > 0);
    this.#holdBack = Math.max(0, ...this.#stops.map((s) => s.length - 1));
  }

  /** Appends the token's text to seq.text; returns the text to emit and the finish reason, if any. */
  accept(
    seq: Sequence,
    tokenId: number,
    eosTokenId: number,
    maxContext: number,
  ): { text: string; finish?: FinishReason } {
    const isEos = seq.params.stopAtEos && tokenId === eosTokenId;
    if (!isEos) seq.text += this.#decoder.push(tokenId);
    const stopAt = this.#findStop(seq.text);
    if (stopAt >= 0) {
      seq.text = seq.text.slice(0, stopAt);
      return { text: this.#take(seq.text, seq.text.length), finish: 'stop' };
    }
    const finish = isEos
      ? 'stop'
      : seq.numOutputTokens >= seq.params.maxTokens || seq.tokens.length >= maxContext
        ? 'length'
        : undefined;
    if (finish) {
      seq.text += this.#decoder.flush();
      return { text: this.#take(seq.text, seq.text.length), finish };
    }
    return { text: this.#take(seq.text, seq.text.length - this.#holdBack) };
  }

  #findStop(text: string): number {
    let first = -1;
    for (const stop of this.#stops) {
      const at = text.indexOf(stop, Math.max(0, this.#emitted - stop.length));
      if (at >= 0 && (first < 0 || at < first)) first = at;
    }
    return first;
  }

  #take(text: string, end: number): string {
    if (end <= this.#emitted) return '';
    const out = text.slice(this.#emitted, end);
    this.#emitted = end;
    return out;
  }
}
