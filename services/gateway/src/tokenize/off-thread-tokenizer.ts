/**
 * Tokenizing off the event loop (issue 12 item 4): a text longer than `inlineMaxChars` is encoded on a
 * worker thread that holds its own copy of the model's tokenizer, so a few megabyte-sized prompts cannot
 * hold up /health, streaming or the engine loop; shorter texts are encoded in place (a thread hop costs
 * more than they do). Jobs run one at a time on the thread, in arrival order.
 */
import { JobThread } from '@switchyard/launcher';
import type { Tokenizer } from '@switchyard/engine';

/** Which tokenizer the thread loads: the model's tokenizer.json, or the byte tokenizer without one. */
export interface TokenizerSpec {
  readonly tokenizerPath?: string;
  readonly bosTokenId: number;
  readonly eosTokenId: number;
}

export interface OffThreadTokenizerOptions {
  /** Texts up to this many UTF-16 code units are encoded in place. Default 16,384. */
  readonly inlineMaxChars?: number;
}

type Reply = { id: number; ids: Int32Array } | { id: number; numTokens: number } | { id: number; error: string };

/** A text that encodes to more tokens than the caller allows (its ids are not handed back). */
export class TooManyTokensError extends Error {
  override readonly name = 'TooManyTokensError';
  readonly numTokens: number;
  constructor(numTokens: number, maxTokens: number) {
    super(`the text has ${numTokens} tokens, more than ${maxTokens}`);
    this.numTokens = numTokens;
  }
}

export class OffThreadTokenizer {
  readonly #inline: Tokenizer;
  readonly #inlineMaxChars: number;
  readonly #thread: JobThread<Reply>;
  #numOffThread = 0;

  constructor(inline: Tokenizer, spec: TokenizerSpec, options: OffThreadTokenizerOptions = {}) {
    this.#inline = inline;
    this.#inlineMaxChars = options.inlineMaxChars ?? 16_384;
    this.#thread = new JobThread(new URL('./tokenize-worker.ts', import.meta.url), {
      name: 'the tokenizer thread',
      workerData: spec,
    });
  }

  /** Texts encoded on the thread so far. */
  get numOffThread(): number {
    return this.#numOffThread;
  }

  /**
   * The ids of `text`; rejects with TooManyTokensError when there are more than `maxTokens` (then a long
   * text's ids are never copied back to this thread).
   */
  encode(text: string, maxTokens = Number.MAX_SAFE_INTEGER): Promise<number[]> {
    if (text.length <= this.#inlineMaxChars) {
      const ids = this.#inline.encode(text);
      return ids.length > maxTokens
        ? Promise.reject(new TooManyTokensError(ids.length, maxTokens))
        : Promise.resolve(ids);
    }
    this.#numOffThread++;
    return this.#thread.request({ text, maxTokens }).then((reply) => {
      if ('error' in reply) throw new Error(`tokenizing failed: ${reply.error}`);
      if ('numTokens' in reply) throw new TooManyTokensError(reply.numTokens, maxTokens);
      return Array.from(reply.ids);
    });
  }

  close(): Promise<void> {
    return this.#thread.close();
  }
}
