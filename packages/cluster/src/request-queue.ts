import {
  AckPolicy,
  DeliverPolicy,
  DiscardPolicy,
  JetStreamApiError,
  RetentionPolicy,
  StorageType,
  type ConsumerConfig,
  type StreamConfig,
} from '@nats-io/jetstream';
import { nanos } from '@nats-io/transport-node';
import type { ClusterConnection } from './connect.ts';
import { RequestPublishError } from './errors.ts';
import { ensureStream, storeError } from './streams.ts';
import { QueueConsumer, type ConsumeHandlers } from './queue-consumer.ts';
import { resolveRequestQueueOptions, type RequestQueueOptions } from './request-queue-options.ts';
import { encodeRequestMessage, type RequestMessage } from './request-message.ts';
import { escapeToken } from './subjects.ts';
import { setTraceContext, type TraceContext } from './trace-context.ts';

export interface PublishReceipt {
  /** Stream sequence of the stored request (used to remove it if the client goes away first). */
  readonly seq: number;
  /** True when a request with this id was already in the stream (within the duplicate window). */
  readonly duplicate: boolean;
}

/**
 * The request work queue: stream SWITCHYARD_REQUESTS_<namespace> (WorkQueue retention, so a request leaves the
 * stream once an engine acks it), one shared durable pull consumer per model for all engines, and the
 * request id as `Nats-Msg-Id` so a request published twice is stored once. Frontends `publish`;
 * engines `consume`. Built by `open`, which creates or updates the stream.
 */
export class RequestQueue {
  readonly options: RequestQueueOptions;
  readonly #conn: ClusterConnection;

  private constructor(conn: ClusterConnection, options: RequestQueueOptions) {
    this.#conn = conn;
    this.options = options;
  }

  static async open(conn: ClusterConnection, options: Partial<RequestQueueOptions> = {}): Promise<RequestQueue> {
    const resolved = resolveRequestQueueOptions(options);
    await ensureStream(conn, streamConfig(conn, resolved));
    return new RequestQueue(conn, resolved);
  }

  /**
   * Stores the request for any engine of its model, or for one engine (`to.engineId`, KV-aware routing);
   * throws RequestPublishError when the broker does not take it. `to.attempt` > 0 marks a re-publish of
   * the same request (to the shared subject after the chosen engine did not take it): a distinct message
   * id, so the broker's duplicate window does not swallow it.
   */
  async publish(
    request: RequestMessage,
    trace?: TraceContext,
    to: { readonly engineId?: string; readonly attempt?: number } = {},
  ): Promise<PublishReceipt> {
    const subject =
      to.engineId === undefined
        ? this.#conn.names.requestSubject(request.model)
        : this.#conn.names.routedRequestSubject(request.model, to.engineId);
    try {
      const ack = await this.#conn.js.publish(subject, encodeRequestMessage(request), {
        msgID: to.attempt ? `${request.id}#${to.attempt}` : request.id,
        timeout: this.options.publishTimeoutMs,
        // Safe to retry: the request id is the message id, so the stream stores it once.
        retries: 2,
        headers: setTraceContext(trace),
      });
      return { seq: ack.seq, duplicate: ack.duplicate };
    } catch (error) {
      const detail = error instanceof Error ? error.message : String(error);
      throw new RequestPublishError(`could not queue request ${request.id} on NATS at ${this.#conn.url}: ${detail}`, {
        cause: error,
      });
    }
  }

  /**
   * Removes a queued request (its client went away). False when it is no longer in the stream — already
   * acked — or the broker did not answer; an engine serving it stops on the cancel message instead.
   */
  async remove(seq: number): Promise<boolean> {
    try {
      return await this.#conn.jsm.streams.deleteMessage(this.#conn.names.requestStream, seq, false);
    } catch {
      return false;
    }
  }

  /** Requests of `model` waiting for an engine (not yet delivered), for autoscaling and metrics. */
  async numWaiting(model: string): Promise<number> {
    const info = await this.#conn.jsm.consumers.info(this.#conn.names.requestStream, consumerName(model));
    return info.num_pending;
  }

  /** Starts pulling requests of `model` for this engine (creating or updating the shared consumer). */
  async consume(model: string, handlers: ConsumeHandlers): Promise<QueueConsumer> {
    const name = consumerName(model);
    await ensureConsumer(this.#conn, name, consumerConfig(name, this.#conn.names.requestSubject(model), this.options));
    const consumer = await this.#conn.js.consumers.get(this.#conn.names.requestStream, name);
    return new QueueConsumer(consumer, this.options, handlers, this.#conn.closed());
  }

  /**
   * Starts pulling the requests routed to this engine (`engineId`) — its own durable consumer on its own
   * subject, which the server removes after an hour without a pull (an engine that is gone for good).
   */
  async consumeRouted(model: string, engineId: string, handlers: ConsumeHandlers): Promise<QueueConsumer> {
    const name = routedConsumerName(model, engineId);
    const config = {
      ...consumerConfig(name, this.#conn.names.routedRequestSubject(model, engineId), this.options),
      inactive_threshold: nanos(3_600_000),
    };
    await ensureConsumer(this.#conn, name, config);
    const consumer = await this.#conn.js.consumers.get(this.#conn.names.requestStream, name);
    return new QueueConsumer(consumer, this.options, handlers, this.#conn.closed());
  }
}

/** The durable consumer all engines of `model` share. */
export function consumerName(model: string): string {
  return `engines-${escapeToken(model)}`;
}

/** The durable consumer of the requests routed to one engine. */
export function routedConsumerName(model: string, engineId: string): string {
  return `engine-${escapeToken(model)}-${escapeToken(engineId)}`;
}

function streamConfig(conn: ClusterConnection, o: RequestQueueOptions): StreamConfig {
  return {
    name: conn.names.requestStream,
    subjects: [conn.names.requestSubjects],
    retention: RetentionPolicy.Workqueue,
    storage: StorageType.File,
    discard: DiscardPolicy.New,
    max_msgs: o.maxQueuedRequests,
    max_age: nanos(o.maxAgeMs),
    duplicate_window: nanos(o.duplicateWindowMs),
    num_replicas: o.numReplicas,
  } as StreamConfig;
}

interface SharedConsumerConfig extends Partial<ConsumerConfig> {
  readonly ack_wait: number;
  readonly max_deliver: number;
  readonly max_ack_pending: number;
}

function consumerConfig(name: string, subject: string, o: RequestQueueOptions): SharedConsumerConfig {
  return {
    durable_name: name,
    filter_subject: subject,
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    ack_wait: nanos(o.ackWaitMs),
    max_deliver: o.maxDeliver,
    max_ack_pending: o.maxAckPending,
  };
}

/** Creates the shared consumer, or brings its timing and limits to this configuration. */
async function ensureConsumer(conn: ClusterConnection, name: string, config: SharedConsumerConfig): Promise<void> {
  try {
    await conn.jsm.consumers.add(conn.names.requestStream, config);
  } catch (error) {
    if (!(error instanceof JetStreamApiError)) throw storeError(`create consumer ${name}`, conn, error);
    try {
      const { ack_wait, max_deliver, max_ack_pending } = config;
      await conn.jsm.consumers.update(conn.names.requestStream, name, { ack_wait, max_deliver, max_ack_pending });
    } catch (updateError) {
      throw storeError(`update consumer ${name}`, conn, updateError);
    }
  }
}
