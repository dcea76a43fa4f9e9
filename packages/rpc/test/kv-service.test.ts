import { afterEach, describe, expect, it } from 'vitest';
import { KV_PAGE_SERVICE_NAME, checkHealth, connectKvPageClient, createKvPageServer } from '../src/index.ts';
import type { KvExtent, KvPageClient, KvPageServer, KvPageServiceHandler, PushPagesRequest } from '../src/index.ts';

const KIB = 1024;
const PAGE_BYTES = 256 * KIB;

/** A fake page store: block "h<i>" holds PAGE_BYTES bytes of value i. */
function pageOf(hash: string): Buffer {
  return Buffer.alloc(PAGE_BYTES, Number.parseInt(hash.slice(1), 10));
}

const servers: KvPageServer[] = [];
const clients: KvPageClient[] = [];
afterEach(async () => {
  for (const client of clients.splice(0)) client.close();
  await Promise.all(servers.splice(0).map((server) => server.close(100)));
});

async function start(handler: KvPageServiceHandler): Promise<KvPageClient> {
  const server = await createKvPageServer({
    handler,
    host: '127.0.0.1',
    port: 0,
    maxChunkBytes: 300 * KIB,
    logError: () => undefined,
  });
  servers.push(server);
  const client = await connectKvPageClient(`127.0.0.1:${server.port}`, { deadlineMs: 5_000, maxChunkBytes: 300 * KIB });
  clients.push(client);
  return client;
}

describe('KvPageService', () => {
  it('fetches held pages as extents of at least 1 MiB, byte for byte, and names the missing ones', async () => {
    const held = new Set(['h1', 'h2', 'h3', 'h4', 'h5', 'h6']);
    const client = await start({
      async *fetchPages(request) {
        for (const hash of request.blockHashes) if (held.has(hash)) yield { blockHashes: [hash], data: pageOf(hash) };
      },
      pushPages: async () => ({ acceptedHashes: [] }),
    });
    const requested = ['h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'h7'];

    const fetched = await client.fetchPages({ namespace: 'ns', blockHashes: requested });

    expect(fetched.missingHashes).toEqual(['h7']);
    expect(fetched.sizeBytes).toBe(6 * PAGE_BYTES);
    expect(fetched.extents.map((e) => e.blockHashes)).toEqual([
      ['h1', 'h2', 'h3', 'h4'],
      ['h5', 'h6'],
    ]);
    expect(fetched.extents[0]?.data.byteLength).toBeGreaterThanOrEqual(1024 * KIB);
    for (const e of fetched.extents) {
      e.blockHashes.forEach((hash, i) => {
        const page = Buffer.from(e.data.buffer, e.data.byteOffset + i * PAGE_BYTES, PAGE_BYTES);
        expect(page.equals(pageOf(hash))).toBe(true);
      });
    }
  });

  it('pushes extents and returns the blocks the peer kept', async () => {
    let received: PushPagesRequest | undefined;
    const client = await start({
      fetchPages: () => [],
      pushPages: async (request) => {
        received = request;
        return { acceptedHashes: request.extents.flatMap((e) => e.blockHashes).filter((hash) => hash !== 'h2') };
      },
    });
    const extents: KvExtent[] = ['h1', 'h2', 'h3'].map((hash) => ({ blockHashes: [hash], data: pageOf(hash) }));

    const result = await client.pushPages({ namespace: 'tenant-ns', extents });

    expect(result.acceptedHashes).toEqual(['h1', 'h3']);
    expect(received?.namespace).toBe('tenant-ns');
    expect(received?.extents.flatMap((e) => e.blockHashes)).toEqual(['h1', 'h2', 'h3']);
    expect(
      Buffer.from(received?.extents[0]?.data ?? [])
        .subarray(2 * PAGE_BYTES)
        .equals(pageOf('h3')),
    ).toBe(true);
  });

  it("reports the handler's failure as a typed error and serves health", async () => {
    const client = await start({
      // eslint-disable-next-line require-yield
      async *fetchPages() {
        throw new Error('disk on fire');
      },
      pushPages: async () => ({ acceptedHashes: [] }),
    });
    await expect(client.fetchPages({ namespace: 'ns', blockHashes: ['h1'] })).rejects.toMatchObject({
      code: 'INTERNAL',
    });
    const port = servers[0]?.port ?? 0;
    await expect(checkHealth(`127.0.0.1:${port}`, KV_PAGE_SERVICE_NAME, 1_000)).resolves.toBe('SERVING');
  });
});
