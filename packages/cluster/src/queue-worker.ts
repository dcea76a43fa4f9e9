import { InvalidMessageError } from './errors.ts';
import type { ClusterConnection } from './connect.ts';
import type { QueueConsumer } from './queue-consumer.ts';
import type { QueueDelivery } from './queue-delivery.ts';
import type { RequestQueue } from './request-queue.ts';
import { TokenPublisher } from './token-publisher.ts';
import { FrontendWatch } from './frontend-liveness.ts';
import {
  InvalidSamplingError,
  RequestRejectedError,
  resolveSamplingParams,
  type EngineLoop,
  type GenerateRequest,
  type SamplingParams,
  type TokenEvent,
} from '@switchyard/engine';
import type { EngineTelemetry } from '@switchyard/telemetry';

export interface QueueWorkerOptions {
  /** The model whose queue this engine serves. */
  readonly model: string;
  /** Requests generating here at most; the worker pulls only while the loop runs fewer. */
  readonly maxRunning: number;
  /** Delay before a request that failed here (transiently) is offered again, here or elsewhere. */
  readonly retryDelayMs?: number;
  /** How long finished requests' events stay available for a frontend's resend. */
  readonly lingerMs?: number;
  readonly onError?: (error: Error) => void;
  /** Request spans and GenAI metrics for the requests this engine serves (joined to the frontend's trace). */
  readonly telemetry?: EngineTelemetry;
  /**
   * This engine's id: it also serves the requests frontends route to it (KV-aware routing), from its own
   * subject, besides the shared queue of the model.
   */
  readonly engineId?: string;
  /**
   * Runs before a request is handed to the loop (e.g. fetch its prompt's KV pages from a peer). Must not
   * throw; a request cancelled or handed back meanwhile is not submitted. `trace` is the request's span.
   */
  readonly prepare?: (request: GenerateRequest, trace: RequestTrace | undefined) => Promise<void>;
  /** False: take only routed requests (a prefill engine), not the model's shared queue. Default true. */
  readonly sharedLane?: boolean;
  /**
   * A request whose frontend (`frontendId` on the message) has sent no heartbeat for this long is
   * stopped here and its message acked: nobody reads its tokens. Default 1500 ms; 0 turns it off.
   */
  readonly frontendTtlMs?: number;
  /**
   * SHA-256 (hex) of this engine's weights: a request that names other weights is refused with a
   * `weights_mismatch` error event, never generated (two clusters with different weights share a namespace).
   */
  readonly weightsDigest?: string;
}

type RequestTrace = ReturnType<EngineTelemetry['startRequest']>;

export type QueueWorkerState = 'running' | 'draining' | 'stopped';

interface Serving {
  /** Every delivery of this request this engine holds (a redelivery while it generates joins the first). */
  readonly deliveries: QueueDelivery[];
  /** Handed back to the queue: its remaining events are dropped, not published. */
  handedBack: boolean;
  /** Its frontend cancelled it before it reached the loop (while being prepared). */
  cancelled: boolean;
  /** When this engine took it (ms, the watch's clock). */
  readonly takenAtMs: number;
  /** The life its frontend's heartbeats carried when this engine took it (see FrontendHeartbeat). */
  readonly frontendLife: string | undefined;
}

/**
 * The engine side of the cluster: pulls requests from the work queue into an EngineLoop (only while the
 * loop has free slots), publishes every token event on the request's token subject, and settles the
 * queue message — ack when the request ends, nak with a delay after a transient failure (so another
 * engine replays it, with the same seed, while the frontend drops the indices it has), term for a
 * message that can never run. `drain` stops pulling, lets in-flight requests finish under a deadline,
 * and hands the rest back. Knows nothing of HTTP.
 *
 * Invariant: `#serving` holds exactly the requests submitted to the loop by this worker whose final
 * event has not arrived; every delivery in it is unsettled.
 */
export class QueueWorker {
  readonly #loop: EngineLoop;
  readonly #watch: FrontendWatch | undefined;
  readonly #orphanSweep: NodeJS.Timeout | undefined;
  #numOrphansStopped = 0;
  readonly #options: Required<
    Omit<QueueWorkerOptions, 'onError' | 'telemetry' | 'engineId' | 'prepare' | 'weightsDigest'>
  > &
    Pick<QueueWorkerOptions, 'onError' | 'telemetry' | 'engineId' | 'prepare' | 'weightsDigest'>;
  readonly #publisher: TokenPublisher;
  readonly #serving = new Map<string, Serving>();
  #consumer: QueueConsumer | undefined;
  /** The lane of requests routed to this engine (with `engineId`). */
  #routed: QueueConsumer | undefined;
  #state: QueueWorkerState = 'running';
  #numPreparing = 0;
  #numServed = 0;
  #numRouted = 0;

  private constructor(conn: ClusterConnection, loop: EngineLoop, options: QueueWorkerOptions) {
    this.#loop = loop;
    this.#options = { retryDelayMs: 1_000, lingerMs: 30_000, sharedLane: true, frontendTtlMs: 1_500, ...options };
    const ttl = this.#options.frontendTtlMs;
    if (ttl > 0) {
      const watch = new FrontendWatch(conn);
      this.#watch = watch;
      this.#orphanSweep = setInterval(() => this.#stopOrphans(watch, ttl), Math.max(100, Math.floor(ttl / 8)));
      this.#orphanSweep.unref();
    }
    this.#publisher = new TokenPublisher(conn, {
      lingerMs: this.#options.lingerMs,
      onCancel: (id) => this.#cancel(id),
    });
    // A connection closed for good (reconnects exhausted) cannot deliver events: hand everything back.
    void conn.closed().then(() => this.#handBackAll());
  }

  static async start(
    parts: { conn: ClusterConnection; queue: RequestQueue; loop: EngineLoop },
    options: QueueWorkerOptions,
  ): Promise<QueueWorker> {
    const worker = new QueueWorker(parts.conn, parts.loop, options);
    const handlers = {
      onRequest: (delivery: QueueDelivery) => worker.#serve(delivery),
      onInvalid: (reason: string, requestId: string | undefined, frontendId: string | undefined) =>
        worker.#invalid(reason, requestId, frontendId),
      onError: (error: Error) => worker.#report(error),
    };
    if (options.sharedLane !== false) {
      worker.#consumer = await parts.queue.consume(options.model, {
        ...handlers,
        numFreeSlots: () =>
          worker.#state === 'running' ? options.maxRunning - parts.loop.numInFlight - worker.#numPreparing : 0,
      });
    }
    if (options.engineId !== undefined) {
      // NOTE: the routed lane pulls one request at a time even when the batch is full: the frontend chose
      // this engine knowing its load (the request waits here, where its prefix is cached), and a lane that
      // waited for a free slot would starve behind the shared one. Bounded at twice maxRunning in flight.
      worker.#routed = await parts.queue.consumeRouted(options.model, options.engineId, {
        ...handlers,
        onRequest: (delivery: QueueDelivery) => {
          worker.#numRouted++;
          worker.#serve(delivery);
        },
        numFreeSlots: () => (worker.#state === 'running' && parts.loop.numInFlight < 2 * options.maxRunning ? 1 : 0),
      });
    }
    return worker;
  }

  get state(): QueueWorkerState {
    return this.#state;
  }

  /** Requests generating here now. */
  get numServing(): number {
    return this.#serving.size;
  }

  /** Requests this worker has finished (acked) since it started. */
  get numServed(): number {
    return this.#numServed;
  }

  /** Requests taken from this engine's own (routed) lane since it started. */
  get numRouted(): number {
    return this.#numRouted;
  }

  /**
   * Stops pulling, waits up to deadlineMs for in-flight requests to finish, then naks the rest (no
   * delay) so other gateways take them, and aborts them here. Bounded by deadlineMs plus one pull expiry.
   */
  async drain(deadlineMs = 10_000): Promise<void> {
    if (this.#state !== 'running') return;
    this.#state = 'draining';
    const deadline = Date.now() + deadlineMs;
    await Promise.all([
      this.#consumer?.stop(Math.max(0, deadline - Date.now())),
      this.#routed?.stop(Math.max(0, deadline - Date.now())),
    ]);
    while (this.#serving.size > 0 && Date.now() < deadline) await sleep(10);
    this.#handBackAll();
    this.#publisher.close();
    clearInterval(this.#orphanSweep);
    this.#watch?.stop();
    this.#state = 'stopped';
  }

  #serve(delivery: QueueDelivery): void {
    const { request } = delivery;
    if (this.#publisher.hasFinished(request.id)) {
      // Finished here, but the ack was lost (broker restart): do not generate it again.
      delivery.ack();
      return;
    }
    const already = this.#serving.get(request.id);
    if (already) {
      // Redelivered while it generates here (heartbeats lost in a broker outage): keep both alive, settle both.
      already.deliveries.push(delivery);
      return;
    }
    const own = this.#options.weightsDigest;
    if (own !== undefined && request.weightsDigest !== undefined && request.weightsDigest !== own) {
      return this.#reject(
        delivery,
        new RequestRejectedError(
          'weights_mismatch',
          `this engine serves ${request.model} with weights ${own.slice(0, 12)}…, the request is for weights ` +
            `${request.weightsDigest.slice(0, 12)}…: clusters with different weights need different namespaces`,
        ),
      );
    }
    let params: SamplingParams;
    try {
      params = resolveSamplingParams(request.params);
    } catch (error) {
      return this.#reject(delivery, error);
    }
    const serving: Serving = {
      deliveries: [delivery],
      handedBack: false,
      cancelled: false,
      takenAtMs: Date.now(),
      frontendLife: request.frontendId === undefined ? undefined : this.#watch?.lifeOf(request.frontendId),
    };
    const generate: GenerateRequest = {
      id: request.id,
      promptIds: request.promptIds,
      params,
      ...(request.cacheSalt !== undefined ? { cacheSalt: request.cacheSalt } : {}),
    };
    this.#publisher.begin(request.id, request.frontendId);
    this.#serving.set(request.id, serving);
    const trace = this.#options.telemetry?.startRequest({
      operation: request.operation ?? 'text_completion',
      model: request.model,
      requestId: request.id,
      maxTokens: params.maxTokens,
      temperature: params.temperature,
      ...(delivery.trace ? { parentTraceparent: delivery.trace.traceparent } : {}),
      ...(request.route ? { route: request.route } : {}),
    });
    const { prepare } = this.#options;
    if (prepare === undefined) return this.#submit(delivery, serving, generate, trace);
    this.#numPreparing++;
    void prepare(generate, trace)
      .catch((error: unknown) => this.#report(error instanceof Error ? error : new Error(String(error))))
      .finally(() => {
        this.#numPreparing--;
        if (serving.handedBack) {
          trace?.end({ error: new Error('handed back to the queue before it started') });
          return;
        }
        this.#submit(delivery, serving, generate, trace);
        if (serving.cancelled) this.#loop.abort(request.id);
      });
  }

  #submit(delivery: QueueDelivery, serving: Serving, generate: GenerateRequest, trace: RequestTrace | undefined): void {
    const { request } = delivery;
    const sink = (event: TokenEvent) => this.#onEvent(serving, event);
    try {
      this.#loop.submit(generate, trace ? trace.wrapSink(sink) : sink);
    } catch (error) {
      trace?.end({ error: error instanceof Error ? error : new Error(String(error)) });
      this.#serving.delete(request.id);
      this.#publisher.forget(request.id);
      if (error instanceof RequestRejectedError) return this.#reject(delivery, error);
      delivery.nak(0); // the loop is shutting down: another engine takes it now
    }
  }

  #onEvent(serving: Serving, event: TokenEvent): void {
    const final = event.finishReason !== undefined;
    if (final) this.#serving.delete(event.requestId);
    if (serving.handedBack) return;
    const last = serving.deliveries.at(-1);
    if (final && event.finishReason === 'error' && last && !last.isLastDelivery) {
      // NOTE: not published: the frontend keeps waiting while another try (here or on another engine)
      // replays the request from index 0; it drops the indices it already has.
      this.#handBack(event.requestId, serving, this.#options.retryDelayMs);
      if (event.error) this.#report(event.error);
      return;
    }
    this.#publisher.publish(event);
    if (!final) return;
    for (const delivery of serving.deliveries) delivery.ack();
    this.#numServed++;
    this.#consumer?.wake();
    this.#routed?.wake();
  }

  /** A frontend asked to stop: the loop ends it with an `abort` event, which acks the message. */
  #cancel(requestId: string): void {
    const serving = this.#serving.get(requestId);
    if (serving === undefined) return;
    serving.cancelled = true;
    this.#loop.abort(requestId);
  }

  /** Requests stopped because their frontend was gone. */
  get numOrphansStopped(): number {
    return this.#numOrphansStopped;
  }

  /**
   * Stops the requests whose frontend has been silent for `ttlMs` (killed, or cut off): their abort event
   * acks the message, so it is neither generated on nor replayed elsewhere for nobody.
   */
  #stopOrphans(watch: FrontendWatch, ttlMs: number): void {
    for (const [id, serving] of this.#serving) {
      const frontendId = serving.deliveries[0]?.request.frontendId;
      if (frontendId === undefined || serving.cancelled || serving.handedBack) continue;
      if (!watch.isGone(frontendId, serving.takenAtMs, ttlMs, serving.frontendLife)) continue;
      this.#numOrphansStopped++;
      this.#report(new Error(`stopped request ${id}: its frontend ${frontendId} is gone`));
      this.#cancel(id);
    }
  }

  /**
   * A message that is not a valid request (already terminated): its sender, when it named itself with an
   * id, gets an error event saying why instead of waiting for an answer that never comes.
   */
  #invalid(reason: string, requestId: string | undefined, frontendId: string | undefined): void {
    this.#report(new Error(`terminated an invalid request message: ${reason}`));
    if (requestId === undefined) return;
    const error = new InvalidMessageError(`the queued request is not valid: ${reason}`);
    this.#publisher.begin(requestId, frontendId);
    this.#publisher.publish({ requestId, index: 0, tokenId: -1, text: '', finishReason: 'error', error });
  }

  /** A request that can never run: tell its frontend why and drop the message for good. */
  #reject(delivery: QueueDelivery, error: unknown): void {
    const cause = error instanceof Error ? error : new Error(String(error));
    if (!(cause instanceof RequestRejectedError || cause instanceof InvalidSamplingError)) this.#report(cause);
    const { id, frontendId } = delivery.request;
    this.#publisher.begin(id, frontendId);
    this.#publisher.publish({ requestId: id, index: 0, tokenId: -1, text: '', finishReason: 'error', error: cause });
    delivery.term(cause.message);
  }

  #handBack(requestId: string, serving: Serving, delayMs: number): void {
    serving.handedBack = true;
    this.#publisher.forget(requestId);
    for (const delivery of serving.deliveries) delivery.nak(delayMs);
  }

  #handBackAll(): void {
    for (const [id, serving] of [...this.#serving]) {
      this.#handBack(id, serving, 0);
      this.#loop.abort(id);
    }
  }

  #report(error: Error): void {
    this.#options.onError?.(error);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
