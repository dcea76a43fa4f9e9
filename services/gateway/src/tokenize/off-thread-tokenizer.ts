/**
 * Tokenizing off the event loop (issue 12 item 4): a text longer than `inlineMaxChars` is encoded on a
 * worker thread that holds its own copy of the model's tokenizer, so a few megabyte-sized prompts cannot
 * hold up /health, streaming or the engine loop; shorter texts are encoded in place (a thread hop costs
 * more than they do). Jobs run one at a time on the thread, in arrival order.
 */
import { Worker } from 'node:worker_threads';
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

type Reply =
  { id: number; ids: Int32Array } | { id: number; numTokens: number } | { id: number; error: string } | { ready: true };

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
  readonly #spec: TokenizerSpec;
  readonly #inlineMaxChars: number;
  #worker: Worker | undefined;
  #nextId = 0;
  readonly #pending = new Map<
    number,
    { resolve: (ids: number[]) => void; reject: (error: Error) => void; maxTokens: number }
  >();
  #numOffThread = 0;

  constructor(inline: Tokenizer, spec: TokenizerSpec, options: OffThreadTokenizerOptions = {}) {
    this.#inline = inline;
    this.#spec = spec;
    this.#inlineMaxChars = options.inlineMaxChars ?? 16_384;
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
    const worker = this.#start();
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject, maxTokens });
      worker.postMessage({ id, text, maxTokens });
    });
  }

  async close(): Promise<void> {
    const worker = this.#worker;
    this.#worker = undefined;
    if (worker) await worker.terminate();
  }

  #start(): Worker {
    if (this.#worker) return this.#worker;
    const worker = new Worker(new URL('./tokenize-worker.ts', import.meta.url), { workerData: this.#spec });
    // NOTE: an idle tokenizer thread must not keep the process alive.
    worker.unref();
    worker.on('message', (reply: Reply) => {
      if ('ready' in reply) return;
      const pending = this.#pending.get(reply.id);
      this.#pending.delete(reply.id);
      if (!pending) return;
      if ('error' in reply) pending.reject(new Error(`tokenizing failed: ${reply.error}`));
      else if ('numTokens' in reply) pending.reject(new TooManyTokensError(reply.numTokens, pending.maxTokens));
      else pending.resolve(Array.from(reply.ids));
    });
    const fail = (error: Error) => {
      // The thread died: fail what it held, and start a new one for the next text.
      for (const pending of this.#pending.values()) pending.reject(error);
      this.#pending.clear();
      if (this.#worker === worker) this.#worker = undefined;
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`the tokenizer thread exited with code ${code}`)));
    this.#worker = worker;
    return worker;
  }
}
