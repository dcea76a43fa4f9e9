/**
 * Part (a) of `bench:kv`: KV page transfer rate between two processes (this one and a page store) over
 * the KV bulk data plane (plain TCP) and over KvPageService (gRPC), beside raw loopback TCP between two
 * processes, measured in the same interleaved rounds.
 *
 * Fair by construction: each of the three is another process → this process, the same number of bytes,
 * timed from the start of a fresh connection (raw TCP and the bulk plane open one per round; the gRPC
 * client too) until the last byte is in this process.
 */
import { connect } from 'node:net';
import { encodePages, type BlockHash, type KvPage } from '@switchyard/kv-cache';
import { connectKvPageClient, createKvBulkClient, type FetchPagesRequest } from '@switchyard/rpc';
import { decodeExtentPage, pagesToExtents, splitExtent } from '@switchyard/kv-transfer';
import { startKvStore, startProcess } from '@switchyard/launcher';

export interface TransferResult {
  readonly bytes: number;
  readonly pageBytes: number;
  readonly rounds: number;
  /** Median over rounds, MB/s (10^6 bytes). Raw TCP read as 'data' events (the reference). */
  readonly rawTcpMBps: number;
  /** Raw TCP read in place into one buffer, as the bulk client reads (for comparison). */
  readonly rawTcpInPlaceMBps: number;
  /** Over the KV bulk data plane (what engines use by default). */
  readonly fetchMBps: number;
  /** Over KvPageService FetchPages (gRPC, the fallback). */
  readonly grpcFetchMBps: number;
  /** Bulk data plane fetch, then the CRC-32 and hash check of every page. */
  readonly fetchAndVerifyMBps: number;
  readonly fetchOverRawTcp: number;
  readonly grpcFetchOverRawTcp: number;
  readonly fetchOverRawTcpInPlace: number;
  readonly pushMBps: number;
  /** Every round's figures, MB/s, in order. */
  readonly perRound: {
    readonly rawTcp: number[];
    readonly rawTcpInPlace: number[];
    readonly fetch: number[];
    readonly grpcFetch: number[];
  };
}

const median = (xs: readonly number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;

/** Synthetic pages of `pageFloats` floats and 16 tokens (the store checks CRC and shape, not the model). */
function syntheticPages(count: number, pageFloats: number): KvPage[] {
  return Array.from({ length: count }, (_, i) => ({
    hash: (i + 1).toString(16).padStart(64, '0') as BlockHash,
    tokens: Uint32Array.from({ length: 16 }, (_, t) => (i * 16 + t) % 256),
    data: Float32Array.from({ length: pageFloats }, (_, f) => ((i * 31 + f) % 997) / 997),
  }));
}

/**
 * Raw loopback TCP from a source process, twice on fresh connections: read as Node's 'data' events
 * (64 KiB reads into fresh buffers: the reference of issue 10), and read in place into one preallocated
 * buffer (`onread`, as the bulk client reads; the ceiling of a Node reader). MB/s of each.
 */
async function rawTcpMBps(bytes: number, into: Buffer): Promise<{ events: number; inPlace: number }> {
  const source = await startProcess('bench/kv/tcp-source.ts', ['--bytes', String(bytes)], 'listening on', 30_000, {
    name: 'tcp source',
  });
  try {
    const port = Number(/listening on (\d+)/.exec(source.output())?.[1]);
    const events = await timedMBps(bytes, () => receiveAsEvents(port));
    const inPlace = await timedMBps(bytes, () => receiveInPlace(port, into));
    return { events, inPlace };
  } finally {
    await source.stop(2_000);
  }
}

async function timedMBps(bytes: number, receive: () => Promise<number>): Promise<number> {
  const started = performance.now();
  const received = await receive();
  const seconds = (performance.now() - started) / 1000;
  if (received !== bytes) throw new Error(`raw TCP: received ${received} of ${bytes} bytes`);
  return bytes / seconds / 1e6;
}

function receiveAsEvents(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    let n = 0;
    const socket = connect(port, '127.0.0.1');
    socket.on('data', (data: Buffer) => (n += data.length));
    socket.on('end', () => resolve(n));
    socket.on('error', reject);
  });
}

function receiveInPlace(port: number, into: Buffer): Promise<number> {
  const spare = Buffer.allocUnsafe(64);
  return new Promise((resolve, reject) => {
    let n = 0;
    const socket = connect({
      port,
      host: '127.0.0.1',
      onread: {
        buffer: () => (n < into.byteLength ? into.subarray(n) : spare),
        callback: (numBytes) => {
          n += numBytes;
          return true;
        },
      },
    });
    socket.on('end', () => resolve(n));
    socket.on('error', reject);
  });
}

/** One fetch over the bulk data plane on a fresh connection, timed from connecting; optionally verifies every page. */
async function bulkFetchMBps(
  dataAddress: string,
  request: FetchPagesRequest,
  bytes: number,
  verify: boolean,
): Promise<number> {
  const client = createKvBulkClient(dataAddress, { deadlineMs: 120_000 });
  try {
    const started = performance.now();
    const fetched = await client.fetchPages(request);
    if (verify) {
      for (const extent of fetched.extents) {
        splitExtent(extent).forEach((encoded, i) => decodeExtentPage(encoded, extent.blockHashes[i] ?? ''));
      }
    }
    const seconds = (performance.now() - started) / 1000;
    if (fetched.sizeBytes !== bytes) throw new Error(`bulk fetch: ${fetched.sizeBytes} of ${bytes} bytes`);
    return bytes / seconds / 1e6;
  } finally {
    client.close();
  }
}

/** One gRPC FetchPages on a fresh channel, timed from connecting. */
async function grpcFetchMBps(address: string, request: FetchPagesRequest, bytes: number): Promise<number> {
  const started = performance.now();
  const client = await connectKvPageClient(address, { deadlineMs: 120_000 });
  try {
    const fetched = await client.fetchPages(request);
    const seconds = (performance.now() - started) / 1000;
    if (fetched.sizeBytes !== bytes) throw new Error(`gRPC fetch: ${fetched.sizeBytes} of ${bytes} bytes`);
    return bytes / seconds / 1e6;
  } finally {
    client.close();
  }
}

export async function measureTransfer(
  natsUrl: string,
  options: { sizeMiB: number; rounds: number; pageFloats: number },
  log: (line: string) => void,
): Promise<TransferResult> {
  const pageBytes = encodePages(syntheticPages(1, options.pageFloats)).byteLength;
  const count = Math.max(1, Math.floor((options.sizeMiB * 2 ** 20) / pageBytes));
  const pages = syntheticPages(count, options.pageFloats);
  const bytes = count * pageBytes;
  const store = await startKvStore(natsUrl, [
    '--name',
    'bench-transfer-store',
    '--capacity-bytes',
    `${2 * options.sizeMiB + 64}MiB`,
  ]);
  const client = await connectKvPageClient(store.address, { deadlineMs: 120_000 });
  const namespace = 'be'.repeat(32);
  try {
    const extents = pagesToExtents(pages, 4 * 2 ** 20);
    const pushStarted = performance.now();
    const pushed = await client.pushPages({ namespace, extents });
    const pushMBps = bytes / ((performance.now() - pushStarted) / 1000) / 1e6;
    if (pushed.acceptedHashes.length !== count)
      throw new Error(`the store kept ${pushed.acceptedHashes.length} of ${count} pages`);
    const request: FetchPagesRequest = { namespace, blockHashes: pages.map((p) => p.hash) };
    const tcp: number[] = [];
    const tcpInPlace: number[] = [];
    const fetch: number[] = [];
    const grpcFetch: number[] = [];
    const verify: number[] = [];
    // NOTE: interleaved rounds, so a noisy neighbour slows all three alike.
    for (let round = 0; round < options.rounds; round++) {
      // NOTE: fresh memory each round, as each fetch reads into fresh buffers (a reused one is already paged in).
      const raw = await rawTcpMBps(bytes, Buffer.allocUnsafe(bytes));
      tcp.push(raw.events);
      tcpInPlace.push(raw.inPlace);
      fetch.push(await bulkFetchMBps(store.dataAddress, request, bytes, false));
      grpcFetch.push(await grpcFetchMBps(store.address, request, bytes));
      verify.push(await bulkFetchMBps(store.dataAddress, request, bytes, true));
      log(
        `transfer round ${round + 1}: raw TCP ${tcp.at(-1)?.toFixed(0)} MB/s (in place ${tcpInPlace.at(-1)?.toFixed(0)}), bulk fetch ${fetch.at(-1)?.toFixed(0)} MB/s, ` +
          `gRPC fetch ${grpcFetch.at(-1)?.toFixed(0)} MB/s`,
      );
    }
    const rawTcp = median(tcp);
    const fetchMBps = median(fetch);
    const grpcMBps = median(grpcFetch);
    return {
      bytes,
      pageBytes,
      rounds: options.rounds,
      rawTcpMBps: rawTcp,
      rawTcpInPlaceMBps: median(tcpInPlace),
      fetchMBps,
      grpcFetchMBps: grpcMBps,
      fetchAndVerifyMBps: median(verify),
      fetchOverRawTcp: fetchMBps / rawTcp,
      grpcFetchOverRawTcp: grpcMBps / rawTcp,
      fetchOverRawTcpInPlace: fetchMBps / median(tcpInPlace),
      pushMBps,
      perRound: { rawTcp: tcp, rawTcpInPlace: tcpInPlace, fetch, grpcFetch },
    };
  } finally {
    client.close();
    await store.stop(5_000);
  }
}
