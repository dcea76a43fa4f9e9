/**
 * A gateway's client for a peer's KvPageService.
 */
import { Client, credentials } from '@grpc/grpc-js';
import type { ClientReadableStream, ClientWritableStream, StatusObject } from '@grpc/grpc-js';
import { status as GrpcStatus } from '@grpc/grpc-js';
import { DEFAULT_MAX_MESSAGE_BYTES, checkPositiveInteger, clientChannelOptions } from './channel-options.ts';
import { CancelledError, DataLossError, InternalError, UnavailableError } from './errors.ts';
import { ExtentAssembler, MAX_CHUNK_BYTES, MIN_EXTENT_BYTES, chunksOfExtent, coalesceExtents } from './kv-extents.ts';
import type { KvExtent } from './kv-extents.ts';
import { validateFetchRequest } from './kv-messages.ts';
import type { FetchPagesRequest, FetchedPages, PushPagesRequest, PushPagesResult } from './kv-messages.ts';
import { switchyardProtos } from './protos.ts';
import type { KvPageServiceMethods } from './protos.ts';
import { fromCallError } from './status-map.ts';
import { waitForDrain } from './stream-flow.ts';
import { callMetadata } from './unary-call.ts';
import type { WireKvPageChunk, WirePushPagesResponse } from './wire-types.ts';

export interface KvPageClientOptions {
  /** Default time allowed for a whole fetch or push. */
  readonly deadlineMs: number;
  /** Time allowed to connect in connectKvPageClient. Default: deadlineMs. */
  readonly connectDeadlineMs?: number;
  /** Largest fetch accepted, in bytes. Default 1 GiB. */
  readonly maxFetchBytes?: number;
  readonly maxMessageBytes?: number;
  /** For pushes. Default 1 MiB. */
  readonly minExtentBytes?: number;
  /** For pushes. Default 4 MiB. */
  readonly maxChunkBytes?: number;
}

export interface KvCallOptions {
  readonly deadlineMs?: number;
  readonly signal?: AbortSignal;
  /** W3C trace context, sent as `traceparent` metadata. */
  readonly traceparent?: string;
}

export interface KvPageClient {
  readonly address: string;
  /**
   * The requested blocks the peer holds, reassembled into extents. Rejects with DataLossError if the
   * peer breaks the chunk protocol or sends blocks not asked for, ResourceExhaustedError past
   * maxFetchBytes, DeadlineExceededError, CancelledError, UnavailableError.
   */
  fetchPages(request: FetchPagesRequest, options?: KvCallOptions): Promise<FetchedPages>;
  /** Offers extents to the peer; resolves with the blocks it kept. Extent data is sent without a copy. */
  pushPages(request: PushPagesRequest, options?: KvCallOptions): Promise<PushPagesResult>;
  close(): void;
}

interface ResolvedKvOptions {
  readonly deadlineMs: number;
  readonly maxFetchBytes: number;
  readonly minExtentBytes: number;
  readonly maxChunkBytes: number;
}

export async function connectKvPageClient(address: string, options: KvPageClientOptions): Promise<KvPageClient> {
  const deadlineMs = checkPositiveInteger(options.deadlineMs, 'deadlineMs');
  const connectDeadlineMs = checkPositiveInteger(options.connectDeadlineMs ?? deadlineMs, 'connectDeadlineMs');
  const config: ResolvedKvOptions = Object.freeze({
    deadlineMs,
    maxFetchBytes: checkPositiveInteger(options.maxFetchBytes ?? 1024 * 1024 * 1024, 'maxFetchBytes'),
    minExtentBytes: checkPositiveInteger(options.minExtentBytes ?? MIN_EXTENT_BYTES, 'minExtentBytes'),
    maxChunkBytes: checkPositiveInteger(options.maxChunkBytes ?? MAX_CHUNK_BYTES, 'maxChunkBytes'),
  });
  const maxMessageBytes = checkPositiveInteger(options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES, 'maxMessageBytes');
  const client = new Client(address, credentials.createInsecure(), clientChannelOptions(maxMessageBytes));
  try {
    await new Promise<void>((resolve, reject) => {
      client.waitForReady(Date.now() + connectDeadlineMs, (err) =>
        err === undefined || err === null ? resolve() : reject(err),
      );
    });
  } catch (err) {
    client.close();
    throw new UnavailableError(`KV peer ${address} not reachable within ${connectDeadlineMs} ms`, { cause: err });
  }
  return new GrpcKvPageClient(address, client, config);
}

class GrpcKvPageClient implements KvPageClient {
  readonly address: string;
  readonly #client: Client;
  readonly #config: ResolvedKvOptions;
  readonly #methods: KvPageServiceMethods;

  constructor(address: string, client: Client, config: ResolvedKvOptions) {
    this.address = address;
    this.#client = client;
    this.#config = config;
    this.#methods = switchyardProtos().kv;
  }

  fetchPages(request: FetchPagesRequest, options: KvCallOptions = {}): Promise<FetchedPages> {
    const { signal } = options;
    try {
      validateFetchRequest(request);
      if (signal?.aborted === true) throw new CancelledError('aborted before the call', { cause: signal.reason });
    } catch (err) {
      return Promise.reject(asError(err));
    }
    const { fetchPages } = this.#methods;
    const call = this.#client.makeServerStreamRequest(
      fetchPages.path,
      fetchPages.requestSerialize,
      fetchPages.responseDeserialize,
      { namespace: request.namespace, blockHashes: request.blockHashes },
      callMetadata(options.traceparent),
      { deadline: Date.now() + (options.deadlineMs ?? this.#config.deadlineMs) },
    );
    return collectFetch(call, request.blockHashes, this.#config.maxFetchBytes, signal);
  }

  async pushPages(request: PushPagesRequest, options: KvCallOptions = {}): Promise<PushPagesResult> {
    const { signal } = options;
    if (signal?.aborted === true) throw new CancelledError('aborted before the call', { cause: signal.reason });
    const { pushPages } = this.#methods;
    let call: ClientWritableStream<WireKvPageChunk> | undefined;
    const response = new Promise<WirePushPagesResponse>((resolve, reject) => {
      call = this.#client.makeClientStreamRequest(
        pushPages.path,
        pushPages.requestSerialize,
        pushPages.responseDeserialize,
        callMetadata(options.traceparent),
        { deadline: Date.now() + (options.deadlineMs ?? this.#config.deadlineMs) },
        (err, value) => {
          if (err !== null) reject(fromCallError(err));
          else if (value === undefined) reject(new InternalError('PushPages answered without a message'));
          else resolve(value);
        },
      );
    });
    // NOTE: settled-as-value so a rejection while we are still writing is never unhandled.
    const outcome = response.then(
      (value) => ({ ok: true as const, value }),
      (err: unknown) => ({ ok: false as const, err }),
    );
    if (call === undefined) throw new InternalError('PushPages call was not created');
    const stream = call;
    const onAbort = (): void => stream.cancel();
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      try {
        await this.#writeExtents(stream, request, outcome);
      } catch (err) {
        stream.cancel();
        throw err;
      }
      const result = await outcome;
      if (!result.ok) throw result.err;
      return { acceptedHashes: result.value.acceptedHashes };
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
  }

  close(): void {
    this.#client.close();
  }

  async #writeExtents(
    stream: ClientWritableStream<WireKvPageChunk>,
    request: PushPagesRequest,
    outcome: Promise<unknown>,
  ): Promise<void> {
    let extentIndex = 0;
    let done = false;
    void outcome.then(() => {
      done = true;
    });
    for await (const extent of coalesceExtents(request.extents, this.#config.minExtentBytes)) {
      const namespace = extentIndex === 0 ? request.namespace : '';
      for (const chunk of chunksOfExtent(extent, extentIndex, this.#config.maxChunkBytes, namespace)) {
        if (done) return;
        if (!stream.write(chunk)) await waitForDrain(stream, outcome);
      }
      extentIndex++;
    }
    stream.end();
  }
}

/**
 * Reads a FetchPages stream to its end. Settles once: with the extents when the status is OK and
 * every chunk has been read, or with the first failure (the call is then cancelled).
 */
function collectFetch(
  call: ClientReadableStream<WireKvPageChunk>,
  requested: readonly string[],
  maxBytes: number,
  signal: AbortSignal | undefined,
): Promise<FetchedPages> {
  const isRequested = new Set(requested);
  const assembler = new ExtentAssembler(maxBytes);
  const extents: KvExtent[] = [];
  return new Promise((resolve, reject) => {
    let settled = false;
    let statusOk = false;
    let ended = false;
    const onAbort = (): void => fail(new CancelledError('fetchPages aborted', { cause: signal?.reason }));
    const settle = (): boolean => {
      if (settled) return false;
      settled = true;
      signal?.removeEventListener('abort', onAbort);
      return true;
    };
    function fail(err: unknown): void {
      if (!settle()) return;
      call.cancel();
      reject(asError(err));
    }
    const succeedIfDone = (): void => {
      if (settled || !statusOk || !ended) return;
      try {
        assembler.finish();
      } catch (err) {
        fail(err);
        return;
      }
      if (settle()) resolve(fetchedPages(requested, extents, assembler.totalBytes));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    call.on('data', (chunk: WireKvPageChunk) => {
      if (settled) return;
      try {
        const extent = assembler.accept(chunk);
        const stranger = extent?.blockHashes.find((hash) => !isRequested.has(hash));
        if (stranger !== undefined) throw new DataLossError(`peer sent block ${stranger}, which was not requested`);
        if (extent !== undefined) extents.push(extent);
      } catch (err) {
        fail(err);
      }
    });
    call.on('error', (err: Error) => fail(fromCallError(err)));
    call.on('status', (status: StatusObject) => {
      statusOk = status.code === GrpcStatus.OK;
      succeedIfDone();
    });
    call.on('end', () => {
      ended = true;
      succeedIfDone();
    });
  });
}

function asError(err: unknown): Error {
  return err instanceof Error ? err : new InternalError('KV transfer failed', { cause: err });
}

function fetchedPages(requested: readonly string[], extents: readonly KvExtent[], sizeBytes: number): FetchedPages {
  const received = new Set(extents.flatMap((extent) => extent.blockHashes));
  return { extents, missingHashes: requested.filter((hash) => !received.has(hash)), sizeBytes };
}
