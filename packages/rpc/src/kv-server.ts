/**
 * KvPageService over a plain TypeScript handler, with grpc.health.v1.
 */
import type { ServerReadableStream, ServerWritableStream, sendUnaryData } from '@grpc/grpc-js';
import { checkPositiveInteger } from './channel-options.ts';
import { CancelledError } from './errors.ts';
import type { ServingStatus } from './health.ts';
import { ExtentAssembler, MAX_CHUNK_BYTES, MIN_EXTENT_BYTES, chunksOfExtent, coalesceExtents } from './kv-extents.ts';
import type { KvExtent } from './kv-extents.ts';
import { validateFetchRequest } from './kv-messages.ts';
import type { FetchPagesRequest, PushPagesRequest, PushPagesResult } from './kv-messages.ts';
import { KV_PAGE_SERVICE_NAME, switchyardProtos } from './protos.ts';
import { defaultLogError, startServer } from './server-host.ts';
import type { ServerListenOptions } from './server-host.ts';
import { isUnexpectedError } from './status-map.ts';
import { waitForDrain } from './stream-flow.ts';
import type { CallContext } from './unary-handler.ts';
import { callContext, serviceError } from './unary-handler.ts';
import type { WireFetchPagesRequest, WireKvPageChunk, WirePushPagesResponse } from './wire-types.ts';

export interface KvPageServiceHandler {
  /**
   * The requested blocks this node holds, as extents in prefix order (blocks it lacks are left
   * out). Extent data may be views into the cache: they are sent before the iteration resumes.
   */
  readonly fetchPages: (
    request: FetchPagesRequest,
    context: CallContext,
  ) => Iterable<KvExtent> | AsyncIterable<KvExtent>;
  /** Pages offered by a peer; answer which blocks were kept. */
  readonly pushPages: (request: PushPagesRequest, context: CallContext) => Promise<PushPagesResult>;
}

export interface KvPageServerOptions extends ServerListenOptions {
  readonly handler: KvPageServiceHandler;
  /** Default 1 MiB. */
  readonly minExtentBytes?: number;
  /** Largest data per chunk message. Default 4 MiB. */
  readonly maxChunkBytes?: number;
  /** Largest PushPages transfer accepted. Default 1 GiB. */
  readonly maxPushBytes?: number;
}

export interface KvPageServer {
  readonly port: number;
  setServingStatus(status: ServingStatus, service?: string): void;
  /** Health NOT_SERVING, then lets transfers finish for up to graceMs, then cuts them. */
  close(graceMs: number): Promise<void>;
}

interface ChunkLimits {
  readonly minExtentBytes: number;
  readonly maxChunkBytes: number;
}

export async function createKvPageServer(options: KvPageServerOptions): Promise<KvPageServer> {
  const { handler } = options;
  const logError = options.logError ?? defaultLogError;
  const limits: ChunkLimits = {
    minExtentBytes: checkPositiveInteger(options.minExtentBytes ?? MIN_EXTENT_BYTES, 'minExtentBytes'),
    maxChunkBytes: checkPositiveInteger(options.maxChunkBytes ?? MAX_CHUNK_BYTES, 'maxChunkBytes'),
  };
  const maxPushBytes = checkPositiveInteger(options.maxPushBytes ?? 1024 * 1024 * 1024, 'maxPushBytes');
  const protos = switchyardProtos().kv;

  const fetchPages = (call: ServerWritableStream<WireFetchPagesRequest, WireKvPageChunk>): void => {
    sendExtents(call, handler, limits, callContext(call)).then(
      () => call.end(),
      (err: unknown) => {
        if (call.cancelled) return;
        if (isUnexpectedError(err)) logError('FetchPages failed', err);
        call.emit('error', serviceError(err));
      },
    );
  };
  const pushPages = (
    call: ServerReadableStream<WireKvPageChunk, WirePushPagesResponse>,
    callback: sendUnaryData<WirePushPagesResponse>,
  ): void => {
    const context = callContext(call);
    receiveExtents(call, maxPushBytes)
      .then((request) => handler.pushPages(request, context))
      .then(
        (result) => callback(null, { acceptedHashes: [...result.acceptedHashes] }),
        (err: unknown) => {
          if (isUnexpectedError(err)) logError('PushPages failed', err);
          callback(serviceError(err));
        },
      );
  };

  const server = await startServer(options, [
    {
      name: KV_PAGE_SERVICE_NAME,
      definition: protos.service,
      implementation: { FetchPages: fetchPages, PushPages: pushPages },
    },
  ]);
  return {
    port: server.port,
    setServingStatus: (status, service) => server.health.setStatus(status, service),
    close: (graceMs) => server.close(graceMs),
  };
}

async function sendExtents(
  call: ServerWritableStream<WireFetchPagesRequest, WireKvPageChunk>,
  handler: KvPageServiceHandler,
  limits: ChunkLimits,
  context: CallContext,
): Promise<void> {
  const { signal } = context;
  const request: FetchPagesRequest = { namespace: call.request.namespace, blockHashes: call.request.blockHashes };
  validateFetchRequest(request);
  const cancelled = new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
  let extentIndex = 0;
  for await (const extent of coalesceExtents(handler.fetchPages(request, context), limits.minExtentBytes)) {
    for (const chunk of chunksOfExtent(extent, extentIndex, limits.maxChunkBytes)) {
      if (signal.aborted) throw new CancelledError('FetchPages cancelled by the peer');
      if (!call.write(chunk)) await waitForDrain(call, cancelled);
    }
    extentIndex++;
  }
}

/** Reads a whole PushPages stream into extents (bounded by maxBytes). */
function receiveExtents(
  call: ServerReadableStream<WireKvPageChunk, WirePushPagesResponse>,
  maxBytes: number,
): Promise<PushPagesRequest> {
  return new Promise((resolve, reject) => {
    const assembler = new ExtentAssembler(maxBytes);
    const extents: KvExtent[] = [];
    let namespace: string | undefined;
    let failed = false;
    const fail = (err: unknown): void => {
      if (failed) return;
      failed = true;
      call.pause();
      reject(err);
    };
    call.on('data', (chunk: WireKvPageChunk) => {
      if (failed) return;
      namespace ??= chunk.namespace;
      try {
        const extent = assembler.accept(chunk);
        if (extent !== undefined) extents.push(extent);
      } catch (err) {
        fail(err);
      }
    });
    call.on('end', () => {
      if (failed) return;
      try {
        assembler.finish();
        resolve({ namespace: namespace ?? '', extents });
      } catch (err) {
        fail(err);
      }
    });
    call.on('error', fail);
    call.on('cancelled', () => fail(new CancelledError('PushPages cancelled by the peer')));
  });
}
