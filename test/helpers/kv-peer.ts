/**
 * A misbehaving KV page holder, run as its own process by the KV transfer tests: it computes a prompt's
 * KV with the real engine, announces those blocks on NATS like a page store (KV events, a load report
 * with its KvPageService and KV bulk data plane addresses), and then serves them on both with one fault:
 *
 *   corrupt  one bit flipped in the K/V data of the fourth page (its CRC-32 no longer matches)
 *   refuse   it answers as a node of another weights digest (the namespace handshake refuses it)
 *   die      it sends the first extent, prints "mid-transfer" and hangs, so the test can kill it
 *
 *   node test/helpers/kv-peer.ts --model <dir> --nats-url <url> --name <id> --fault corrupt --prompt <text>
 */
import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import { ANY_MODEL, ClusterConnection, EngineLoadReporter, KvEventPublisher, KvEventStream } from '@switchyard/cluster';
import { createByteTokenizer, EngineLoop, resolveSamplingParams, PrefixHasher } from '@switchyard/engine';
import { enginePageHandler } from '@switchyard/kv-transfer';
import { loadModelDir } from '@switchyard/model';
import { createEngine } from '@switchyard/onnx';
import { createKvBulkServer, createKvPageServer, type KvExtent, type KvPageServiceHandler } from '@switchyard/rpc';

const { values } = parseArgs({
  options: {
    model: { type: 'string' },
    'nats-url': { type: 'string' },
    name: { type: 'string' },
    fault: { type: 'string' },
    prompt: { type: 'string' },
  },
});
const { model: modelDir, 'nats-url': natsUrl, name, fault, prompt } = values;
if (!modelDir || !natsUrl || !name || !prompt || !['corrupt', 'refuse', 'die'].includes(fault ?? '')) {
  process.stderr.write('kv-peer: --model, --nats-url, --name, --prompt and --fault corrupt|refuse|die are required\n');
  process.exit(2);
}

const model = await loadModelDir(modelDir);
const bundle = await createEngine(model, {
  expertDtype: 'fp32',
  denseDtype: 'fp32',
  blockSize: 16,
  scheduler: { maxBatchedTokens: 2048, maxRunningSequences: 4 },
});
const loop = new EngineLoop(bundle.engine);
const promptIds = createByteTokenizer().encode(prompt);
await loop.generate({
  id: 'fill',
  promptIds,
  params: resolveSamplingParams({ maxTokens: 1, temperature: 0, stopAtEos: false }),
});
const namespace = bundle.hasher.namespaceHex();
const servedAs =
  fault === 'refuse'
    ? new PrefixHasher({
        modelId: model.config.name,
        weightsDigestHex: 'ee'.repeat(32),
        kvDtype: 'f32',
        blockSize: 16,
      }).namespaceHex()
    : namespace;
const honest = enginePageHandler(bundle.pages, servedAs, undefined, 1 << 20);
const extentsOf = (
  request: Parameters<KvPageServiceHandler['fetchPages']>[0],
  context: Parameters<KvPageServiceHandler['fetchPages']>[1],
) => [...(honest.fetchPages(request, context) as Iterable<KvExtent>)];

const handler: KvPageServiceHandler = {
  ...honest,
  fetchPages:
    fault === 'corrupt'
      ? (request, context) => {
          // The fourth page of the whole answer, whichever extent holds it (a big model's pages are
          // large enough that an extent holds only two).
          let firstPage = 0;
          return extentsOf(request, context).map((extent) => {
            const numPages = extent.blockHashes.length;
            const page = 3 - firstPage;
            firstPage += numPages;
            if (page < 0 || page >= numPages) return extent;
            const data = extent.data.slice();
            const pageBytes = data.byteLength / numPages;
            const at = page * pageBytes + pageBytes - 8;
            data[at] = (data[at] ?? 0) ^ 0x10;
            return { blockHashes: extent.blockHashes, data };
          });
        }
      : fault === 'die'
        ? async function* (request, context) {
            const extents = extentsOf(request, context);
            // The server sends an extent once it has the next one (it coalesces small ones), so hand over two.
            yield* extents.slice(0, 2);
            process.stdout.write('mid-transfer\n');
            await new Promise(() => {});
          }
        : honest.fetchPages,
};
const server = await createKvPageServer({ host: '127.0.0.1', port: 0, handler, logError: () => {} });
const address = `127.0.0.1:${server.port}`;
// NOTE: 1 MiB frames, so the bulk plane too sends the first extent before the handler hangs (`die`).
const bulkServer = await createKvBulkServer({
  host: '127.0.0.1',
  port: 0,
  handler,
  frameBytes: 1 << 20,
  logError: () => {},
});
const dataAddress = `127.0.0.1:${bulkServer.port}`;
const conn = await ClusterConnection.open({ url: natsUrl, name });
const stream = await KvEventStream.open(conn);
new KvEventPublisher(stream, {
  engineId: name,
  epoch: randomUUID(),
  namespace,
  intervalMs: 50,
  snapshotIntervalMs: 30_000,
  heldHashes: () => bundle.pool.cachedHashes(),
});
new EngineLoadReporter(
  conn,
  () => ({
    engineId: name,
    model: ANY_MODEL,
    numRunning: 0,
    numWaiting: 0,
    maxRunning: 1,
    kvUsage: 0,
    role: 'store' as const,
    kvAddress: address,
    kvDataAddress: dataAddress,
  }),
  250,
);
process.stdout.write(`kv-peer ready: ${name} (${fault}) at ${address}, ${bundle.pool.numCachedBlocks} blocks\n`);
