import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { computePlacement } from '@switchyard/routing';
import {
  ClusterConnection,
  PlacementStore,
  WorkerRegistry,
  type LiveWorkers,
  type StoredPlacement,
  type WorkerRecord,
} from '@switchyard/cluster';
import { startNatsServer, type NatsServer } from '@switchyard/launcher';
import { waitFor } from './helpers/wait.ts';

const worker = (id: string, numInFlight = 0): WorkerRecord => ({
  id,
  address: `127.0.0.1:${50_000 + Number(id.slice(-1))}`,
  model: 'tiny',
  experts: [[0, Number(id.slice(-1))]],
  executionProvider: 'cpu',
  load: { numInFlight },
});

describe('worker registry and placement store on a real nats-server', () => {
  let server: NatsServer;
  let conn: ClusterConnection;

  beforeAll(async () => {
    server = await startNatsServer();
    conn = await ClusterConnection.open({ url: server.url, name: 'registry-test' });
  });
  afterAll(async () => {
    await conn?.close(1_000);
    await server.stop();
  });

  it('drops a worker that stops heartbeating within the bucket TTL, and a deregistered one at once', async () => {
    const registry = await WorkerRegistry.open(conn, { ttlMs: 1_500 });
    expect(registry.ttlMs).toBe(1_500);
    const watch = await registry.watch();
    const seen: LiveWorkers[] = [];
    const reading = (async () => {
      for await (const live of watch) seen.push(live);
    })();
    const alive = registry.keepAlive(() => worker('w0', 3), { intervalMs: 300 });
    await registry.register(worker('w1'));
    await registry.register(worker('w2'));
    await waitFor(() => watch.current?.size === 3, 5_000, 'three workers');
    expect(watch.current?.get('w0')?.load.numInFlight).toBe(3);

    await registry.deregister('w2');
    await waitFor(() => watch.current?.size === 2, 1_000, 'w2 to leave at once');

    const silentSinceMs = Date.now();
    await waitFor(() => !(watch.current?.has('w1') ?? true), 5_000, 'the silent w1 to expire');
    const goneAfterMs = Date.now() - silentSinceMs;
    expect(goneAfterMs).toBeLessThanOrEqual(1_500 + 600);
    expect([...(watch.current?.keys() ?? [])]).toEqual(['w0']);
    expect((await registry.list()).map((w) => w.id)).toEqual(['w0']);

    await alive.stop();
    await waitFor(() => watch.current?.size === 0, 1_000, 'w0 to deregister on stop');
    await watch.stop();
    await reading;
    expect(seen.length).toBeGreaterThan(0);
  });

  it('lets exactly one of two gateways propose the initial placement, and updates by compare-and-set', async () => {
    const [a, b] = await Promise.all([PlacementStore.open(conn), PlacementStore.open(conn)]);
    const model = 'org/tiny.v1';
    const base = { numLayers: 2, numExperts: 4, strategy: 'contiguous' as const, replication: 1 };
    const fromA = computePlacement({ ...base, workers: ['w0', 'w1'], revision: 1 });
    const fromB = computePlacement({ ...base, workers: ['w1', 'w0'], revision: 1 });
    const watch = await a.watch(model);
    const results = await Promise.all([a.proposeInitial(model, fromA), b.proposeInitial(model, fromB)]);
    expect(results.filter((r) => r.ok)).toHaveLength(1);
    const winner = results.find((r) => r.ok);
    const loser = results.find((r) => !r.ok);
    const stored = winner?.ok ? winner.stored : undefined;
    expect(loser?.ok === false ? loser.current : undefined).toEqual(stored);
    await waitFor(() => watch.current?.kvRevision === stored?.kvRevision, 5_000, 'the watch to see the winner');

    const current = (await b.get(model)) as StoredPlacement;
    const next = computePlacement({ ...base, workers: ['w0', 'w1', 'w2'], revision: 2 });
    const [first, second] = await Promise.all([
      a.update(next, current),
      b.update({ ...next, workers: ['w2', 'w1', 'w0'] }, current),
    ]);
    expect([first.ok, second.ok].filter(Boolean)).toHaveLength(1);
    await waitFor(() => watch.current?.placement.revision === 2, 5_000, 'the watch to see revision 2');
    expect(await a.update({ ...next, revision: 3 }, current)).toMatchObject({ ok: false, reason: 'conflict' });
    await watch.stop();
  });
});
