import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClusterConnection, RequestQueue, type QueueDelivery, type RequestMessage } from '@switchyard/cluster';
import { startNatsServer, type NatsServer } from '@switchyard/launcher';
import { sleep, waitFor } from './helpers/wait.ts';

const params = { maxTokens: 4, temperature: 0, topK: 0, topP: 1, seed: 1, stop: [], stopAtEos: false };
const requestFor = (model: string, id: string): RequestMessage => ({
  id,
  promptIds: [1, 2, 3],
  params,
  model,
  createdAtMs: Date.now(),
});

describe('request work queue on a real nats-server', () => {
  let server: NatsServer;
  const conns: ClusterConnection[] = [];
  const connect = async (name: string): Promise<ClusterConnection> => {
    const conn = await ClusterConnection.open({ url: server.url, name });
    conns.push(conn);
    return conn;
  };

  beforeAll(async () => {
    server = await startNatsServer();
  });
  afterAll(async () => {
    for (const conn of conns) await conn.close(1_000);
    await server.stop();
  });

  it('stores a request published twice under the same id once', async () => {
    const queue = await RequestQueue.open(await connect('frontend'));
    const first = await queue.publish(requestFor('dedup', 'req-1'));
    const again = await queue.publish(requestFor('dedup', 'req-1'));
    expect(first.duplicate).toBe(false);
    expect(again).toEqual({ seq: first.seq, duplicate: true });
    const consumer = await queue.consume('dedup', { numFreeSlots: () => 0, onRequest: () => {} });
    expect(await queue.numWaiting('dedup')).toBe(1);
    await consumer.stop();
  });

  it('pulls only while the engine has free slots, and never more than it has', async () => {
    const queue = await RequestQueue.open(await connect('engine'));
    for (const i of [0, 1, 2, 3]) await queue.publish(requestFor('slots', `slot-${i}`));
    let free = 0;
    const got: QueueDelivery[] = [];
    const consumer = await queue.consume('slots', {
      numFreeSlots: () => free - got.filter((d) => d.settlement === undefined).length,
      onRequest: (d) => got.push(d),
    });
    await sleep(300);
    expect(got).toHaveLength(0);
    free = 1;
    await waitFor(() => got.length === 1, 5_000, 'one request');
    await sleep(300);
    expect(got).toHaveLength(1);
    free = 3;
    await waitFor(() => got.length === 3, 5_000, 'two more requests');
    await sleep(300);
    expect(got.map((d) => d.request.id)).toEqual(['slot-0', 'slot-1', 'slot-2']);
    for (const d of got) d.ack();
    await waitFor(() => got.length === 4, 5_000, 'the last request once slots freed');
    got[3]?.ack();
    await consumer.stop();
    expect(await queue.numWaiting('slots')).toBe(0);
  });

  it('redelivers to another engine after AckWait when the first dies without acking', async () => {
    const options = { ackWaitMs: 1_000, heartbeatIntervalMs: 300 };
    const deadEngine = await connect('engine-a');
    const queueA = await RequestQueue.open(deadEngine, options);
    const seenByA: QueueDelivery[] = [];
    await queueA.consume('migrate', { numFreeSlots: () => 1 - seenByA.length, onRequest: (d) => seenByA.push(d) });
    await queueA.publish(requestFor('migrate', 'mig-1'));
    await waitFor(() => seenByA.length === 1, 5_000, 'engine A to take the request');
    await deadEngine.close(0); // the engine dies: no ack, no more working()

    const queueB = await RequestQueue.open(await connect('engine-b'), options);
    const seenByB: QueueDelivery[] = [];
    const startMs = Date.now();
    const consumerB = await queueB.consume('migrate', { numFreeSlots: () => 1, onRequest: (d) => seenByB.push(d) });
    await waitFor(() => seenByB.length === 1, 10_000, 'engine B to get the redelivery');
    expect(seenByB[0]?.request.id).toBe('mig-1');
    expect(seenByB[0]?.numDelivered).toBe(2);
    expect(Date.now() - startMs).toBeLessThan(5_000);
    seenByB[0]?.ack();
    await consumerB.stop();
  });

  it('keeps a request with its engine past AckWait while working() heartbeats flow', async () => {
    const options = { ackWaitMs: 1_000, heartbeatIntervalMs: 250 };
    const queue = await RequestQueue.open(await connect('engine-slow'), options);
    const mine: QueueDelivery[] = [];
    const other: QueueDelivery[] = [];
    const a = await queue.consume('slow', { numFreeSlots: () => 1 - mine.length, onRequest: (d) => mine.push(d) });
    await queue.publish(requestFor('slow', 'slow-1'));
    await waitFor(() => mine.length === 1, 5_000, 'the request');
    const b = await (
      await RequestQueue.open(await connect('engine-idle'), options)
    ).consume('slow', { numFreeSlots: () => 1, onRequest: (d) => other.push(d) });
    await sleep(2_500);
    expect(other).toHaveLength(0);
    mine[0]?.ack();
    await Promise.all([a.stop(), b.stop()]);
  });

  it('redelivers a nak(delay) only after the delay, and drops a terminated invalid message', async () => {
    const conn = await connect('engine-nak');
    const queue = await RequestQueue.open(conn);
    const got: { d: QueueDelivery; atMs: number }[] = [];
    const invalid: string[] = [];
    const consumer = await queue.consume('nak', {
      numFreeSlots: () => 1,
      onRequest: (d) => got.push({ d, atMs: Date.now() }),
      onInvalid: (reason) => invalid.push(reason),
    });
    await conn.js.publish(conn.names.requestSubject('nak'), 'not json', { msgID: 'garbage-1' });
    await waitFor(() => invalid.length === 1, 5_000, 'the invalid message');
    expect(invalid[0]).toMatch(/not JSON/);
    await queue.publish(requestFor('nak', 'nak-1'));
    await waitFor(() => got.length === 1, 5_000, 'the request');
    got[0]?.d.nak(400);
    await waitFor(() => got.length === 2, 5_000, 'the redelivery');
    const [first, second] = got;
    expect(second?.d.numDelivered).toBe(2);
    expect((second?.atMs ?? 0) - (first?.atMs ?? 0)).toBeGreaterThanOrEqual(350);
    second?.d.ack();
    await sleep(200);
    expect(invalid).toHaveLength(1);
    await consumer.stop();
    expect(await queue.numWaiting('nak')).toBe(0);
  });
});
