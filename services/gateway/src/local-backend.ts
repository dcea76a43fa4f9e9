import type { EngineBundle, EngineLoop, GenerateRequest, TokenSink, Tokenizer } from '@switchyard/engine';
import type { GenerationBackend } from './backend.ts';

/** The gateway's own engine as the HTTP frontend's backend (the in-process path, no queue broker). */
export class LocalBackend implements GenerationBackend {
  readonly #bundle: EngineBundle;
  readonly #loop: EngineLoop;
  readonly #maxWaiting: number;
  #ready = true;

  constructor(bundle: EngineBundle, loop: EngineLoop, maxWaiting: number) {
    this.#bundle = bundle;
    this.#loop = loop;
    this.#maxWaiting = maxWaiting;
  }

  get modelId(): string {
    return this.#bundle.config.name;
  }

  get maxContext(): number {
    return this.#bundle.config.maxContext;
  }

  get vocabSize(): number {
    return this.#bundle.config.vocabSize;
  }

  get tokenizer(): Tokenizer {
    return this.#bundle.tokenizer;
  }

  isReady(): boolean {
    return this.#ready && this.#loop.state === 'running';
  }

  setReady(ready: boolean): void {
    this.#ready = ready;
  }

  canAdmit(): boolean {
    return this.#bundle.engine.numWaiting < this.#maxWaiting;
  }

  submit(request: GenerateRequest, sink: TokenSink): void {
    this.#loop.submit(request, sink);
  }

  abort(requestId: string): void {
    this.#loop.abort(requestId);
  }
}
