import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { asBlockHash, type BlockHash } from '@switchyard/kv-cache';
import { ClusterConnection, KvEventPublisher, KvEventStream, KvView, decodeKvEventBatch } from '@switchyard/cluster';
import { startNatsServer, type NatsServer } from '@switchyard/launcher';
import { waitFor } from './helpers/wait.ts';

const NS = '5a'.repeat(32);
const h = (n: number): BlockHash => asBlockHash(n.toString(16).padStart(64, '0'));

let server: NatsServer;
let conn: ClusterConnection;
let stream: KvEventStream;

beforeAll(async () => {
  server = await startNatsServer();
  conn = await ClusterConnection.open({ url: server.url, name: 'kv-events-test' });
  stream = await KvEventStream.open(conn);
});

afterAll(async () => {
  await conn?.close(1_000);
  await server?.stop();
});

/** An engine's publisher over a set of held hashes the test controls; flushed by hand. */
function engine(engineId: string) {
  const held = new Set<BlockHash>();
  const publisher = new KvEventPublisher(stream, {
    engineId,
    epoch: `${engineId}-epoch-1`,
    namespace: NS,
    intervalMs: 3_600_000,
    snapshotIntervalMs: 3_600_000,
    heldHashes: () => [...held],
  });
  const store = (...ns: number[]) => {
    for (const n of ns) {
      held.add(h(n));
      publisher.add({ type: 'stored', blockHash: h(n), blockId: n });
    }
  };
  const remove = (...ns: number[]) => {
    for (const n of ns) {
      held.delete(h(n));
      publisher.add({ type: 'removed', blockHash: h(n), blockId: n });
    }
  };
  return { publisher, store, remove };
}

const openView = () => KvView.open(stream, { namespace: NS, maxEntries: 10_000, snapshotRequestIntervalMs: 0 });

describe('KV events through JetStream (real nats-server)', () => {
  it('lets a frontend that starts after the blocks were stored rebuild its view by replay', async () => {
    const a = engine('engine-a');
    a.store(1, 2, 3);
    await a.publisher.flush();
    a.remove(3);
    a.store(4);
    await a.publisher.flush();
    const view = await openView();
    try {
      await waitFor(() => view.index.engines().get('engine-a')?.seq === 3, 5_000, 'the replay of engine-a');
      expect(view.index.overlap([h(1), h(2), h(3)])).toEqual(new Map([['engine-a', 2]]));
      expect(view.index.overlap([h(4)])).toEqual(new Map([['engine-a', 1]]));
      expect(view.numGaps).toBe(0);
      // New events reach a running view too.
      a.store(3);
      await a.publisher.flush();
      await waitFor(() => view.index.overlap([h(1), h(2), h(3)]).get('engine-a') === 3, 5_000, 'the new batch');
    } finally {
      await view.stop();
      await a.publisher.stop();
    }
  });

  it('notices lost events by the gap in numbers, asks the engine for a snapshot, and recovers', async () => {
    const b = engine('engine-b');
    b.store(11, 12);
    await b.publisher.flush(); // batch 1: the start snapshot (empty) and then batch 2
    b.store(13);
    await b.publisher.flush(); // batch 3
    // Lose batch 2 (11, 12) from the stream, as a reader would that never saw it.
    const lost = await findBatch('engine-b', 2);
    expect(await conn.jsm.streams.deleteMessage(conn.names.kvEventStream, lost)).toBe(true);
    const view = await openView();
    try {
      await waitFor(
        () => view.index.engines().get('engine-b')?.trusted === true && view.numGaps > 0,
        10_000,
        'recovery',
      );
      await waitFor(() => view.index.overlap([h(11), h(12), h(13)]).get('engine-b') === 3, 10_000, 'the snapshot');
      expect(view.numGaps).toBe(1);
      expect(view.numSnapshotRequests).toBeGreaterThanOrEqual(1);
    } finally {
      await view.stop();
      await b.publisher.stop();
    }
  });
});

/** The stream sequence of `engineId`'s batch number `seq`. */
async function findBatch(engineId: string, seq: number): Promise<number> {
  const info = await conn.jsm.streams.info(conn.names.kvEventStream);
  for (let s = info.state.first_seq; s <= info.state.last_seq; s++) {
    const m = await conn.jsm.streams.getMessage(conn.names.kvEventStream, { seq: s }).catch(() => undefined);
    if (!m) continue;
    const batch = decodeKvEventBatch(m.data);
    if (batch.engineId === engineId && batch.seq === seq) return s;
  }
  throw new Error(`no batch ${seq} of ${engineId} in the stream`);
}
