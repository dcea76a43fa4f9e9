import {
  RequestRejectedError,
  type GenerateRequest,
  type GenerationBackend,
  type RequestMeta,
  type TokenEvent,
  type TokenSink,
  type Tokenizer,
} from '@switchyard/engine';
import type { ClusterConnection } from './connect.ts';
import { RemoteGenerationError } from './errors.ts';
import type { RouteAttributes } from '@switchyard/telemetry';
import type { RouteDecision } from './kv-router.ts';
import type { RequestMessage } from './request-message.ts';
import type { RequestQueue } from './request-queue.ts';
import type { TraceContext } from './trace-context.ts';
import type { TokenStream, TokenSubscriber } from './token-subscriber.ts';

/** What the frontend knows of the model it serves (the HTTP layer needs it before any engine is asked). */
export interface ServedModel {
  readonly modelId: string;
  readonly maxContext: number;
  readonly vocabSize: number;
  readonly tokenizer: Tokenizer;
  /** SHA-256 (hex) of the weights: put on every queued request, so no engine with other weights serves it. */
  readonly weightsDigest?: string;
}

export interface NatsBackendParts {
  readonly conn: ClusterConnection;
  readonly queue: RequestQueue;
  readonly tokens: TokenSubscriber;
  readonly model: ServedModel;
  /** Requests this frontend has in flight (queued or generating) before it answers 429. */
  readonly maxInFlight: number;
  /** Chooses an engine for a request (KV-aware routing); absent = every request goes to the shared queue. */
  readonly route?: (request: GenerateRequest) => RouteDecision;
  /**
   * A routed request with no event from its engine for this long (it did not take it, or died) is
   * published again to the shared queue, once; any engine replays it and the stream stays exact.
   */
  readonly rerouteAfterMs?: number;
  /**
   * Told of every event a request's sink gets, the synthetic final event of an abort included (the
   * router's ledger of what each engine still has to do follows requests with it).
   */
  readonly onEvent?: (event: TokenEvent) => void;
  /**
   * This frontend's id, put on every request it queues; with a `FrontendHeartbeat` under the same id,
   * engines stop its requests when it is gone.
   */
  readonly frontendId?: string;
  readonly now?: () => number;
}

function routeAttributes(d: RouteDecision, target: 'engine' | 'shared'): RouteAttributes {
  return {
    mode: d.mode,
    target,
    ...(d.engineId !== undefined ? { engineId: d.engineId } : {}),
    overlapBlocks: d.overlapBlocks,
    promptBlocks: d.numPromptBlocks,
    score: d.score,
  };
}

/** Counters of the routing decisions (for stats and metrics). */
export interface RoutingCounts {
  readonly shared: number;
  readonly routed: number;
  readonly rerouted: number;
  /** Prompt blocks the chosen engines already held, summed. */
  readonly overlapBlocks: number;
  readonly promptBlocks: number;
}

interface InFlight {
  readonly stream: TokenStream;
  readonly sink: TokenSink;
  /** Stream sequence once the queue has stored the request (to remove it if the client leaves first). */
  seq: number | undefined;
  aborted: boolean;
  /** The message and trace to publish again should its engine go silent. */
  readonly message: RequestMessage;
  readonly trace: TraceContext | undefined;
  /** When an engine last spoke for it (or when it was queued). */
  lastHeardMs: number;
  /** An event has arrived: an engine took it (a silent request that never started may just be queued). */
  started: boolean;
  /** Published once more for any engine (at most once). */
  rerouted: boolean;
  /** For a routed request: the engine it was sent to. */
  readonly routed?: { readonly engineId: string };
}

/**
 * The HTTP frontend's backend when the gateway runs as a cluster: a request is queued on NATS for any
 * engine of the model, and its tokens come back on its token subject. The token subscription is opened
 * before the request is published, so the first event cannot be missed; the sink always ends with one
 * final event (the engine's, or a synthetic error when the queue refuses the request or every engine
 * went silent).
 *
 * Invariant: `#inFlight` holds exactly the requests whose final event the sink has not yet had.
 */
export class NatsBackend implements GenerationBackend {
  readonly #parts: NatsBackendParts;
  readonly #inFlight = new Map<string, InFlight>();
  readonly #watchdog: NodeJS.Timeout | undefined;
  #counts = { shared: 0, routed: 0, rerouted: 0, overlapBlocks: 0, promptBlocks: 0 };
  #ready = true;

  constructor(parts: NatsBackendParts) {
    this.#parts = parts;
    const rerouteAfterMs = parts.rerouteAfterMs ?? 5_000;
    this.#watchdog = setInterval(
      () => this.#rerouteSilent(rerouteAfterMs),
      Math.max(50, Math.floor(rerouteAfterMs / 5)),
    );
    this.#watchdog.unref();
  }

  get routing(): RoutingCounts {
    return { ...this.#counts };
  }

  /** Stops the reroute watchdog (requests in flight keep their streams). */
  close(): void {
    clearInterval(this.#watchdog);
  }

  get modelId(): string {
    return this.#parts.model.modelId;
  }

  get maxContext(): number {
    return this.#parts.model.maxContext;
  }

  get vocabSize(): number {
    return this.#parts.model.vocabSize;
  }

  get tokenizer(): Tokenizer {
    return this.#parts.model.tokenizer;
  }

  get numInFlight(): number {
    return this.#inFlight.size;
  }

  isReady(): boolean {
    return this.#ready && this.#parts.conn.isConnected;
  }

  setReady(ready: boolean): void {
    this.#ready = ready;
  }

  canAdmit(): boolean {
    return this.#inFlight.size < this.#parts.maxInFlight;
  }

  submit(request: GenerateRequest, sink: TokenSink, meta?: RequestMeta): void {
    this.#check(request);
    this.#send(request, sink, meta, this.#parts.route?.(request));
  }

  /**
   * Sends a request to one engine's own lane, whatever the router would choose (a decode engine handing
   * a prompt to a prefill engine). Rerouted to the shared queue like any routed request if that engine
   * stays silent.
   */
  submitTo(engineId: string, request: GenerateRequest, sink: TokenSink): void {
    this.#check(request);
    this.#send(request, sink, undefined, { mode: 'kv', engineId, overlapBlocks: 0, numPromptBlocks: 0, score: 0 });
  }

  #send(
    request: GenerateRequest,
    sink: TokenSink,
    meta: RequestMeta | undefined,
    decision: RouteDecision | undefined,
  ): void {
    const { queue, tokens } = this.#parts;
    const engineId = decision?.engineId;
    const message: RequestMessage = {
      ...request,
      model: this.modelId,
      createdAtMs: Date.now(),
      ...(meta ? { operation: meta.operation } : {}),
      ...(decision ? { route: routeAttributes(decision, engineId === undefined ? 'shared' : 'engine') } : {}),
      ...(this.#parts.frontendId !== undefined ? { frontendId: this.#parts.frontendId } : {}),
      ...(this.#parts.model.weightsDigest !== undefined ? { weightsDigest: this.#parts.model.weightsDigest } : {}),
    };
    const trace = meta?.traceparent ? { traceparent: meta.traceparent } : undefined;
    if (decision) {
      this.#counts.promptBlocks += decision.numPromptBlocks;
      this.#counts.overlapBlocks += decision.overlapBlocks;
      if (engineId === undefined) this.#counts.shared++;
      else this.#counts.routed++;
    }
    const stream = tokens.open(request.id, (event) => this.#onEvent(event, sink));
    const entry: InFlight = {
      stream,
      sink,
      seq: undefined,
      aborted: false,
      message,
      trace,
      lastHeardMs: this.#now(),
      started: false,
      rerouted: false,
      ...(engineId !== undefined ? { routed: { engineId } } : {}),
    };
    this.#inFlight.set(request.id, entry);
    queue.publish(message, trace, engineId !== undefined ? { engineId } : {}).then(
      (receipt) => {
        entry.seq = receipt.seq;
        if (entry.aborted) void queue.remove(receipt.seq);
      },
      (error: unknown) => stream.fail(error instanceof Error ? error : new Error(String(error))),
    );
  }

  /**
   * The client went away: stop listening, tell the serving engine to stop, and take the request out of
   * the queue if no engine has it yet. The sink gets a final `abort` event, as from the local engine.
   */
  abort(requestId: string): void {
    const entry = this.#inFlight.get(requestId);
    if (!entry) return;
    entry.aborted = true;
    this.#inFlight.delete(requestId);
    this.#parts.tokens.cancel(requestId);
    if (entry.seq !== undefined) void this.#parts.queue.remove(entry.seq);
    const final: TokenEvent = {
      requestId,
      index: entry.stream.numForwarded,
      tokenId: -1,
      text: '',
      finishReason: 'abort',
    };
    this.#parts.onEvent?.(final);
    entry.sink(final);
  }

  #onEvent(event: TokenEvent, sink: TokenSink): void {
    const heard = this.#inFlight.get(event.requestId);
    if (heard) {
      heard.lastHeardMs = this.#now();
      heard.started = true;
    }
    if (event.finishReason !== undefined) {
      const entry = this.#inFlight.get(event.requestId);
      this.#inFlight.delete(event.requestId);
      // Our own deadline or a failed publish ended it, not an engine: make sure no engine still
      // spends compute on it later (it may still sit in the queue).
      if (event.error && !(event.error instanceof RemoteGenerationError)) {
        this.#parts.tokens.cancel(event.requestId);
        if (entry?.seq !== undefined) void this.#parts.queue.remove(entry.seq);
      }
    }
    this.#parts.onEvent?.(event);
    sink(event);
  }

  /**
   * Requests whose engine has gone silent for `afterMs`: a routed one (its engine never took it, or died
   * with it), or one from the shared queue that had started (its engine died mid-stream: without this it
   * would wait for the queue's ack wait, 30 s). Each is taken off the stream if still there and published
   * once more for any engine. Should the first engine answer after all, both replay the same seeded
   * request and the token stream keeps each index once. A shared request that never started is left
   * alone: it is waiting in the same queue a copy would go to.
   */
  #rerouteSilent(afterMs: number): void {
    const now = this.#now();
    for (const [id, entry] of this.#inFlight) {
      if (entry.rerouted || entry.aborted || now - entry.lastHeardMs < afterMs) continue;
      if (!entry.routed && !entry.started) continue;
      this.#reroute(id, entry);
    }
  }

  /**
   * The engine `engineId` is gone (its load reports stopped, or it said it is leaving): every request
   * routed to it and not rerouted yet is published again on the shared subject now, instead of waiting
   * for the queue's ack wait (30 s) or `rerouteAfterMs` of silence. Returns how many were.
   */
  rerouteFrom(engineId: string): number {
    let n = 0;
    for (const [id, entry] of this.#inFlight) {
      if (!entry.routed || entry.rerouted || entry.aborted || entry.routed.engineId !== engineId) continue;
      this.#reroute(id, entry);
      n++;
    }
    return n;
  }

  #reroute(id: string, entry: InFlight): void {
    entry.rerouted = true;
    this.#counts.rerouted++;
    const { queue } = this.#parts;
    if (entry.seq !== undefined) void queue.remove(entry.seq);
    const message: RequestMessage = entry.message.route
      ? { ...entry.message, route: { ...entry.message.route, target: 'rerouted' } }
      : entry.message;
    queue.publish(message, entry.trace, { attempt: 1 }).then(
      (receipt) => {
        entry.seq = receipt.seq;
        if (entry.aborted) void queue.remove(receipt.seq);
      },
      (error: unknown) => {
        if (this.#inFlight.has(id)) entry.stream.fail(error instanceof Error ? error : new Error(String(error)));
      },
    );
  }

  #now(): number {
    return (this.#parts.now ?? Date.now)();
  }

  /** The checks the local engine makes before queueing, so a hopeless request still gets a 400. */
  #check(request: GenerateRequest): void {
    const numPrompt = request.promptIds.length;
    if (numPrompt === 0) throw new RequestRejectedError('empty_prompt', 'the prompt has no tokens');
    if (numPrompt + 1 > this.maxContext) {
      throw new RequestRejectedError(
        'prompt_too_long',
        `the prompt has ${numPrompt} tokens but the model's context is ${this.maxContext} tokens (at least one must be left to generate)`,
      );
    }
    if (this.#inFlight.has(request.id))
      throw new RequestRejectedError('duplicate_id', `request id ${request.id} is already running`);
  }
}
