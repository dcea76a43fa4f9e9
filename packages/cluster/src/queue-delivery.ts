import type { JsMsg } from '@nats-io/jetstream';
import type { RequestMessage } from './request-message.ts';
import type { TraceContext } from './trace-context.ts';

export type Settlement = 'ack' | 'nak' | 'term';

/**
 * One delivery of a request to this engine. Settle it exactly once: `ack` when the request is done
 * (finished, failed for good or cancelled), `nak(delayMs)` to hand it back for another try (here or on
 * another engine), `term` to drop it for good. Until then the consumer sends `working()` for it, so the
 * broker does not redeliver it while it generates.
 */
export interface QueueDelivery {
  readonly request: RequestMessage;
  readonly trace: TraceContext | undefined;
  /** 1 on the first delivery; above 1 when another engine (or this one) had it before. */
  readonly numDelivered: number;
  /** No further delivery follows a nak of this one (max deliver reached). */
  readonly isLastDelivery: boolean;
  readonly settlement: Settlement | undefined;
  ack(): void;
  nak(delayMs?: number): void;
  term(reason: string): void;
}

/** Invariant: the message is settled at most once; `onSettled` runs exactly once, on that settlement. */
export class Delivery implements QueueDelivery {
  readonly request: RequestMessage;
  readonly trace: TraceContext | undefined;
  readonly numDelivered: number;
  readonly isLastDelivery: boolean;
  readonly #msg: JsMsg;
  readonly #onSettled: (delivery: Delivery) => void;
  #settlement: Settlement | undefined;

  constructor(
    msg: JsMsg,
    request: RequestMessage,
    trace: TraceContext | undefined,
    maxDeliver: number,
    onSettled: (delivery: Delivery) => void,
  ) {
    this.#msg = msg;
    this.request = request;
    this.trace = trace;
    this.numDelivered = msg.info.deliveryCount;
    this.isLastDelivery = msg.info.deliveryCount >= maxDeliver;
    this.#onSettled = onSettled;
  }

  get settlement(): Settlement | undefined {
    return this.#settlement;
  }

  /** Resets the broker's ack timer (no-op once settled). */
  working(): void {
    if (this.#settlement === undefined) sendQuietly(() => this.#msg.working());
  }

  ack(): void {
    this.#settle('ack', () => this.#msg.ack());
  }

  nak(delayMs?: number): void {
    this.#settle('nak', () => this.#msg.nak(delayMs));
  }

  term(reason: string): void {
    this.#settle('term', () => this.#msg.term(reason));
  }

  #settle(settlement: Settlement, send: () => void): void {
    if (this.#settlement !== undefined) return;
    this.#settlement = settlement;
    sendQuietly(send);
    this.#onSettled(this);
  }
}

/**
 * NOTE: acks never throw. On a closed connection nothing can be sent, and nothing needs to be: the
 * broker redelivers an unacknowledged request after AckWait, which is the recovery path anyway.
 */
function sendQuietly(send: () => void): void {
  try {
    send();
  } catch {
    // closed or draining connection: see above
  }
}
