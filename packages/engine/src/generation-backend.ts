import type { TokenSink } from './token-event.ts';
import type { Tokenizer } from './tokenizer.ts';
import type { GenerateRequest } from './engine.ts';

/** What the frontend knows of a request besides what the engine needs (for tracing). */
export interface RequestMeta {
  readonly operation: 'chat' | 'text_completion';
  /** The client's W3C trace context, if it sent one. */
  readonly traceparent?: string;
  readonly stream: boolean;
}

/**
 * What the HTTP frontend needs from whatever generates tokens: the local engine loop today, the
 * NATS request queue when the gateway runs as a cluster. Requests are handed over once; events come
 * back through the sink; the last event carries the finish reason.
 */
export interface GenerationBackend {
  readonly modelId: string;
  readonly maxContext: number;
  readonly vocabSize: number;
  readonly tokenizer: Tokenizer;
  /** Everything the backend needs is up (engine loaded, workers healthy). */
  isReady(): boolean;
  /** False when the queue is full: the frontend answers 429. */
  canAdmit(): boolean;
  /** Throws RequestRejectedError (or InvalidSamplingError) for a request that can never run. */
  submit(request: GenerateRequest, sink: TokenSink, meta?: RequestMeta): void;
  abort(requestId: string): void;
}
