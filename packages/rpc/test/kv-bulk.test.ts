import { connect, createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import {
  ConnectFailedError,
  DataLossError,
  DeadlineExceededError,
  FailedPreconditionError,
  CancelledError,
  ResourceExhaustedError,
  UnavailableError,
  connectKvPageClient,
  createKvBulkClient,
  createKvBulkServer,
  createKvPageServer,
} from '../src/index.ts';
import type {
  KvBulkClient,
  KvBulkServer,
  KvExtent,
  KvPageClient,
  KvPageServer,
  KvPageServiceHandler,
} from '../src/index.ts';
import {
  FRAME_HEADER_BYTES,
  MAX_REQUEST_HASHES,
  encodeEndFrame,
  encodeRequest,
  parseFrameHeader,
  parseRequestBody,
  parseRequestHeader,
} from '../src/kv-bulk-protocol.ts';

const KIB = 1024;
const PAGE_BYTES = 96 * KIB;
const NAMESPACE = 'ab'.repeat(32);
const hashOf = (i: number): string => i.toString(16).padStart(64, '0');

/** Page i holds PAGE_BYTES bytes counting up from i (so a shifted or swapped page shows). */
function pageOf(i: number, size = PAGE_BYTES): Buffer {
  const page = Buffer.allocUnsafe(size);
  for (let b = 0; b < size; b++) page[b] = (i * 7 + b) & 0xff;
  return page;
}

/** A fake page store holding blocks 1..numHeld, one extent per page, as the page store's handler yields them. */
function storeHandler(numHeld: number, namespace = NAMESPACE): KvPageServiceHandler {
  const pages = new Map(Array.from({ length: numHeld }, (_, i) => [hashOf(i + 1), pageOf(i + 1)]));
  return {
    fetchPages(request) {
      if (request.namespace !== namespace) throw new FailedPreconditionError('KV namespace mismatch');
      const out: KvExtent[] = [];
      for (const hash of request.blockHashes) {
        const data = pages.get(hash);
        if (data === undefined) break;
        out.push({ blockHashes: [hash], data });
      }
      return out;
    },
    pushPages: async () => ({ acceptedHashes: [] }),
  };
}

const bulkServers: KvBulkServer[] = [];
const grpcServers: KvPageServer[] = [];
const bulkClients: KvBulkClient[] = [];
const grpcClients: KvPageClient[] = [];
const rawServers: Server[] = [];
afterEach(async () => {
  for (const client of bulkClients.splice(0)) client.close();
  for (const client of grpcClients.splice(0)) client.close();
  await Promise.all(bulkServers.splice(0).map((server) => server.close(100)));
  await Promise.all(grpcServers.splice(0).map((server) => server.close(100)));
  await Promise.all(rawServers.splice(0).map((server) => new Promise((resolve) => server.close(resolve))));
});

async function startBulk(
  handler: KvPageServiceHandler,
  options: { frameBytes?: number } = {},
): Promise<{ server: KvBulkServer; address: string }> {
  const server = await createKvBulkServer({
    host: '127.0.0.1',
    port: 0,
    handler,
    logError: () => undefined,
    ...options,
  });
  bulkServers.push(server);
  return { server, address: `127.0.0.1:${server.port}` };
}

function bulkClient(address: string, options: { deadlineMs?: number; maxFetchBytes?: number } = {}): KvBulkClient {
  const client = createKvBulkClient(address, { deadlineMs: options.deadlineMs ?? 5_000, ...options });
  bulkClients.push(client);
  return client;
}

/** A raw TCP server that answers each connection with `answer`. */
async function rawServer(answer: (socket: Socket) => void): Promise<string> {
  const server = createServer(answer);
  rawServers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  return `127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}`;
}

/** Reads what the server sends on a raw socket until it has `numBytes` or the socket ends. */
function readFrom(socket: Socket, numBytes: number): Promise<Buffer> {
  return new Promise((resolve) => {
    let got = Buffer.alloc(0);
    const onData = (data: Buffer): void => {
      got = Buffer.concat([got, data]);
      if (got.byteLength >= numBytes) done();
    };
    const done = (): void => {
      socket.off('data', onData);
      resolve(got);
    };
    socket.on('data', onData);
    socket.once('end', done);
  });
}

/** Block hash → its bytes, over all extents of a fetch. */
function pagesByHash(extents: readonly KvExtent[]): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  for (const extent of extents) {
    const size = extent.data.byteLength / extent.blockHashes.length;
    extent.blockHashes.forEach((hash, i) => {
      out.set(hash, Buffer.from(extent.data.buffer, extent.data.byteOffset + i * size, size));
    });
  }
  return out;
}

describe('KV bulk data plane', () => {
  it('fetches 80 pages in frames of about 1 MiB, byte for byte what the gRPC FetchPages returns', async () => {
    const handler = storeHandler(80);
    const { address } = await startBulk(handler, { frameBytes: 1024 * KIB });
    const grpc = await createKvPageServer({ host: '127.0.0.1', port: 0, handler, logError: () => undefined });
    grpcServers.push(grpc);
    const grpcClient = await connectKvPageClient(`127.0.0.1:${grpc.port}`, { deadlineMs: 5_000 });
    grpcClients.push(grpcClient);
    const request = { namespace: NAMESPACE, blockHashes: Array.from({ length: 82 }, (_, i) => hashOf(i + 1)) };

    const bulk = await bulkClient(address).fetchPages(request);
    const viaGrpc = await grpcClient.fetchPages(request);

    expect(bulk.sizeBytes).toBe(80 * PAGE_BYTES);
    expect(bulk.missingHashes).toEqual([hashOf(81), hashOf(82)]);
    expect(bulk.extents.map((e) => e.blockHashes.length)).toEqual([11, 11, 11, 11, 11, 11, 11, 3]);
    expect(bulk.extents.flatMap((e) => e.blockHashes)).toEqual(request.blockHashes.slice(0, 80));
    expect({ size: viaGrpc.sizeBytes, missing: viaGrpc.missingHashes }).toEqual({
      size: bulk.sizeBytes,
      missing: bulk.missingHashes,
    });
    const fromGrpc = pagesByHash(viaGrpc.extents);
    for (const [hash, page] of pagesByHash(bulk.extents))
      expect(page.equals(fromGrpc.get(hash) ?? Buffer.alloc(0))).toBe(true);
    expect(pagesByHash(bulk.extents).get(hashOf(80))?.equals(pageOf(80))).toBe(true);
  });

  it('keeps an idle connection and reuses it for the next fetch', async () => {
    const { server, address } = await startBulk(storeHandler(4));
    const client = bulkClient(address);
    const request = { namespace: NAMESPACE, blockHashes: [hashOf(1), hashOf(2)] };

    for (let i = 0; i < 5; i++) expect((await client.fetchPages(request)).sizeBytes).toBe(2 * PAGE_BYTES);

    expect(server.numAccepted).toBe(1);
  });

  it('retries once on a fresh connection when the pooled one was closed before it answered', async () => {
    let numConnections = 0;
    // Answers the first request of each connection (nothing held), then drops the connection on the next.
    const address = await rawServer((socket) => {
      numConnections++;
      let numRequests = 0;
      socket.on('data', () => {
        numRequests++;
        if (numRequests === 1) socket.write(encodeEndFrame(0));
        else socket.destroy();
      });
    });
    const client = bulkClient(address);
    const request = { namespace: NAMESPACE, blockHashes: [hashOf(1)] };

    await client.fetchPages(request);
    const second = await client.fetchPages(request);

    expect(second).toEqual({ extents: [], missingHashes: [hashOf(1)], sizeBytes: 0 });
    expect(numConnections).toBe(2);
  });

  it('opens a second connection for a concurrent fetch, one request per connection', async () => {
    const { server, address } = await startBulk(storeHandler(40));
    const client = bulkClient(address);
    const request = { namespace: NAMESPACE, blockHashes: Array.from({ length: 40 }, (_, i) => hashOf(i + 1)) };

    const [a, b] = await Promise.all([client.fetchPages(request), client.fetchPages(request)]);

    expect([a.sizeBytes, b.sizeBytes]).toEqual([40 * PAGE_BYTES, 40 * PAGE_BYTES]);
    expect(server.numAccepted).toBe(2);
  });

  it('refuses another namespace with FAILED_PRECONDITION and the connection keeps serving', async () => {
    const { server, address } = await startBulk(storeHandler(4));
    const client = bulkClient(address);

    const refused = client.fetchPages({ namespace: 'cd'.repeat(32), blockHashes: [hashOf(1)] });

    await expect(refused).rejects.toBeInstanceOf(FailedPreconditionError);
    await expect(refused).rejects.toMatchObject({ code: 'FAILED_PRECONDITION', message: 'KV namespace mismatch' });
    expect((await client.fetchPages({ namespace: NAMESPACE, blockHashes: [hashOf(1)] })).sizeBytes).toBe(PAGE_BYTES);
    expect(server.numAccepted).toBe(1);
  });

  it('rejects a request it would not send with INVALID_ARGUMENT before connecting', async () => {
    const { server, address } = await startBulk(storeHandler(4));
    const client = bulkClient(address);

    await expect(client.fetchPages({ namespace: NAMESPACE, blockHashes: ['h1'] })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
    expect(server.numAccepted).toBe(0);
  });

  it('answers an invalid body with an error frame and serves the next request on the same connection', async () => {
    const { address } = await startBulk(storeHandler(4));
    const [host, port] = address.split(':');
    const socket = connect(Number(port), host);
    const body = Buffer.from(JSON.stringify({ namespace: NAMESPACE, blockHashes: ['not-a-hash'] }));
    const header = Buffer.from(encodeRequest({ namespace: NAMESPACE, blockHashes: [] }).subarray(0, 12));
    header.writeUInt32LE(body.byteLength, 8);

    socket.write(Buffer.concat([header, body]));
    const error = await readFrom(socket, FRAME_HEADER_BYTES);
    const parsed = parseFrameHeader(error.subarray(0, FRAME_HEADER_BYTES));
    socket.write(encodeRequest({ namespace: NAMESPACE, blockHashes: [hashOf(1)] }));
    const answer = await readFrom(socket, FRAME_HEADER_BYTES + 32 + PAGE_BYTES + FRAME_HEADER_BYTES);
    socket.destroy();

    expect(parsed).toMatchObject({ type: 3, statusCode: 3 }); // ERROR, INVALID_ARGUMENT
    expect(parseFrameHeader(answer.subarray(0, FRAME_HEADER_BYTES))).toEqual({
      type: 1,
      numBlocks: 1,
      dataBytes: PAGE_BYTES,
    });
    expect(parseFrameHeader(answer.subarray(-FRAME_HEADER_BYTES))).toEqual({ type: 2, numExtents: 1 });
  });

  it('answers a malformed header with an error frame, hangs up, and keeps serving other clients', async () => {
    const { address } = await startBulk(storeHandler(4));
    const [host, port] = address.split(':');
    const socket = connect(Number(port), host);

    socket.write(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
    const reply = await readFrom(socket, Number.POSITIVE_INFINITY); // resolves when the server hangs up

    expect(parseFrameHeader(reply.subarray(0, FRAME_HEADER_BYTES))).toMatchObject({ type: 3, statusCode: 3 });
    expect(reply.subarray(FRAME_HEADER_BYTES).toString()).toBe('not a KV bulk request');
    const fetched = await bulkClient(address).fetchPages({ namespace: NAMESPACE, blockHashes: [hashOf(2)] });
    expect(fetched.sizeBytes).toBe(PAGE_BYTES);
  });

  it('stops at maxFetchBytes with RESOURCE_EXHAUSTED', async () => {
    const { address } = await startBulk(storeHandler(20), { frameBytes: 4 * PAGE_BYTES });
    const client = bulkClient(address, { maxFetchBytes: 10 * PAGE_BYTES });

    const fetch = client.fetchPages({
      namespace: NAMESPACE,
      blockHashes: Array.from({ length: 20 }, (_, i) => hashOf(i + 1)),
    });

    await expect(fetch).rejects.toBeInstanceOf(ResourceExhaustedError);
  });

  it('gives up at the deadline when the peer does not answer', async () => {
    const { address } = await startBulk({
      // eslint-disable-next-line require-yield
      async *fetchPages() {
        await new Promise(() => undefined);
      },
      pushPages: async () => ({ acceptedHashes: [] }),
    });
    const started = performance.now();

    const fetch = bulkClient(address, { deadlineMs: 200 }).fetchPages({
      namespace: NAMESPACE,
      blockHashes: [hashOf(1)],
    });

    await expect(fetch).rejects.toBeInstanceOf(DeadlineExceededError);
    expect(performance.now() - started).toBeLessThan(1_000);
  });

  it('fails with UNAVAILABLE at once when the peer drops the connection mid-extent', async () => {
    const address = await rawServer((socket) => {
      socket.once('data', () => {
        const header = Buffer.alloc(FRAME_HEADER_BYTES + 32);
        header.writeUInt8(1, 0);
        header.writeUInt32LE(1, 4);
        header.writeUInt32LE(4 * 1024 * KIB, 8);
        header.write(hashOf(1), FRAME_HEADER_BYTES, 'hex');
        socket.write(Buffer.concat([header, Buffer.alloc(1024 * KIB)]), () => socket.destroy());
      });
    });
    const started = performance.now();

    const fetch = bulkClient(address, { deadlineMs: 10_000 }).fetchPages({
      namespace: NAMESPACE,
      blockHashes: [hashOf(1)],
    });

    await expect(fetch).rejects.toBeInstanceOf(UnavailableError);
    await expect(fetch).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    expect(performance.now() - started).toBeLessThan(1_000);
  });

  it('fails with UNAVAILABLE when the bulk server is shut down mid-answer', async () => {
    const { server, address } = await startBulk({
      async *fetchPages() {
        yield { blockHashes: [hashOf(1)], data: pageOf(1, 4 * 1024 * KIB) };
        await new Promise(() => undefined);
      },
      pushPages: async () => ({ acceptedHashes: [] }),
    });
    const fetch = bulkClient(address, { deadlineMs: 10_000 }).fetchPages({
      namespace: NAMESPACE,
      blockHashes: [hashOf(1), hashOf(2)],
    });
    await new Promise((resolve) => setTimeout(resolve, 100));
    const started = performance.now();

    await server.close(0);

    await expect(fetch).rejects.toBeInstanceOf(UnavailableError);
    expect(performance.now() - started).toBeLessThan(1_000);
  });

  it('rejects a block it did not ask for with DATA_LOSS', async () => {
    const { address } = await startBulk({
      fetchPages: () => [{ blockHashes: [hashOf(9)], data: pageOf(9) }],
      pushPages: async () => ({ acceptedHashes: [] }),
    });

    const fetch = bulkClient(address).fetchPages({ namespace: NAMESPACE, blockHashes: [hashOf(1)] });

    await expect(fetch).rejects.toBeInstanceOf(DataLossError);
  });

  it('says it could not connect with ConnectFailedError, an UNAVAILABLE', async () => {
    const address = await rawServer(() => undefined);
    await new Promise((resolve) => rawServers.pop()?.close(resolve));

    const fetch = bulkClient(address).fetchPages({ namespace: NAMESPACE, blockHashes: [hashOf(1)] });

    await expect(fetch).rejects.toBeInstanceOf(ConnectFailedError);
    await expect(fetch).rejects.toMatchObject({ code: 'UNAVAILABLE' });
  });

  it('cancels a fetch when its signal aborts', async () => {
    const { address } = await startBulk({
      // eslint-disable-next-line require-yield
      async *fetchPages() {
        await new Promise(() => undefined);
      },
      pushPages: async () => ({ acceptedHashes: [] }),
    });
    const abort = new AbortController();

    const fetch = bulkClient(address).fetchPages(
      { namespace: NAMESPACE, blockHashes: [hashOf(1)] },
      { signal: abort.signal },
    );
    setTimeout(() => abort.abort(), 50);

    await expect(fetch).rejects.toBeInstanceOf(CancelledError);
  });
});

describe('KV bulk request validation', () => {
  const body = (value: unknown) => Buffer.from(JSON.stringify(value));

  it('takes exactly a 64-hex namespace and at most MAX_REQUEST_HASHES 64-hex block hashes', () => {
    const request = { namespace: NAMESPACE, blockHashes: [hashOf(1), hashOf(2)] };
    const frame = encodeRequest(request);

    expect(parseRequestHeader(frame.subarray(0, 12))).toBe(frame.byteLength - 12);
    expect(parseRequestBody(frame.subarray(12))).toEqual(request);
  });

  it.each([
    ['an extra key', { namespace: NAMESPACE, blockHashes: [], salt: 'x' }],
    ['a missing key', { namespace: NAMESPACE }],
    ['an upper-case hash', { namespace: NAMESPACE, blockHashes: [hashOf(10).toUpperCase()] }],
    ['a short namespace', { namespace: 'ns', blockHashes: [] }],
    ['a number for a hash', { namespace: NAMESPACE, blockHashes: [7] }],
    ['an array body', [NAMESPACE, []]],
    [
      'too many hashes',
      { namespace: NAMESPACE, blockHashes: Array.from({ length: MAX_REQUEST_HASHES + 1 }, () => hashOf(1)) },
    ],
  ])('refuses %s with INVALID_ARGUMENT', (_what, value) => {
    expect(() => parseRequestBody(body(value))).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });

  it('refuses a header of another magic, version, or an oversized body', () => {
    const header = encodeRequest({ namespace: NAMESPACE, blockHashes: [] }).subarray(0, 12);
    const variant = (write: (b: Buffer) => void) => {
      const copy = Buffer.from(header);
      write(copy);
      return () => parseRequestHeader(copy);
    };

    expect(variant((b) => b.write('HTTP', 0, 'latin1'))).toThrow('not a KV bulk request');
    expect(variant((b) => b.writeUInt8(2, 4))).toThrow('KV bulk protocol version 2 is not supported');
    expect(variant((b) => b.writeUInt32LE(64 * 1024 * 1024, 8))).toThrow(/request body of 67108864 bytes/);
  });
});
