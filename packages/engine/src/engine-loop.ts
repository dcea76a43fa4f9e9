import type { Engine, GenerateRequest, StepStats } from './engine.ts';
import type { TokenEvent, TokenSink } from './token-event.ts';

export type StepWrapper = (step: () => Promise<StepStats>) => Promise<StepStats>;

export type LoopState = 'running' | 'draining' | 'stopped';

/**
 * Drives an Engine: steps while there is work, sleeps when idle, and wakes on a new request. One
 * step at a time, never overlapping. `stop()` stops admitting, lets in-flight requests finish within
 * the deadline, then aborts what is left.
 */
export class EngineLoop {
  readonly #engine: Engine;
  readonly #onStep: ((stats: StepStats) => void) | undefined;
  readonly #wrapStep: StepWrapper | undefined;
  #state: LoopState = 'running';
  #wake: (() => void) | undefined;
  readonly #done: Promise<void>;
  readonly #live = new Set<string>();

  /** `wrapStep` runs around every step (telemetry makes the step span active there). */
  constructor(engine: Engine, onStep?: (stats: StepStats) => void, wrapStep?: StepWrapper) {
    this.#engine = engine;
    this.#onStep = onStep;
    this.#wrapStep = wrapStep;
    this.#done = this.#run();
  }

  get state(): LoopState {
    return this.#state;
  }

  get numInFlight(): number {
    return this.#live.size;
  }

  /** Queues a request; events go to `sink`. Throws for a request the engine rejects. */
  submit(request: GenerateRequest, sink: TokenSink): void {
    if (this.#state !== 'running') throw new Error('the engine is shutting down');
    this.#engine.add(request, (event) => {
      if (event.finishReason) this.#live.delete(event.requestId);
      sink(event);
    });
    this.#live.add(request.id);
    this.#wake?.();
  }

  abort(requestId: string, error?: Error): void {
    this.#engine.abort(requestId, error);
    this.#wake?.();
  }

  /** Runs a request to the end and returns all its events (the last carries the finish reason). */
  generate(request: GenerateRequest): Promise<TokenEvent[]> {
    return new Promise((resolve, reject) => {
      const events: TokenEvent[] = [];
      try {
        this.submit(request, (event) => {
          events.push(event);
          if (event.finishReason) resolve(events);
        });
      } catch (error) {
        reject(error instanceof Error ? error : new Error(String(error)));
      }
    });
  }

  async stop(deadlineMs = 10_000): Promise<void> {
    if (this.#state === 'stopped') return;
    this.#state = 'draining';
    const deadline = Date.now() + deadlineMs;
    while (this.#live.size > 0 && Date.now() < deadline) await sleep(10);
    for (const id of [...this.#live])
      this.#engine.abort(id, new Error('the engine stopped before this request finished'));
    this.#state = 'stopped';
    this.#wake?.();
    await this.#done;
  }

  async #run(): Promise<void> {
    while (this.#state !== 'stopped') {
      if (!this.#engine.hasWork) {
        await new Promise<void>((resolve) => {
          this.#wake = resolve;
        });
        this.#wake = undefined;
        continue;
      }
      try {
        // NOTE: not `this.#onStep?.(await step())`: optional chaining would skip the step itself.
        const step = () => this.#engine.step();
        const stats = await (this.#wrapStep ? this.#wrapStep(step) : step());
        this.#onStep?.(stats);
      } catch (error) {
        // A failed step is a bug, not a request's fault; end what is in flight rather than hang it.
        const reason = error instanceof Error ? error : new Error(String(error));
        for (const id of [...this.#live]) this.#engine.abort(id, reason);
      }
      // Let I/O callbacks (new requests, aborts, socket writes) run between steps.
      await new Promise((resolve) => setImmediate(resolve));
    }
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
