import { RequestRejectedError, type GenerationBackend, type RequestMeta, type TokenEvent } from '@switchyard/engine';
import type { Choice } from './choice-render.ts';
import { badRequest } from './openai-error.ts';

/**
 * The choices of one request in flight, each a backend request of its own. `done` resolves once every
 * submitted choice has its final event. Invariants: the first choice to fail is `failure`, and every
 * other open choice is aborted at once; `onEvent` sees events only while nothing has failed (a stream
 * writes no token after the error); a choice is aborted at most while it is open.
 */
export class ChoiceSet {
  readonly choices: readonly Choice[];
  readonly done: Promise<void>;
  readonly #backend: GenerationBackend;
  readonly #onEvent: (choice: Choice, event: TokenEvent) => void;
  readonly #submitted = new Set<Choice>();
  #numOpen = 0;
  #failure: Error | undefined;
  #settle: () => void = () => {};

  constructor(
    backend: GenerationBackend,
    choices: readonly Choice[],
    onEvent: (choice: Choice, event: TokenEvent) => void,
  ) {
    this.#backend = backend;
    this.choices = choices;
    this.#onEvent = onEvent;
    this.done = new Promise((resolve) => {
      this.#settle = resolve;
    });
  }

  /** The error the first failed choice ended with, if any. */
  get failure(): Error | undefined {
    return this.#failure;
  }

  /**
   * Submits every choice. A choice the backend refuses aborts the ones already submitted and throws
   * (a 400 for a refused request), so nothing keeps running for an answer nobody reads.
   */
  submitAll(meta: RequestMeta, cacheSalt: string): void {
    try {
      for (const c of this.choices) {
        const request = { id: c.requestId, promptIds: c.prompt.promptIds, params: c.params, cacheSalt };
        this.#numOpen++;
        this.#submitted.add(c);
        try {
          this.#backend.submit(request, (event) => this.#accept(c, event), meta);
        } catch (error) {
          this.#numOpen--;
          this.#submitted.delete(c);
          throw error;
        }
      }
    } catch (error) {
      this.#failure ??= error instanceof Error ? error : new Error(String(error));
      this.abortOpen();
      if (error instanceof RequestRejectedError) throw badRequest(error.message, 'prompt', error.code);
      throw error;
    }
  }

  /** Aborts every submitted choice that has not ended (the client went away, or a choice failed). */
  abortOpen(): void {
    for (const c of this.#submitted) if (!c.final) this.#backend.abort(c.requestId);
  }

  #accept(choice: Choice, event: TokenEvent): void {
    choice.events.push(event);
    if (event.finishReason) choice.final = event;
    if (event.error && this.#failure === undefined) {
      this.#failure = event.error;
      this.abortOpen();
    }
    if (this.#failure === undefined) this.#onEvent(choice, event);
    if (event.finishReason && --this.#numOpen === 0) this.#settle();
  }
}
