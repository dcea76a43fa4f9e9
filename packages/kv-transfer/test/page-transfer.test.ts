import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BlockPool, hashBlocks, kvNamespace, type BlockHash, type KvPage } from '@switchyard/kv-cache';
import { KvPageAccess, PageStore, PrefixHasher } from '@switchyard/engine';
import {
  createKvBulkServer,
  createKvPageServer,
  type KvBulkServer,
  type KvPageServer,
  type KvPageServiceHandler,
} from '@switchyard/rpc';
import {
  KvClients,
  LruPageStore,
  PageFetcher,
  PageOffloader,
  RateEstimator,
  enginePageHandler,
  pagesToExtents,
  storePageHandler,
  type PageSource,
  type StoreEvent,
} from '../src/index.ts';

const BLOCK = 4;
const LAYERS = 2;
const WIDTH = 8;
const hasherConfig = { modelId: 'toy', weightsDigestHex: 'ab'.repeat(32), kvDtype: 'f32', blockSize: BLOCK };
const namespace = new PrefixHasher(hasherConfig).namespaceHex();

/** An engine's KV side without a model: a pool and pages, filled with pages derived from the tokens. */
function node(numBlocks = 64) {
  const pool = new BlockPool({ numBlocks, blockSize: BLOCK });
  const store = new PageStore(LAYERS, BLOCK, WIDTH);
  const access = new KvPageAccess(pool, store);
  return { pool, store, access, hasher: new PrefixHasher(hasherConfig) };
}

/** The page a real engine would hold for block b of `tokens`: any deterministic function of the prefix. */
function pagesOf(tokens: readonly number[], hasher: PrefixHasher): KvPage[] {
  const hashes = hasher.hashTokens(tokens);
  return hashes.map((hash, b) => ({
    hash,
    tokens: Uint32Array.from(tokens.slice(b * BLOCK, (b + 1) * BLOCK)),
    data: Float32Array.from({ length: LAYERS * 2 * BLOCK * WIDTH }, (_, i) => (tokens[b * BLOCK] ?? 0) + b + i / 1000),
  }));
}

const prompt = Array.from({ length: 41 }, (_, i) => (i * 7) % 50); // 10 full blocks usable
const servers: KvPageServer[] = [];
const clients = new KvClients(5_000);

async function serve(handler: KvPageServiceHandler): Promise<string> {
  const server = await createKvPageServer({ host: '127.0.0.1', port: 0, handler, logError: () => {} });
  servers.push(server);
  return `127.0.0.1:${server.port}`;
}

const bulkServers: KvBulkServer[] = [];

/** The handler on KvPageService and on the KV bulk data plane, as engines and the page store serve it. */
async function serveBoth(handler: KvPageServiceHandler): Promise<{ address: string; dataAddress: string }> {
  const address = await serve(handler);
  const bulk = await createKvBulkServer({ host: '127.0.0.1', port: 0, handler, logError: () => {} });
  bulkServers.push(bulk);
  return { address, dataAddress: `127.0.0.1:${bulk.port}` };
}

afterAll(async () => {
  clients.close();
  await Promise.all(servers.map((s) => s.close(0)));
  await Promise.all(bulkServers.map((s) => s.close(0)));
});

describe('LRU page store', () => {
  it('evicts the least recently used pages by bytes and reports stored and removed blocks', () => {
    const events: StoreEvent[] = [];
    const store = new LruPageStore({ capacityBytes: 30, onEvent: (e) => events.push(e) });
    const h = (n: number) => n.toString(16).padStart(64, '0') as BlockHash;
    expect(store.put('ns', h(1), new Uint8Array(10))).toBe(true);
    expect(store.put('ns', h(2), new Uint8Array(10))).toBe(true);
    expect(store.put('ns', h(3), new Uint8Array(10))).toBe(true);
    expect(store.getChain('ns', [h(1)]).map((p) => p.hash)).toEqual([h(1)]); // 1 is now the most recent
    expect(store.put('ns', h(4), new Uint8Array(10))).toBe(true);
    expect(store.hashesOf('ns')).toEqual([h(3), h(1), h(4)]);
    expect(store.numBytes).toBe(30);
    expect(store.numEvicted).toBe(1);
    expect(events.at(-2)).toEqual({ type: 'removed', namespace: 'ns', blockHash: h(2) });
    expect(store.put('ns', h(5), new Uint8Array(31))).toBe(false);
    expect(store.getChain('other', [h(1)])).toEqual([]);
    expect(store.getChain('ns', [h(3), h(2), h(1)]).map((p) => p.hash)).toEqual([h(3)]);
  });
});

describe('peer page fetch over KvPageService (loopback gRPC)', () => {
  let peer: ReturnType<typeof node>;
  let peerAddress: string;

  beforeAll(async () => {
    peer = node();
    expect(peer.access.importPages(pagesOf(prompt, peer.hasher)).numImported).toBe(10);
    peerAddress = await serve(enginePageHandler(peer.access, namespace, undefined, 1024));
  });

  const fetcherFor = (local: ReturnType<typeof node>, sources: PageSource[], mode: 'auto' | 'always' = 'always') =>
    new PageFetcher({
      access: local.access,
      hasher: local.hasher,
      namespace,
      sources: () => sources,
      clients,
      mode,
      deadlineMs: 5_000,
    });

  it('fetches the blocks a peer holds, verifies them and caches them here', async () => {
    const local = node();
    const result = await fetcherFor(local, [
      { id: 'peer', address: peerAddress, kind: 'engine', numBlocks: 10 },
    ]).prefetch(prompt);
    expect(result).toMatchObject({ outcome: 'fetched', numPromptBlocks: 10, numLocalBlocks: 0, numFetchedBlocks: 10 });
    expect(result.bytes).toBe(10 * (56 + 4 * (BLOCK + LAYERS * 2 * BLOCK * WIDTH)));
    const hashes = local.hasher.hashTokens(prompt);
    expect(local.access.numLeadingCached(hashes)).toBe(10);
    expect(local.access.exportPages(hashes)).toEqual(peer.access.exportPages(hashes));
  });

  it('fetches only what it lacks, and nothing when it holds as much as anyone', async () => {
    const local = node();
    local.access.importPages(pagesOf(prompt, local.hasher).slice(0, 4));
    const source = { id: 'peer', address: peerAddress, kind: 'engine' as const, numBlocks: 10 };
    expect(await fetcherFor(local, [source]).prefetch(prompt)).toMatchObject({
      outcome: 'fetched',
      numLocalBlocks: 4,
      numFetchedBlocks: 6,
    });
    expect(await fetcherFor(local, [source]).prefetch(prompt)).toMatchObject({ outcome: 'local', numLocalBlocks: 10 });
  });

  it('recomputes when the estimated transfer is slower than the prefill (auto mode)', async () => {
    const local = node();
    const fetcher = fetcherFor(local, [{ id: 'peer', address: peerAddress, kind: 'engine', numBlocks: 10 }], 'auto');
    fetcher.bandwidth.observe(1, 1_000); // 1 byte per second
    const result = await fetcher.prefetch(prompt);
    expect(result.outcome).toBe('recompute');
    expect(result.estimatedFetchMs).toBeGreaterThan(result.estimatedRecomputeMs ?? Infinity);
    expect(local.access.numLeadingCached(local.hasher.hashTokens(prompt))).toBe(0);
  });

  it('fetches only past the break-even length, where the per-block saving pays back a call’s fixed cost', async () => {
    const pageWireBytes = 56 + 4 * (BLOCK + LAYERS * 2 * BLOCK * WIDTH);
    // The same cost model for both engines: 1 ms per block on the wire, 4 ms per block (4 tokens) of prefill.
    const modelledFetcher = (engine: ReturnType<typeof node>) =>
      new PageFetcher({
        access: engine.access,
        hasher: engine.hasher,
        namespace,
        sources: () => [{ id: 'peer', address: peerAddress, kind: 'engine', numBlocks: 10 }],
        clients,
        mode: 'auto',
        deadlineMs: 5_000,
        overheadMs: 10,
        bandwidth: new RateEstimator(pageWireBytes),
        prefillRate: new RateEstimator(1),
      });
    const local = node();
    const fetcher = modelledFetcher(local);
    expect(fetcher.breakEvenBlocks()).toBe(4); // 10 ms ÷ 3 ms saved per block, rounded up past equality
    local.access.importPages(pagesOf(prompt, local.hasher).slice(0, 7));
    expect(await fetcher.prefetch(prompt)).toMatchObject({
      outcome: 'recompute',
      numLocalBlocks: 7,
      estimatedFetchMs: 13,
      estimatedRecomputeMs: 12,
    });
    const wide = modelledFetcher(node());
    expect(await wide.prefetch(prompt)).toMatchObject({
      outcome: 'fetched',
      estimatedFetchMs: 20,
      estimatedRecomputeMs: 40,
    });
  });

  it('keeps the verified pages before a corrupted one and says why it stopped', async () => {
    // A hostile peer: serves the real pages with one bit flipped in the K/V data of the fourth page.
    const honest = enginePageHandler(peer.access, namespace, undefined, 1 << 30);
    const address = await serve({
      ...honest,
      fetchPages: (request, context) => {
        const extents = [
          ...(honest.fetchPages(request, context) as Iterable<{ blockHashes: readonly string[]; data: Uint8Array }>),
        ];
        const extent = extents[0];
        if (extent) {
          const pageBytes = extent.data.byteLength / extent.blockHashes.length;
          const data = extent.data.slice();
          data[3 * pageBytes + 100] = (data[3 * pageBytes + 100] ?? 0) ^ 1;
          return [{ blockHashes: extent.blockHashes, data }];
        }
        return extents;
      },
    });
    const local = node();
    const result = await fetcherFor(local, [{ id: 'bad', address, kind: 'store', numBlocks: 10 }]).prefetch(prompt);
    expect(result).toMatchObject({ outcome: 'partial', numFetchedBlocks: 3, reason: 'checksum' });
    expect(local.access.numLeadingCached(local.hasher.hashTokens(prompt))).toBe(3);
  });

  it('refuses pages whose tokens are not the prompt’s, even with a valid checksum', async () => {
    const other = node();
    const wrong = pagesOf(prompt, other.hasher).map((p) => ({ ...p, tokens: p.tokens.map((t) => t + 1) }));
    const address = await serve({
      fetchPages: () => pagesToExtents(wrong, 1024),
      pushPages: () => Promise.resolve({ acceptedHashes: [] }),
    });
    const local = node();
    const result = await fetcherFor(local, [{ id: 'liar', address, kind: 'engine', numBlocks: 10 }]).prefetch(prompt);
    expect(result).toMatchObject({ outcome: 'failed', numFetchedBlocks: 0, reason: 'token-mismatch' });
  });

  it('is refused by a peer of another KV namespace (another weights digest), and falls back', async () => {
    const foreign = new PrefixHasher({ ...hasherConfig, weightsDigestHex: 'cd'.repeat(32) }).namespaceHex();
    const address = await serve(enginePageHandler(peer.access, foreign));
    const local = node();
    const result = await fetcherFor(local, [{ id: 'foreign', address, kind: 'engine', numBlocks: 10 }]).prefetch(
      prompt,
    );
    expect(result).toMatchObject({ outcome: 'failed', reason: 'refused', numFetchedBlocks: 0 });
  });

  it('tries the next holder when the best one is gone', async () => {
    const local = node();
    const result = await fetcherFor(local, [
      { id: 'dead', address: '127.0.0.1:1', kind: 'engine', numBlocks: 10 },
      { id: 'peer', address: peerAddress, kind: 'engine', numBlocks: 8 },
    ]).prefetch(prompt);
    expect(result).toMatchObject({ outcome: 'fetched', sourceId: 'peer', numFetchedBlocks: 8 });
  });
});

describe('page store service', () => {
  it('keeps pushed pages, refuses a corrupted one, and serves them back to a fetcher', async () => {
    const store = new LruPageStore({ capacityBytes: 1 << 20 });
    const address = await serve(storePageHandler(store));
    const source = node();
    const pages = pagesOf(prompt, source.hasher);
    const client = await clients.get(address);
    const extents = pagesToExtents(pages, 1 << 30);
    const extent = extents[0];
    if (!extent) throw new Error('no extent');
    const data = extent.data.slice();
    const pageBytes = data.byteLength / pages.length;
    data[9 * pageBytes + 80] = (data[9 * pageBytes + 80] ?? 0) ^ 4; // the last page
    const pushed = await client.pushPages({ namespace, extents: [{ blockHashes: extent.blockHashes, data }] });
    expect(pushed.acceptedHashes).toEqual(pages.slice(0, 9).map((p) => p.hash));
    expect(store.numPages).toBe(9);
    const local = node();
    const result = await new PageFetcher({
      access: local.access,
      hasher: local.hasher,
      namespace,
      sources: () => [{ id: 'store', address, kind: 'store', numBlocks: 9 }],
      clients,
      mode: 'always',
      deadlineMs: 5_000,
    }).prefetch(prompt);
    expect(result).toMatchObject({ outcome: 'fetched', sourceKind: 'store', numFetchedBlocks: 9 });
  });

  it('follows the prompt across holders: a peer’s head, then the store’s tail', async () => {
    const head = node();
    const pages = pagesOf(prompt, head.hasher);
    head.access.importPages(pages.slice(0, 4));
    const headAddress = await serve(enginePageHandler(head.access, namespace));
    const store = new LruPageStore({ capacityBytes: 1 << 20 });
    const storeAddress = await serve(storePageHandler(store));
    const client = await clients.get(storeAddress);
    await client.pushPages({ namespace, extents: pagesToExtents(pages.slice(4), 1 << 20) });
    const runs = (from: number): PageSource[] => [
      ...(from < 4 ? [{ id: 'head', address: headAddress, kind: 'engine' as const, numBlocks: 4 }] : []),
      ...(from >= 4 ? [{ id: 'store', address: storeAddress, kind: 'store' as const, numBlocks: 10 }] : []),
    ];
    const local = node();
    const result = await new PageFetcher({
      access: local.access,
      hasher: local.hasher,
      namespace,
      sources: (_hashes, from) => runs(from),
      clients,
      mode: 'always',
      deadlineMs: 5_000,
    }).prefetch(prompt);
    expect(result).toMatchObject({ outcome: 'fetched', numFetchedBlocks: 10, sourceId: 'head' });
    expect(local.access.exportPages(local.hasher.hashTokens(prompt))).toEqual(pages);
  });

  it('receives evicted pages offloaded write-behind by an engine', async () => {
    const store = new LruPageStore({ capacityBytes: 1 << 20 });
    const address = await serve(storePageHandler(store));
    const offloader = new PageOffloader({
      namespace,
      target: () => clients.get(address),
      maxQueuedBytes: 1 << 20,
      minBatchBytes: 1 << 20,
      flushIntervalMs: 20,
      deadlineMs: 5_000,
    });
    const pages = pagesOf(prompt, node().hasher);
    for (const page of pages) offloader.offer(page);
    const deadline = Date.now() + 5_000;
    while (offloader.counters.numAccepted < pages.length && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 20));
    await offloader.stop();
    expect(offloader.counters).toMatchObject({ numOffered: 10, numPushed: 10, numAccepted: 10, numDropped: 0 });
    expect(store.hashesOf(namespace)).toEqual(pages.map((p) => p.hash));
  });

  it('drops the oldest queued pages past its byte bound instead of growing', async () => {
    const offloader = new PageOffloader({
      namespace,
      target: () => undefined,
      maxQueuedBytes: 3 * LAYERS * 2 * BLOCK * WIDTH * 4,
      minBatchBytes: 1 << 30,
      flushIntervalMs: 60_000,
      deadlineMs: 1_000,
    });
    for (const page of pagesOf(prompt, node().hasher)) offloader.offer(page);
    expect(offloader.counters.numDropped).toBe(7);
    expect(offloader.numQueuedBytes).toBe(3 * LAYERS * 2 * BLOCK * WIDTH * 4);
    await offloader.stop();
  });
});

// kvNamespace and hashBlocks are the spec the hasher follows; pin that the toy namespace is the hasher's.
it('uses the KV hashing spec for the toy namespace', () => {
  const ns = kvNamespace({ ...hasherConfig, salt: '' });
  expect(Buffer.from(ns).toString('hex')).toBe(namespace);
  expect(hashBlocks(ns, prompt, BLOCK, 0, undefined)).toEqual(new PrefixHasher(hasherConfig).hashTokens(prompt));
});

describe('peer page fetch over the KV bulk data plane', () => {
  const fetcherOver = (kvClients: KvClients, local: ReturnType<typeof node>, sources: (from: number) => PageSource[]) =>
    new PageFetcher({
      access: local.access,
      hasher: local.hasher,
      namespace,
      sources: (_hashes, from) => sources(from),
      clients: kvClients,
      mode: 'always',
      deadlineMs: 5_000,
    });

  it('fetches a peer’s head and the store’s tail over TCP, verified, the same pages as gRPC would bring', async () => {
    const head = node();
    const pages = pagesOf(prompt, head.hasher);
    head.access.importPages(pages.slice(0, 4));
    const headPeer = await serveBoth(enginePageHandler(head.access, namespace));
    const store = new LruPageStore({ capacityBytes: 1 << 20 });
    const storePeer = await serveBoth(storePageHandler(store));
    await (
      await clients.get(storePeer.address)
    ).pushPages({ namespace, extents: pagesToExtents(pages.slice(4), 1 << 20) });
    const kvClients = new KvClients(5_000);
    const local = node();

    const result = await fetcherOver(kvClients, local, (from) =>
      from < 4
        ? [{ id: 'head', ...headPeer, kind: 'engine', numBlocks: 4 }]
        : [{ id: 'store', ...storePeer, kind: 'store', numBlocks: 10 }],
    ).prefetch(prompt);
    kvClients.close();

    expect(result).toMatchObject({ outcome: 'fetched', numFetchedBlocks: 10, sourceId: 'head' });
    expect(local.access.exportPages(local.hasher.hashTokens(prompt))).toEqual(pages);
    expect(kvClients.counters).toEqual({ numBulkFetches: 2, numGrpcFetches: 0, numBulkFallbacks: 0 });
  });

  it('keeps the verified pages before a corrupted one, as over gRPC', async () => {
    const peer = node();
    peer.access.importPages(pagesOf(prompt, peer.hasher));
    const honest = enginePageHandler(peer.access, namespace, undefined, 1 << 30);
    const hostile = await serveBoth({
      ...honest,
      fetchPages: (request, context) =>
        [
          ...(honest.fetchPages(request, context) as Iterable<{ blockHashes: readonly string[]; data: Uint8Array }>),
        ].map((extent) => {
          const pageBytes = extent.data.byteLength / extent.blockHashes.length;
          const data = extent.data.slice();
          data[3 * pageBytes + 100] = (data[3 * pageBytes + 100] ?? 0) ^ 1;
          return { blockHashes: extent.blockHashes, data };
        }),
    });
    const kvClients = new KvClients(5_000);
    const local = node();

    const result = await fetcherOver(kvClients, local, () => [
      { id: 'bad', ...hostile, kind: 'store', numBlocks: 10 },
    ]).prefetch(prompt);
    kvClients.close();

    expect(result).toMatchObject({ outcome: 'partial', numFetchedBlocks: 3, reason: 'checksum' });
    expect(kvClients.counters.numBulkFetches).toBe(1);
  });

  it('is refused by a peer of another KV namespace, as over gRPC', async () => {
    const peer = node();
    peer.access.importPages(pagesOf(prompt, peer.hasher));
    const foreign = new PrefixHasher({ ...hasherConfig, weightsDigestHex: 'cd'.repeat(32) }).namespaceHex();
    const foreignPeer = await serveBoth(enginePageHandler(peer.access, foreign));
    const kvClients = new KvClients(5_000);

    const result = await fetcherOver(kvClients, node(), () => [
      { id: 'foreign', ...foreignPeer, kind: 'engine', numBlocks: 10 },
    ]).prefetch(prompt);
    kvClients.close();

    expect(result).toMatchObject({ outcome: 'failed', reason: 'refused', numFetchedBlocks: 0 });
    expect(kvClients.counters).toEqual({ numBulkFetches: 0, numGrpcFetches: 0, numBulkFallbacks: 0 });
  });

  it('falls back to gRPC FetchPages when the bulk data plane cannot be reached', async () => {
    const peer = node();
    peer.access.importPages(pagesOf(prompt, peer.hasher));
    const address = await serve(enginePageHandler(peer.access, namespace));
    const kvClients = new KvClients(5_000);

    const result = await fetcherOver(kvClients, node(), () => [
      { id: 'peer', address, dataAddress: '127.0.0.1:1', kind: 'engine', numBlocks: 10 },
    ]).prefetch(prompt);
    kvClients.close();

    expect(result).toMatchObject({ outcome: 'fetched', numFetchedBlocks: 10 });
    expect(kvClients.counters).toEqual({ numBulkFetches: 0, numGrpcFetches: 1, numBulkFallbacks: 1 });
  });

  it('fetches over gRPC only when the transport is grpc', async () => {
    const peer = node();
    peer.access.importPages(pagesOf(prompt, peer.hasher));
    const both = await serveBoth(enginePageHandler(peer.access, namespace));
    const kvClients = new KvClients(5_000, { transport: 'grpc' });

    const result = await fetcherOver(kvClients, node(), () => [
      { id: 'peer', ...both, kind: 'engine', numBlocks: 10 },
    ]).prefetch(prompt);
    kvClients.close();

    expect(result).toMatchObject({ outcome: 'fetched', numFetchedBlocks: 10 });
    expect(kvClients.counters).toEqual({ numBulkFetches: 0, numGrpcFetches: 1, numBulkFallbacks: 0 });
  });

  it('gives up on a peer that dies mid-answer (no gRPC retry) and recomputes', async () => {
    const peer = node();
    peer.access.importPages(pagesOf(prompt, peer.hasher));
    const honest = enginePageHandler(peer.access, namespace, undefined, 1);
    const dying = await serveBoth({
      ...honest,
      async *fetchPages(request, context) {
        yield* [
          ...(honest.fetchPages(request, context) as Iterable<{ blockHashes: readonly string[]; data: Uint8Array }>),
        ].slice(0, 2);
        await new Promise(() => undefined);
      },
    });
    const kvClients = new KvClients(5_000);
    const fetching = fetcherOver(kvClients, node(), () => [
      { id: 'dying', ...dying, kind: 'engine', numBlocks: 10 },
    ]).prefetch(prompt);
    await new Promise((resolve) => setTimeout(resolve, 100));
    const started = performance.now();

    await bulkServers.at(-1)?.close(0);
    const result = await fetching;
    kvClients.close();

    expect(result).toMatchObject({ outcome: 'failed', reason: 'unavailable', numFetchedBlocks: 0 });
    expect(performance.now() - started).toBeLessThan(1_000);
    expect(kvClients.counters.numGrpcFetches).toBe(0);
  });
});
