/**
 * The KV bulk data plane's client (kv-bulk-protocol.ts): fetches pages from a peer's bulk server over
 * plain TCP and answers exactly like KvPageClient.fetchPages (same FetchedPages, same error classes and
 * codes). Each extent's bytes are read by the socket straight into one buffer of the announced size
 * (`onread` with a caller-supplied buffer), so the only copy is the kernel's.
 */
import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { checkPositiveInteger } from './channel-options.ts';
import {
  CancelledError,
  ConnectFailedError,
  DataLossError,
  DeadlineExceededError,
  ResourceExhaustedError,
  UnavailableError,
} from './errors.ts';
import {
  FRAME_END,
  FRAME_ERROR,
  FRAME_EXTENT,
  FRAME_HEADER_BYTES,
  HASH_BYTES,
  KEEPALIVE_MS,
  decodeHashes,
  encodeRequest,
  parseFrameHeader,
} from './kv-bulk-protocol.ts';
import type { KvCallOptions } from './kv-client.ts';
import type { KvExtent } from './kv-extents.ts';
import type { FetchPagesRequest, FetchedPages } from './kv-messages.ts';
import { fromWireStatus } from './status-map.ts';

export interface KvBulkClientOptions {
  /** Default time allowed for a whole fetch, connecting included. */
  readonly deadlineMs: number;
  /** Time allowed to connect (within the fetch's deadline). Default 2 s. */
  readonly connectDeadlineMs?: number;
  /** Largest fetch accepted, in bytes. Default 1 GiB. */
  readonly maxFetchBytes?: number;
  /** Idle connections kept for reuse. Default 2. */
  readonly maxIdleConnections?: number;
}

export interface KvBulkClient {
  readonly address: string;
  /**
   * As KvPageClient.fetchPages. Rejects with ConnectFailedError (an UnavailableError) when no connection
   * could be made — nothing was sent, so the caller may fall back to gRPC — DataLossError if the peer
   * breaks the protocol or sends blocks not asked for, ResourceExhaustedError past maxFetchBytes,
   * DeadlineExceededError, CancelledError, UnavailableError (the peer went away mid-answer), or the
   * error the peer's handler answered with (FailedPreconditionError for another namespace, …).
   */
  fetchPages(request: FetchPagesRequest, options?: KvCallOptions): Promise<FetchedPages>;
  /** Closes idle connections; fetches in flight fail with UnavailableError. */
  close(): void;
}

interface ResolvedBulkOptions {
  readonly host: string;
  readonly port: number;
  readonly deadlineMs: number;
  readonly connectDeadlineMs: number;
  readonly maxFetchBytes: number;
  readonly maxIdleConnections: number;
}

/** A client for the bulk server at `address` (host:port or [v6]:port); connects on first use. */
export function createKvBulkClient(address: string, options: KvBulkClientOptions): KvBulkClient {
  const match = /^\[([0-9a-fA-F:.]+)\]:(\d{1,5})$|^([^:[\]]+):(\d{1,5})$/.exec(address);
  const host = match?.[1] ?? match?.[3];
  const port = Number(match?.[2] ?? match?.[4]);
  if (host === undefined || !(port > 0 && port <= 65535))
    throw new RangeError(`KV bulk address must be host:port, got "${address}"`);
  return new PooledBulkClient(
    address,
    Object.freeze({
      host,
      port,
      deadlineMs: checkPositiveInteger(options.deadlineMs, 'deadlineMs'),
      connectDeadlineMs: checkPositiveInteger(options.connectDeadlineMs ?? 2_000, 'connectDeadlineMs'),
      maxFetchBytes: checkPositiveInteger(options.maxFetchBytes ?? 1024 * 1024 * 1024, 'maxFetchBytes'),
      maxIdleConnections: Math.max(0, Math.floor(options.maxIdleConnections ?? 2)),
    }),
  );
}

/**
 * A small pool of connections to one peer. Invariants: a connection is either idle (in `#idle`, no
 * request on it) or lent to exactly one fetch; a connection whose answer was cut off or broke the
 * protocol is destroyed, never reused; at most maxIdleConnections wait idle.
 */
class PooledBulkClient implements KvBulkClient {
  readonly address: string;
  readonly #config: ResolvedBulkOptions;
  readonly #idle: BulkConnection[] = [];
  readonly #all = new Set<BulkConnection>();
  #closed = false;

  constructor(address: string, config: ResolvedBulkOptions) {
    this.address = address;
    this.#config = config;
  }

  async fetchPages(request: FetchPagesRequest, options: KvCallOptions = {}): Promise<FetchedPages> {
    const { signal } = options;
    if (signal?.aborted === true) throw new CancelledError('aborted before the call', { cause: signal.reason });
    const frame = encodeRequest(request);
    const deadlineAt = Date.now() + (options.deadlineMs ?? this.#config.deadlineMs);
    const call: BulkCall = { frame, requested: request.blockHashes, deadlineAt, signal };
    const reused = this.#takeIdle();
    if (reused !== undefined) {
      try {
        return await this.#fetchOn(reused, call);
      } catch (err) {
        // A pooled connection the peer had already closed: nothing was answered, so try a fresh one.
        if (!(err instanceof UnavailableError) || reused.numAnswerBytes > 0) throw err;
      }
    }
    const fresh = await this.#connect(deadlineAt, signal);
    return this.#fetchOn(fresh, call);
  }

  close(): void {
    this.#closed = true;
    for (const connection of this.#all) connection.destroy();
    this.#idle.length = 0;
  }

  #takeIdle(): BulkConnection | undefined {
    for (let connection = this.#idle.pop(); connection !== undefined; connection = this.#idle.pop()) {
      if (connection.isOpen) return connection;
    }
    return undefined;
  }

  async #connect(deadlineAt: number, signal: AbortSignal | undefined): Promise<BulkConnection> {
    if (this.#closed) throw new UnavailableError(`KV bulk client for ${this.address} is closed`);
    const timeoutMs = Math.max(1, Math.min(this.#config.connectDeadlineMs, deadlineAt - Date.now()));
    const connection = await BulkConnection.open(this.#config.host, this.#config.port, timeoutMs, signal);
    this.#all.add(connection);
    connection.onClose(() => {
      this.#all.delete(connection);
      const at = this.#idle.indexOf(connection);
      if (at >= 0) this.#idle.splice(at, 1);
    });
    return connection;
  }

  async #fetchOn(connection: BulkConnection, call: BulkCall): Promise<FetchedPages> {
    try {
      return await connection.fetch(call, this.#config.maxFetchBytes);
    } finally {
      if (connection.isOpen && !this.#closed && this.#idle.length < this.#config.maxIdleConnections)
        this.#idle.push(connection);
      else connection.destroy();
    }
  }
}

interface BulkCall {
  readonly frame: Buffer;
  readonly requested: readonly string[];
  readonly deadlineAt: number;
  readonly signal: AbortSignal | undefined;
}

/** Where the bytes being read go, and what they are. */
type ReadPart = 'header' | 'hashes' | 'data' | 'message';

/** The answer being read on a connection. */
interface Answer {
  readonly requested: ReadonlySet<string>;
  readonly maxBytes: number;
  readonly extents: KvExtent[];
  readonly resolve: (pages: FetchedPages) => void;
  readonly reject: (err: Error) => void;
  readonly orderedHashes: readonly string[];
  totalBytes: number;
  /** The frame being read: its data length, its blocks, or the status of an ERROR frame. */
  dataBytes: number;
  blockHashes: readonly string[];
  statusCode: number;
}

/**
 * One TCP connection to a bulk server, reading answers in place.
 * Invariants: `#target.subarray(#filled)` is where the socket's next read lands (so a read never spans
 * two parts of a frame); `#answer` is set exactly while a request is outstanding; bytes arriving with no
 * request outstanding, or breaking the protocol, destroy the connection.
 */
class BulkConnection {
  readonly #socket: Socket;
  readonly #header = Buffer.allocUnsafe(FRAME_HEADER_BYTES);
  #target: Buffer;
  #filled = 0;
  #part: ReadPart = 'header';
  #answer: Answer | undefined;
  #open = true;
  numAnswerBytes = 0;

  private constructor(socket: Socket) {
    this.#socket = socket;
    this.#target = this.#header;
    socket.on('error', () => undefined); // 'close' follows and says what it means for the answer
    socket.on('close', () => {
      this.#open = false;
      this.#fail(new UnavailableError('the KV peer closed the connection mid-answer'));
    });
  }

  static open(host: string, port: number, timeoutMs: number, signal: AbortSignal | undefined): Promise<BulkConnection> {
    return new Promise((resolve, reject) => {
      // NOTE: late-bound: the socket asks for its first read buffer before the connection exists.
      const late: { connection?: BulkConnection } = {};
      const socket = connect({
        host,
        port,
        noDelay: true,
        keepAlive: true,
        keepAliveInitialDelay: KEEPALIVE_MS,
        onread: {
          buffer: () => late.connection?.nextBuffer() ?? Buffer.allocUnsafe(FRAME_HEADER_BYTES),
          callback: (numBytes, buffer) => late.connection?.onRead(numBytes, buffer) ?? false,
        },
      });
      const opened = new BulkConnection(socket);
      late.connection = opened;
      const done = (err?: Error): void => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        socket.off('connect', onConnect);
        socket.off('error', onError);
        if (err === undefined) {
          resolve(opened);
          return;
        }
        socket.destroy();
        reject(err);
      };
      const onConnect = (): void => done();
      const onError = (err: Error): void =>
        done(new ConnectFailedError(`KV bulk peer ${host}:${port} not reachable: ${err.message}`, { cause: err }));
      const onAbort = (): void =>
        done(new CancelledError('fetchPages aborted while connecting', { cause: signal?.reason }));
      const timer = setTimeout(
        () => done(new ConnectFailedError(`KV bulk peer ${host}:${port} not reachable within ${timeoutMs} ms`)),
        timeoutMs,
      );
      socket.once('connect', onConnect);
      socket.once('error', onError);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  get isOpen(): boolean {
    return this.#open && this.#answer === undefined;
  }

  onClose(listener: () => void): void {
    this.#socket.once('close', listener);
  }

  destroy(): void {
    this.#socket.destroy();
  }

  /** Sends one request and reads its answer. Only one at a time (the pool lends a connection to one fetch). */
  fetch(call: BulkCall, maxBytes: number): Promise<FetchedPages> {
    if (!this.isOpen) return Promise.reject(new UnavailableError('the KV bulk connection is closed'));
    const { signal } = call;
    return new Promise<FetchedPages>((resolve, reject) => {
      const onAbort = (): void => {
        this.#fail(new CancelledError('fetchPages aborted', { cause: signal?.reason }));
        this.#socket.destroy();
      };
      const timer = setTimeout(
        () => {
          this.#fail(new DeadlineExceededError('KV bulk fetch deadline exceeded'));
          this.#socket.destroy();
        },
        Math.max(0, call.deadlineAt - Date.now()),
      );
      const finish = (): void => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
      };
      this.numAnswerBytes = 0;
      this.#answer = {
        requested: new Set(call.requested),
        orderedHashes: call.requested,
        maxBytes,
        extents: [],
        totalBytes: 0,
        dataBytes: 0,
        blockHashes: [],
        statusCode: 0,
        resolve: (pages) => {
          finish();
          resolve(pages);
        },
        reject: (err) => {
          finish();
          reject(err);
        },
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#socket.write(call.frame);
    });
  }

  /** Where the socket reads next: the rest of the current part. */
  nextBuffer(): Buffer {
    return this.#target.subarray(this.#filled);
  }

  /** The socket read `numBytes` into `buffer` (normally the view nextBuffer gave, so nothing to copy). */
  onRead(numBytes: number, buffer: Uint8Array): boolean {
    const inPlace =
      buffer.buffer === this.#target.buffer && buffer.byteOffset === this.#target.byteOffset + this.#filled;
    if (inPlace) {
      this.#advance(numBytes);
      return true;
    }
    // The read landed in a buffer chosen before the current part (e.g. set up at connect): copy it in.
    let rest = Buffer.from(buffer.buffer, buffer.byteOffset, numBytes);
    while (rest.byteLength > 0 && this.#open) {
      const n = Math.min(rest.byteLength, this.#target.byteLength - this.#filled);
      rest.copy(this.#target, this.#filled, 0, n);
      rest = rest.subarray(n);
      this.#advance(n);
    }
    return true;
  }

  #advance(numBytes: number): void {
    const answer = this.#answer;
    if (answer === undefined) {
      this.#open = false;
      this.#socket.destroy();
      return;
    }
    this.numAnswerBytes += numBytes;
    this.#filled += numBytes;
    if (this.#filled < this.#target.byteLength) return;
    try {
      this.#partDone(answer);
    } catch (err) {
      this.#fail(err instanceof Error ? err : new DataLossError(String(err)));
      this.#socket.destroy();
    }
  }

  /** The current part is complete: act on it and choose the next one. */
  #partDone(answer: Answer): void {
    const part = this.#part;
    const filled = this.#target;
    if (part === 'header') {
      const header = parseFrameHeader(filled);
      if (header.type === FRAME_EXTENT) {
        if (answer.totalBytes + header.dataBytes > answer.maxBytes)
          throw new ResourceExhaustedError(`KV transfer exceeds ${answer.maxBytes} bytes`);
        answer.totalBytes += header.dataBytes;
        answer.dataBytes = header.dataBytes;
        this.#expect('hashes', Buffer.allocUnsafe(HASH_BYTES * header.numBlocks));
      } else if (header.type === FRAME_END) {
        if (header.numExtents !== answer.extents.length)
          throw new DataLossError(
            `KV bulk answer ended after ${answer.extents.length} of ${header.numExtents} extents`,
          );
        this.#settle();
        answer.resolve(fetchedPages(answer.orderedHashes, answer.extents, answer.totalBytes));
      } else if (header.type === FRAME_ERROR) {
        answer.statusCode = header.statusCode;
        if (header.messageBytes > 0) this.#expect('message', Buffer.allocUnsafe(header.messageBytes));
        else this.#rejectWithStatus(answer, '');
      }
    } else if (part === 'hashes') {
      const hashes = decodeHashes(filled);
      const stranger = hashes.find((hash) => !answer.requested.has(hash));
      if (stranger !== undefined) throw new DataLossError(`peer sent block ${stranger}, which was not requested`);
      answer.blockHashes = hashes;
      this.#expect('data', Buffer.allocUnsafe(answer.dataBytes));
    } else if (part === 'data') {
      answer.extents.push({ blockHashes: answer.blockHashes, data: filled });
      this.#expect('header', this.#header);
    } else {
      this.#rejectWithStatus(answer, filled.toString('utf8'));
    }
  }

  #rejectWithStatus(answer: Answer, details: string): void {
    this.#settle();
    answer.reject(fromWireStatus(answer.statusCode, details));
  }

  #expect(part: ReadPart, target: Buffer): void {
    this.#part = part;
    this.#target = target;
    this.#filled = 0;
  }

  /** The answer is complete and the stream is at a frame boundary: ready for the next request. */
  #settle(): void {
    this.#answer = undefined;
    this.#expect('header', this.#header);
  }

  #fail(err: Error): void {
    const answer = this.#answer;
    if (answer === undefined) return;
    this.#answer = undefined;
    this.#open = false;
    answer.reject(err);
  }
}

function fetchedPages(requested: readonly string[], extents: readonly KvExtent[], sizeBytes: number): FetchedPages {
  const received = new Set(extents.flatMap((extent) => extent.blockHashes));
  return { extents, missingHashes: requested.filter((hash) => !received.has(hash)), sizeBytes };
}
