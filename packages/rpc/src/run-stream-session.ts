/**
 * The server side of one Run stream.
 *
 * Invariants:
 * - every request read gets exactly one response (a result or an error) unless the stream is
 *   cancelled or broken, in which case nobody is left to read it;
 * - at most `maxConcurrentRuns` requests are in flight (read but not yet flushed); at the bound the
 *   stream is paused, so HTTP/2 flow control pushes back on the client instead of memory growing;
 * - the stream ends (status OK) only after every request in flight has been answered: when the
 *   client half-closes, or when the server drains for shutdown.
 */
import type { ServerDuplexStream } from '@grpc/grpc-js';
import { InternalError, UnavailableError } from './errors.ts';
import { decodeRunRequest, outputFormatOf } from './expert-messages.ts';
import type { RunRequest, RunResult } from './expert-messages.ts';
import { isUnexpectedError, toWireStatus } from './status-map.ts';
import { encodeFloat } from './tensor-codec.ts';
import type { WireRunRequest, WireRunResponse } from './wire-types.ts';

export interface RunContext {
  /** Aborted when the stream is cancelled by the client or breaks. */
  readonly signal: AbortSignal;
}

export type RunHandler = (request: RunRequest, context: RunContext) => Promise<RunResult>;

export interface RunStreamOptions {
  readonly maxConcurrentRuns: number;
  readonly logError: (message: string, err: unknown) => void;
}

type State = 'open' | 'ending' | 'ended';

export class RunStreamSession {
  readonly #call: ServerDuplexStream<WireRunRequest, WireRunResponse>;
  readonly #run: RunHandler;
  readonly #options: RunStreamOptions;
  readonly #abort = new AbortController();
  #numInFlight = 0;
  #state: State = 'open';
  readonly #closed: Promise<void>;
  #resolveClosed: () => void = () => undefined;

  constructor(call: ServerDuplexStream<WireRunRequest, WireRunResponse>, run: RunHandler, options: RunStreamOptions) {
    this.#call = call;
    this.#run = run;
    this.#options = options;
    this.#closed = new Promise((resolve) => {
      this.#resolveClosed = resolve;
    });
    call.on('data', (message: WireRunRequest) => this.#accept(message));
    call.on('end', () => this.#endWhenIdle());
    call.on('cancelled', () => this.#stop());
    call.on('error', () => this.#stop());
  }

  /** Resolves once the stream has ended, been cancelled or broken. */
  get closed(): Promise<void> {
    return this.#closed;
  }

  /** Stops reading, answers what is in flight, then ends the stream. Resolves once ended. */
  drain(): Promise<void> {
    if (this.#state !== 'ended') {
      this.#call.pause();
      this.#endWhenIdle();
    }
    return this.#closed;
  }

  #accept(message: WireRunRequest): void {
    if (this.#state !== 'open') {
      // NOTE: a request that raced a drain still gets its answer, so the client can fail over now.
      this.#write(errorResponse(message.correlationId, new UnavailableError('worker is shutting down'), 0));
      return;
    }
    this.#numInFlight++;
    if (this.#numInFlight >= this.#options.maxConcurrentRuns) this.#call.pause();
    void this.#answer(message);
  }

  /** Never rejects: every failure becomes an error response. */
  async #answer(message: WireRunRequest): Promise<void> {
    const startedAt = performance.now();
    let response: WireRunResponse;
    try {
      const format = outputFormatOf(message);
      const request = decodeRunRequest(message);
      const result = await this.#run(request, { signal: this.#abort.signal });
      const expected = request.routes.numTokens * request.hiddenSize;
      if (result.output.length !== expected) {
        throw new InternalError(`handler returned ${result.output.length} values, expected ${expected}`);
      }
      response = {
        correlationId: message.correlationId,
        output: encodeFloat(result.output, [request.routes.numTokens, request.hiddenSize], format),
        computeTimeUs: elapsedUs(startedAt),
      };
    } catch (err) {
      if (isUnexpectedError(err)) this.#options.logError(`Run request ${message.correlationId} failed`, err);
      response = errorResponse(message.correlationId, err, elapsedUs(startedAt));
    }
    this.#write(response, () => this.#settleOne());
  }

  #write(response: WireRunResponse, onFlushed?: () => void): void {
    if (this.#state === 'ended' || this.#call.cancelled) {
      onFlushed?.();
      return;
    }
    this.#call.write(response, () => onFlushed?.());
  }

  #settleOne(): void {
    this.#numInFlight--;
    if (this.#state === 'open' && this.#numInFlight < this.#options.maxConcurrentRuns) this.#call.resume();
    if (this.#state === 'ending') this.#endWhenIdle();
  }

  #endWhenIdle(): void {
    if (this.#state === 'ended') return;
    this.#state = 'ending';
    if (this.#numInFlight > 0) return;
    this.#state = 'ended';
    if (!this.#call.cancelled) this.#call.end();
    this.#resolveClosed();
  }

  #stop(): void {
    if (this.#state === 'ended') return;
    this.#state = 'ended';
    this.#abort.abort(new UnavailableError('Run stream closed'));
    this.#resolveClosed();
  }
}

function errorResponse(correlationId: number, err: unknown, computeTimeUs: number): WireRunResponse {
  const status = toWireStatus(err);
  return { correlationId, error: { code: status.code, message: status.details }, computeTimeUs };
}

function elapsedUs(startedAt: number): number {
  return Math.round((performance.now() - startedAt) * 1000);
}
