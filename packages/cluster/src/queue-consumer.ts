import type { Consumer, ConsumerMessages, JsMsg } from '@nats-io/jetstream';
import { Delivery, type QueueDelivery } from './queue-delivery.ts';
import { decodeRequestMessage, requestIdOfInvalid } from './request-message.ts';
import type { RequestQueueOptions } from './request-queue-options.ts';
import { getTraceContext } from './trace-context.ts';

export interface ConsumeHandlers {
  /** Requests this engine can start now (free batch slots); the consumer pulls at most this many. */
  numFreeSlots(): number;
  /** A valid request for this engine. Settle the delivery (ack / nak / term) when done with it. */
  onRequest(delivery: QueueDelivery): void;
  /**
   * A message that is not a valid request; it has been terminated already. `requestId` is its id when
   * one could be read, so its sender can be told why.
   */
  onInvalid?(reason: string, requestId: string | undefined, frontendId: string | undefined): void;
  /** A pull failed (broker away, consumer missing); the consumer retries with a bounded backoff. */
  onError?(error: Error): void;
}

export type ConsumerState = 'running' | 'stopping' | 'stopped';

const IDLE_POLL_MS = 50;
const MAX_BACKOFF_MS = 2_000;

/**
 * An engine's side of the work queue: pulls requests only while `numFreeSlots() > 0` (never more than
 * that many at once), keeps each unsettled delivery alive with `working()` every heartbeatIntervalMs, and
 * terminates invalid messages.
 *
 * Invariants: every delivery handed to `onRequest` is in `#unsettled` until settled; after `stop()`
 * no delivery reaches `onRequest` — one that arrives on the last pull is nak'ed at once so another engine
 * takes it.
 */
export class QueueConsumer {
  readonly #consumer: Consumer;
  readonly #options: RequestQueueOptions;
  readonly #handlers: ConsumeHandlers;
  readonly #unsettled = new Set<Delivery>();
  readonly #heartbeat: NodeJS.Timeout;
  readonly #done: Promise<void>;
  #state: ConsumerState = 'running';
  #wake: (() => void) | undefined;
  #batch: ConsumerMessages | undefined;

  constructor(
    consumer: Consumer,
    options: RequestQueueOptions,
    handlers: ConsumeHandlers,
    connectionClosed: Promise<unknown>,
  ) {
    this.#consumer = consumer;
    this.#options = options;
    this.#handlers = handlers;
    this.#heartbeat = setInterval(() => {
      for (const delivery of this.#unsettled) delivery.working();
    }, options.heartbeatIntervalMs).unref();
    this.#done = this.#run();
    // A connection closed for good ends the pulling; the broker redelivers what was unsettled.
    void connectionClosed.then(() => {
      if (this.#state === 'running') this.#state = 'stopping';
      this.#wake?.();
    });
  }

  get state(): ConsumerState {
    return this.#state;
  }

  /** Deliveries handed out and not yet settled. */
  get numUnsettled(): number {
    return this.#unsettled.size;
  }

  /** Tells the consumer a slot may have freed (it also polls, so this only cuts latency). */
  wake(): void {
    this.#wake?.();
  }

  /**
   * Stops pulling: waits (at most deadlineMs) for the pull in progress to end, naking whatever it still
   * brings. Deliveries already handed out keep their heartbeats until they are settled.
   */
  async stop(deadlineMs = this.#options.pullExpiresMs + 1_000): Promise<void> {
    if (this.#state === 'running') this.#state = 'stopping';
    this.#wake?.();
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), deadlineMs)));
    const outcome = await Promise.race([this.#done.then(() => 'done' as const), late]);
    clearTimeout(timer);
    if (outcome === 'late') {
      // NOTE: closing a pull early can strand a message already on its way to us; the broker
      // redelivers it after AckWait. Only taken when the pull outlives the deadline.
      await this.#batch?.close();
      await this.#done;
    }
    this.#state = 'stopped';
    if (this.#unsettled.size === 0) clearInterval(this.#heartbeat);
  }

  async #run(): Promise<void> {
    let backoffMs = 100;
    while (this.#state === 'running') {
      const free = Math.min(this.#handlers.numFreeSlots(), this.#options.maxPullBatch);
      if (free <= 0) {
        await this.#sleep(IDLE_POLL_MS);
        continue;
      }
      try {
        this.#batch = await this.#consumer.fetch({ max_messages: free, expires: this.#options.pullExpiresMs });
        for await (const msg of this.#batch) this.#receive(msg);
        backoffMs = 100;
      } catch (error) {
        this.#handlers.onError?.(error instanceof Error ? error : new Error(String(error)));
        await this.#sleep(backoffMs);
        backoffMs = Math.min(backoffMs * 2, MAX_BACKOFF_MS);
      } finally {
        this.#batch = undefined;
      }
    }
  }

  #receive(msg: JsMsg): void {
    let delivery: Delivery;
    try {
      const request = decodeRequestMessage(msg.data);
      delivery = new Delivery(msg, request, getTraceContext(msg.headers), this.#options.maxDeliver, (d) =>
        this.#settled(d),
      );
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      msg.term(reason);
      this.#handlers.onInvalid?.(reason, requestIdOfInvalid(msg.data), frontendIdOfInvalid(msg.data));
      return;
    }
    if (this.#state !== 'running') {
      delivery.nak(0);
      return;
    }
    this.#unsettled.add(delivery);
    try {
      this.#handlers.onRequest(delivery);
    } catch (error) {
      // A handler that throws has not taken the request: hand it back rather than strand it.
      delivery.nak(0);
      this.#handlers.onError?.(error instanceof Error ? error : new Error(String(error)));
    }
  }

  #settled(delivery: Delivery): void {
    this.#unsettled.delete(delivery);
    if (this.#state === 'stopped' && this.#unsettled.size === 0) clearInterval(this.#heartbeat);
    this.#wake?.();
  }

  #sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.#wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.#wake = done;
    });
  }
}

/** The `frontendId` of a message that failed validation, when it has a plausible one (to address its error). */
function frontendIdOfInvalid(data: Uint8Array): string | undefined {
  try {
    const o: unknown = JSON.parse(new TextDecoder().decode(data));
    if (typeof o !== 'object' || o === null || !('frontendId' in o)) return undefined;
    const id = o.frontendId;
    return typeof id === 'string' && id.length > 0 && id.length <= 256 ? id : undefined;
  } catch {
    return undefined;
  }
}
