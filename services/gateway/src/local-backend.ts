import type { EngineBundle, EngineLoop, GenerateRequest, TokenSink, Tokenizer } from '@switchyard/engine';
import type { EngineTelemetry } from '@switchyard/telemetry';
import type { GenerationBackend, RequestMeta } from '@switchyard/engine';

/** The gateway's own engine as the HTTP frontend's backend (the in-process path, no queue broker). */
export class LocalBackend implements GenerationBackend {
  readonly #bundle: EngineBundle;
  readonly #loop: EngineLoop;
  readonly #maxWaiting: number;
  readonly #telemetry: EngineTelemetry | undefined;
  #ready = true;

  constructor(bundle: EngineBundle, loop: EngineLoop, maxWaiting: number, telemetry?: EngineTelemetry) {
    this.#bundle = bundle;
    this.#loop = loop;
    this.#maxWaiting = maxWaiting;
    this.#telemetry = telemetry;
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

  submit(request: GenerateRequest, sink: TokenSink, meta?: RequestMeta): void {
    if (!this.#telemetry) {
      this.#loop.submit(request, sink);
      return;
    }
    const { params } = request;
    const trace = this.#telemetry.startRequest({
      operation: meta?.operation ?? 'text_completion',
      model: this.modelId,
      requestId: request.id,
      maxTokens: params.maxTokens,
      temperature: params.temperature,
      topP: params.topP,
      topK: params.topK,
      seed: params.seed,
      ...(meta ? { stream: meta.stream } : {}),
      ...(meta?.traceparent ? { parentTraceparent: meta.traceparent } : {}),
    });
    try {
      this.#loop.submit(request, trace.wrapSink(sink));
    } catch (error) {
      trace.end({ error: error instanceof Error ? error : new Error(String(error)) });
      throw error;
    }
  }

  abort(requestId: string): void {
    this.#loop.abort(requestId);
  }
}
