/**
 * The gateway's view of one expert worker: ONE long-lived Run stream plus unary control calls.
 */
import { Client } from '@grpc/grpc-js';
import type { ClientDuplexStream, StatusObject } from '@grpc/grpc-js';
import { status as GrpcStatus } from '@grpc/grpc-js';
import { DEFAULT_MAX_MESSAGE_BYTES, checkPositiveInteger, clientChannelOptions } from './channel-options.ts';
import { CancelledError, InternalError, ResourceExhaustedError, UnavailableError } from './errors.ts';
import { encodeRunRequest, toPlacementState, toWorkerDescription, validateRunRequest } from './expert-messages.ts';
import type { PlacementChange, PlacementState, RunReply, RunRequest, WorkerDescription } from './expert-messages.ts';
import { checkHealthOn } from './health.ts';
import type { HealthStatus } from './health.ts';
import { PendingCalls } from './pending-calls.ts';
import { switchyardProtos } from './protos.ts';
import type { ExpertServiceMethods } from './protos.ts';
import { fromWireStatus } from './status-map.ts';
import { decodeFloat } from './tensor-codec.ts';
import type { FloatFormat } from './tensor-codec.ts';
import { unaryCall } from './unary-call.ts';
import type { CallOptions } from './unary-call.ts';
import type { WireRunRequest, WireRunResponse } from './wire-types.ts';
import { channelCredentialsOf, type ClientTls } from './tls.ts';

export interface ExpertClientOptions {
  /** Default time allowed for each call (a Run message or a unary call). */
  readonly deadlineMs: number;
  /** Time allowed to establish the connection in connectExpertClient. Default: deadlineMs. */
  readonly connectDeadlineMs?: number;
  /** Run requests allowed in flight on the stream; one more is refused. Default 256. */
  readonly maxInFlight?: number;
  /** Largest message sent or received. Default 256 MiB. */
  readonly maxMessageBytes?: number;
  /** Float format of hidden states and outputs on the wire. Default 'f32' (bit-exact). */
  readonly wireFormat?: FloatFormat;
  /** TLS to the worker (and this gateway's certificate, for mutual TLS); absent: plaintext. */
  readonly tls?: ClientTls;
}

export interface RunCallOptions {
  readonly signal?: AbortSignal;
  /** Overrides the client's deadlineMs for this request. */
  readonly deadlineMs?: number;
  /** Overrides the client's wireFormat for this request. */
  readonly wireFormat?: FloatFormat;
}

export interface UnaryCallOptions {
  readonly signal?: AbortSignal;
  readonly deadlineMs?: number;
  /** W3C trace context, sent as `traceparent` metadata. */
  readonly traceparent?: string;
  /** Wait for the channel to (re)connect within the deadline rather than fail at once between attempts. */
  readonly waitForReady?: boolean;
}

export interface ExpertStreamClient {
  readonly address: string;
  /** Run requests sent and not yet answered. */
  readonly numInFlight: number;
  /**
   * Sends one request on the shared Run stream (opening it if needed) and resolves with the
   * worker's answer. Rejects with InvalidArgumentError (bad request, here or on the worker),
   * NotFoundError (expert not hosted), DeadlineExceededError, CancelledError (signal),
   * ResourceExhaustedError (maxInFlight reached), UnavailableError (stream broke or worker draining;
   * the next call opens a new stream) or InternalError.
   * NOTE: f32 hidden states and routes are sent from the caller's memory without a copy: do not
   * mutate them until the promise settles.
   */
  run(request: RunRequest, options?: RunCallOptions): Promise<RunReply>;
  describe(options?: UnaryCallOptions): Promise<WorkerDescription>;
  load(change: PlacementChange, options?: UnaryCallOptions): Promise<PlacementState>;
  unload(change: PlacementChange, options?: UnaryCallOptions): Promise<PlacementState>;
  /** grpc.health.v1 Check on this channel ('' = the whole server). */
  checkHealth(service?: string, options?: UnaryCallOptions): Promise<HealthStatus>;
  /** Fails pending requests with UnavailableError and closes the channel. Idempotent. */
  close(): void;
}

/**
 * Connects to a worker, waiting (up to connectDeadlineMs) until the channel is ready; rejects with
 * UnavailableError if it does not become ready in time.
 */
export async function connectExpertClient(address: string, options: ExpertClientOptions): Promise<ExpertStreamClient> {
  const config = resolveOptions(options);
  const client = new Client(address, channelCredentialsOf(options.tls), clientChannelOptions(config.maxMessageBytes));
  try {
    await waitForReady(client, config.connectDeadlineMs);
  } catch (err) {
    client.close();
    throw new UnavailableError(`worker ${address} not reachable within ${config.connectDeadlineMs} ms`, { cause: err });
  }
  return new GrpcExpertStreamClient(address, client, config);
}

interface ResolvedOptions {
  readonly deadlineMs: number;
  readonly connectDeadlineMs: number;
  readonly maxInFlight: number;
  readonly maxMessageBytes: number;
  readonly wireFormat: FloatFormat;
}

function resolveOptions(options: ExpertClientOptions): ResolvedOptions {
  const deadlineMs = checkPositiveInteger(options.deadlineMs, 'deadlineMs');
  return Object.freeze({
    deadlineMs,
    connectDeadlineMs: checkPositiveInteger(options.connectDeadlineMs ?? deadlineMs, 'connectDeadlineMs'),
    maxInFlight: checkPositiveInteger(options.maxInFlight ?? 256, 'maxInFlight'),
    maxMessageBytes: checkPositiveInteger(options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES, 'maxMessageBytes'),
    wireFormat: options.wireFormat ?? 'f32',
  });
}

function waitForReady(client: Client, deadlineMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    client.waitForReady(Date.now() + deadlineMs, (err) =>
      err === undefined || err === null ? resolve() : reject(err),
    );
  });
}

type RunStream = ClientDuplexStream<WireRunRequest, WireRunResponse>;

/**
 * Invariants: at most one Run stream is open (`#stream`); every pending request was written to the
 * current stream, so when that stream breaks they all fail together and the next request opens a
 * new one. Correlation ids only grow, so a late answer to a timed-out request matches nothing.
 */
class GrpcExpertStreamClient implements ExpertStreamClient {
  readonly address: string;
  readonly #client: Client;
  readonly #config: ResolvedOptions;
  readonly #methods: ExpertServiceMethods;
  readonly #pending = new PendingCalls<RunReply>();
  #stream: RunStream | undefined;
  #nextCorrelationId = 1;
  #closed = false;

  constructor(address: string, client: Client, config: ResolvedOptions) {
    this.address = address;
    this.#client = client;
    this.#config = config;
    this.#methods = switchyardProtos().expert;
  }

  get numInFlight(): number {
    return this.#pending.size;
  }

  run(request: RunRequest, options: RunCallOptions = {}): Promise<RunReply> {
    try {
      this.#checkCanSend(options.signal);
      validateRunRequest(request);
      const id = this.#nextCorrelationId++;
      const message = encodeRunRequest(id, request, options.wireFormat ?? this.#config.wireFormat);
      const stream = this.#openStream();
      const reply = this.#pending.add(id, options.deadlineMs ?? this.#config.deadlineMs, options.signal);
      stream.write(message);
      return reply;
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new InternalError('run failed', { cause: err }));
    }
  }

  async describe(options: UnaryCallOptions = {}): Promise<WorkerDescription> {
    const response = await unaryCall(this.#client, this.#methods.describe, {}, this.#callOptions(options));
    return toWorkerDescription(response);
  }

  async load(change: PlacementChange, options: UnaryCallOptions = {}): Promise<PlacementState> {
    return toPlacementState(
      await unaryCall(this.#client, this.#methods.loadExperts, change, this.#callOptions(options)),
    );
  }

  async unload(change: PlacementChange, options: UnaryCallOptions = {}): Promise<PlacementState> {
    return toPlacementState(
      await unaryCall(this.#client, this.#methods.unloadExperts, change, this.#callOptions(options)),
    );
  }

  checkHealth(service = '', options: UnaryCallOptions = {}): Promise<HealthStatus> {
    return checkHealthOn(this.#client, service, this.#callOptions(options));
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#pending.failAll(new UnavailableError(`client for ${this.address} closed`));
    const stream = this.#stream;
    this.#stream = undefined;
    stream?.cancel();
    this.#client.close();
  }

  #callOptions(options: UnaryCallOptions): CallOptions {
    return { ...options, deadlineMs: options.deadlineMs ?? this.#config.deadlineMs };
  }

  #checkCanSend(signal: AbortSignal | undefined): void {
    if (this.#closed) throw new UnavailableError(`client for ${this.address} is closed`);
    if (signal?.aborted === true) throw new CancelledError('aborted before sending', { cause: signal.reason });
    if (this.#pending.size >= this.#config.maxInFlight) {
      throw new ResourceExhaustedError(`${this.#pending.size} Run requests already in flight to ${this.address}`);
    }
  }

  #openStream(): RunStream {
    if (this.#stream !== undefined) return this.#stream;
    const { run } = this.#methods;
    const stream = this.#client.makeBidiStreamRequest(run.path, run.requestSerialize, run.responseDeserialize);
    stream.on('data', (response: WireRunResponse) => this.#onResponse(response));
    stream.on('error', (err: Error) => this.#onStreamEnded(stream, err));
    stream.on('status', (status: StatusObject) => {
      if (status.code === GrpcStatus.OK) this.#onStreamEnded(stream, new Error('the worker ended the Run stream'));
    });
    this.#stream = stream;
    return stream;
  }

  #onResponse(response: WireRunResponse): void {
    const id = response.correlationId;
    if (response.error !== undefined && response.error !== null) {
      this.#pending.reject(id, fromWireStatus(response.error.code, response.error.message));
      return;
    }
    if (response.output === undefined || response.output === null) {
      this.#pending.reject(id, new InternalError(`response ${id} carries neither output nor error`));
      return;
    }
    try {
      this.#pending.resolve(id, { output: decodeFloat(response.output), computeTimeUs: response.computeTimeUs });
    } catch (err) {
      this.#pending.reject(id, new InternalError(`response ${id} has a malformed output`, { cause: err }));
    }
  }

  #onStreamEnded(stream: RunStream, cause: Error): void {
    if (this.#stream !== stream) return;
    this.#stream = undefined;
    this.#pending.failAll(new UnavailableError(`Run stream to ${this.address} ended`, { cause }));
  }
}
