/**
 * The KV bulk data plane's server (kv-bulk-protocol.ts): FetchPages over plain TCP, answered by the same
 * KvPageServiceHandler as the gRPC KvPageService, page bytes written from the handler's own buffers.
 */
import { createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import { checkPositiveInteger } from './channel-options.ts';
import { CancelledError, InternalError } from './errors.ts';
import {
  KEEPALIVE_MS,
  MAX_FRAME_DATA_BYTES,
  REQUEST_HEADER_BYTES,
  encodeEndFrame,
  encodeErrorFrame,
  encodeExtentHeader,
  parseRequestBody,
  parseRequestHeader,
} from './kv-bulk-protocol.ts';
import { MAX_CHUNK_BYTES, pageSizeBytes, validateExtent } from './kv-extents.ts';
import type { KvExtent } from './kv-extents.ts';
import type { FetchPagesRequest } from './kv-messages.ts';
import type { KvPageServiceHandler } from './kv-server.ts';
import { defaultLogError } from './server-host.ts';
import { isUnexpectedError, toWireStatus } from './status-map.ts';
import { waitForDrain } from './stream-flow.ts';

export interface KvBulkServerOptions {
  /** Interface to bind, e.g. "0.0.0.0" in a pod, "127.0.0.1" in tests. */
  readonly host: string;
  /** 0 picks a free port; the chosen one is `port` on the result. */
  readonly port: number;
  readonly handler: KvPageServiceHandler;
  /**
   * Adjacent extents of equal page size are sent as one EXTENT frame (written back to back, no copy)
   * until it holds this many bytes. Default 4 MiB.
   */
  readonly frameBytes?: number;
  /** Connections served at once; more are refused. Default 256. */
  readonly maxConnections?: number;
  /** Called with failures that were answered with a generic INTERNAL. Default: console.error. */
  readonly logError?: (message: string, err: unknown) => void;
}

export interface KvBulkServer {
  readonly port: number;
  /** Connections accepted since start (clients keep theirs for reuse, so this grows slowly). */
  readonly numAccepted: number;
  /** Stops accepting, closes idle connections, lets answers in flight finish for up to graceMs, then cuts them. */
  close(graceMs: number): Promise<void>;
}

interface ServeConfig {
  readonly handler: KvPageServiceHandler;
  readonly frameBytes: number;
  readonly logError: (message: string, err: unknown) => void;
}

export async function createKvBulkServer(options: KvBulkServerOptions): Promise<KvBulkServer> {
  const config: ServeConfig = Object.freeze({
    handler: options.handler,
    frameBytes: Math.min(
      checkPositiveInteger(options.frameBytes ?? MAX_CHUNK_BYTES, 'frameBytes'),
      MAX_FRAME_DATA_BYTES,
    ),
    logError: options.logError ?? defaultLogError,
  });
  const connections = new Set<BulkServerConnection>();
  let numAccepted = 0;
  const server = createServer({ noDelay: true, keepAlive: true, keepAliveInitialDelay: KEEPALIVE_MS }, (socket) => {
    numAccepted++;
    const connection = new BulkServerConnection(socket, config);
    connections.add(connection);
    socket.on('close', () => connections.delete(connection));
  });
  server.maxConnections = checkPositiveInteger(options.maxConnections ?? 256, 'maxConnections');
  const port = await listen(server, options.host, options.port);
  // Past listening, a failure to accept (e.g. out of file descriptors) is logged, not thrown.
  server.on('error', (err) => config.logError('KV bulk server', err));
  return {
    port,
    get numAccepted() {
      return numAccepted;
    },
    close: (graceMs) => closeServer(server, connections, graceMs),
  };
}

function listen(server: Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      const address = server.address();
      resolve(typeof address === 'object' && address !== null ? address.port : port);
    });
  });
}

async function closeServer(server: Server, connections: Set<BulkServerConnection>, graceMs: number): Promise<void> {
  const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
  for (const connection of connections) connection.closeWhenIdle();
  const deadline = Date.now() + graceMs;
  while (connections.size > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
  for (const connection of connections) connection.destroy();
  await stopped;
}

/**
 * One client connection: reads a request, answers it, reads the next.
 * Invariants: at most one answer is being written at a time (the socket is paused while it is, so a
 * client cannot pipeline); `#pending` holds at most one request header plus body of unread bytes.
 */
class BulkServerConnection {
  readonly #socket: Socket;
  readonly #config: ServeConfig;
  readonly #closed: Promise<void>;
  readonly #abort = new AbortController();
  #pending: Buffer = Buffer.alloc(0);
  #bodyBytes: number | undefined;
  #serving = false;
  #closing = false;

  constructor(socket: Socket, config: ServeConfig) {
    this.#socket = socket;
    this.#config = config;
    this.#closed = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.on('close', () => this.#abort.abort(new CancelledError('the client closed the connection')));
    socket.on('error', () => undefined); // 'close' follows; a reset peer is not the server's failure
    socket.on('data', (data: Buffer) => this.#receive(data));
  }

  closeWhenIdle(): void {
    this.#closing = true;
    if (!this.#serving) this.#socket.end();
  }

  destroy(): void {
    this.#socket.destroy();
  }

  #receive(data: Buffer): void {
    this.#pending = this.#pending.byteLength === 0 ? data : Buffer.concat([this.#pending, data]);
    this.#next();
  }

  /** Takes the next complete request off `#pending`, if any, and serves it. */
  #next(): void {
    if (this.#serving || this.#closing) return;
    if (this.#bodyBytes === undefined) {
      if (this.#pending.byteLength < REQUEST_HEADER_BYTES) return;
      try {
        this.#bodyBytes = parseRequestHeader(this.#pending.subarray(0, REQUEST_HEADER_BYTES));
      } catch (err) {
        // The framing is lost: say why, then hang up.
        this.#closing = true;
        this.#socket.end(errorFrameOf(err));
        this.#socket.pause();
        return;
      }
    }
    const end = REQUEST_HEADER_BYTES + this.#bodyBytes;
    if (this.#pending.byteLength < end) return;
    const body = this.#pending.subarray(REQUEST_HEADER_BYTES, end);
    this.#pending = this.#pending.subarray(end);
    this.#bodyBytes = undefined;
    let request: FetchPagesRequest;
    try {
      request = parseRequestBody(body);
    } catch (err) {
      this.#socket.write(errorFrameOf(err));
      this.#next();
      return;
    }
    this.#serving = true;
    this.#socket.pause();
    void this.#answer(request).finally(() => {
      this.#serving = false;
      if (this.#closing) {
        this.#socket.end();
        return;
      }
      this.#socket.resume();
      this.#next();
    });
  }

  /** Writes the answer to one request; never rejects (a failure becomes an ERROR frame). */
  async #answer(request: FetchPagesRequest): Promise<void> {
    let numFrames = 0;
    try {
      let run: KvExtent[] = [];
      let runBytes = 0;
      const context = { signal: this.#abort.signal };
      // NOTE: a run is held across iterations (as the gRPC path's coalescing does): every handler here
      // yields buffers that stay valid (fresh encodings, or a store's immutable pages).
      for await (const extent of this.#config.handler.fetchPages(request, context)) {
        validateExtent(extent);
        const first = run[0];
        if (first !== undefined && pageSizeBytes(first) !== pageSizeBytes(extent)) {
          await this.#sendFrame(run, runBytes);
          numFrames++;
          run = [];
          runBytes = 0;
        }
        if (runBytes + extent.data.byteLength > MAX_FRAME_DATA_BYTES)
          throw new InternalError('a served KV extent exceeds the largest bulk frame');
        run.push(extent);
        runBytes += extent.data.byteLength;
        if (runBytes >= this.#config.frameBytes) {
          await this.#sendFrame(run, runBytes);
          numFrames++;
          run = [];
          runBytes = 0;
        }
      }
      if (run.length > 0) {
        await this.#sendFrame(run, runBytes);
        numFrames++;
      }
      this.#socket.write(encodeEndFrame(numFrames));
    } catch (err) {
      if (this.#abort.signal.aborted) return;
      if (isUnexpectedError(err)) this.#config.logError('KV bulk fetch failed', err);
      this.#socket.write(errorFrameOf(err));
    }
  }

  /** One EXTENT frame from a run of equally paged extents, written as one writev; waits for the socket to drain. */
  async #sendFrame(run: readonly KvExtent[], runBytes: number): Promise<void> {
    if (this.#abort.signal.aborted) throw new CancelledError('the client closed the connection');
    const socket = this.#socket;
    socket.cork();
    socket.write(
      encodeExtentHeader(
        run.flatMap((extent) => extent.blockHashes),
        runBytes,
      ),
    );
    for (const extent of run) socket.write(extent.data);
    socket.uncork();
    if (socket.writableNeedDrain) await waitForDrain(socket, this.#closed);
  }
}

function errorFrameOf(err: unknown): Buffer {
  const status = toWireStatus(err);
  return encodeErrorFrame(status.code, status.details);
}
