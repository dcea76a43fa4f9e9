import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ClusterConnection,
  NatsConnectError,
  RequestQueue,
  TokenPublisher,
  TokenSubscriber,
  chooseBroker,
  describeBrokerChoice,
  probeNats,
  type ConnectionState,
  type QueueDelivery,
} from '@switchyard/cluster';
import type { TokenEvent } from '@switchyard/engine';
import { freePort, startNatsServer, type NatsServer } from '@switchyard/launcher';
import { waitFor } from './helpers/wait.ts';

describe('connecting to NATS', () => {
  let guarded: NatsServer;

  beforeAll(async () => {
    guarded = await startNatsServer({ user: 'a', pass: 'b' });
  });
  afterAll(async () => {
    await guarded.stop();
  });

  it('fails start-up on wrong credentials with an error naming NATS and the URL, not the password', async () => {
    const url = `nats://a:hunter2@127.0.0.1:${guarded.port}`;
    const error = await ClusterConnection.open({ url, name: 't' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NatsConnectError);
    const e = error as NatsConnectError;
    expect(e).toMatchObject({ code: 'nats_connect_failed', reason: 'auth', url: `nats://127.0.0.1:${guarded.port}` });
    expect(e.message).toContain('NATS');
    expect(e.message).toContain(`nats://127.0.0.1:${guarded.port}`);
    expect(e.message).not.toContain('hunter2');
    expect(JSON.stringify(e)).not.toContain('hunter2');

    const withOptions = await ClusterConnection.open({ url: guarded.url, user: 'a', pass: 'hunter2', name: 't' }).catch(
      (x: unknown) => x,
    );
    expect((withOptions as NatsConnectError).reason).toBe('auth');
    expect((withOptions as Error).message).not.toContain('hunter2');

    const ok = await ClusterConnection.open({ url: guarded.url, user: 'a', pass: 'b', name: 't' });
    await ok.close();
  });

  it('fails start-up fast when no server listens, and probes say so', async () => {
    const port = await freePort();
    const startMs = Date.now();
    const error = await ClusterConnection.open({
      url: `nats://127.0.0.1:${port}`,
      name: 't',
      connectTimeoutMs: 1_000,
    }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'nats_connect_failed', reason: 'unreachable' });
    expect((error as Error).message).toMatch(new RegExp(`NATS at nats://127.0.0.1:${port}`));
    expect(Date.now() - startMs).toBeLessThan(3_000);
    expect(await probeNats(`nats://127.0.0.1:${port}`, 500)).toBe(false);
  });
});

describe('choosing the request broker for switchyard up', () => {
  it('uses NATS_URL when set, a local server when one answers, else the in-process queue', async () => {
    const server = await startNatsServer({ user: 'u', pass: 'sekret' });
    try {
      const withCreds = `nats://u:sekret@127.0.0.1:${server.port}`;
      const chosen = await chooseBroker(withCreds);
      expect(chosen).toEqual({ kind: 'nats', url: withCreds, source: 'NATS_URL' });
      expect(describeBrokerChoice(chosen)).toBe(
        `request queue: NATS JetStream at nats://127.0.0.1:${server.port} (from NATS_URL)`,
      );
      expect(await chooseBroker(server.url, { credentials: { user: 'u', pass: 'sekret' } })).toMatchObject({
        kind: 'nats',
      });
      const refused = await chooseBroker(`nats://u:wrong@127.0.0.1:${server.port}`).catch((e: unknown) => e);
      expect(refused).toMatchObject({ code: 'nats_connect_failed', reason: 'auth' });
      expect(await chooseBroker(undefined, { localUrl: withCreds })).toMatchObject({ kind: 'nats', source: 'local' });
      const nobody = `nats://127.0.0.1:${await freePort()}`;
      const fallback = await chooseBroker('', { localUrl: nobody });
      expect(fallback.kind).toBe('in-process');
      expect(describeBrokerChoice(fallback)).toContain(`no NATS server with JetStream answers at ${nobody}`);
    } finally {
      await server.stop();
    }
  });
});

describe('a broker restart', () => {
  let server: NatsServer;

  beforeAll(async () => {
    server = await startNatsServer();
  });
  afterAll(async () => {
    await server.stop();
  });

  it('is survived: clients reconnect, the queue keeps its requests, and token streams complete', async () => {
    const reconnect = { maxAttempts: 50, waitMs: 100 };
    const frontend = await ClusterConnection.open({ url: server.url, name: 'frontend', reconnect });
    const engine = await ClusterConnection.open({ url: server.url, name: 'engine', reconnect });
    const states: ConnectionState[] = [];
    frontend.onStateChange((s) => states.push(s));
    const params = { maxTokens: 2, temperature: 0, topK: 0, topP: 1, seed: 1, stop: [], stopAtEos: false };
    const queue = await RequestQueue.open(frontend);
    const subscriber = new TokenSubscriber(frontend, { resendAfterMs: 200, tickMs: 50 });
    const publisher = new TokenPublisher(engine, { onCancel: () => {} });
    await queue.publish({ id: 'before', promptIds: [1], params, model: 'restart', createdAtMs: Date.now() });
    const got: TokenEvent[] = [];
    subscriber.open('before', (e) => got.push(e));

    await server.kill();
    await waitFor(() => !frontend.isConnected && !engine.isConnected, 5_000, 'both clients to notice');
    // The engine serves what it already had while the broker is away: these events are lost.
    publisher.begin('before', subscriber.frontendId);
    publisher.publish({ requestId: 'before', index: 0, tokenId: 7, text: 'x' });
    await server.start();
    await waitFor(() => frontend.isConnected && engine.isConnected, 10_000, 'both clients to reconnect');
    expect(states).toEqual(['reconnecting', 'connected']);

    publisher.publish({ requestId: 'before', index: 1, tokenId: 8, text: 'y', finishReason: 'length' });
    await waitFor(() => got.at(-1)?.finishReason !== undefined, 10_000, 'the stream to complete');
    expect(got.map((e) => [e.index, e.text])).toEqual([
      [0, 'x'],
      [1, 'y'],
    ]);

    const engineQueue = await RequestQueue.open(engine);
    const deliveries: QueueDelivery[] = [];
    const consumer = await engineQueue.consume('restart', {
      numFreeSlots: () => 1 - deliveries.length,
      onRequest: (d) => deliveries.push(d),
    });
    await waitFor(() => deliveries.length === 1, 10_000, 'the request stored before the restart');
    expect(deliveries[0]?.request.id).toBe('before');
    deliveries[0]?.ack();
    await consumer.stop();
    subscriber.close();
    publisher.close();
    await frontend.close(1_000);
    await engine.close(1_000);
  });
});
