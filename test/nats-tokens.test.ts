import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ClusterConnection,
  TokenPublisher,
  TokenStreamTimeoutError,
  TokenSubscriber,
  encodeTokenEvent,
} from '@switchyard/cluster';
import type { TokenEvent } from '@switchyard/engine';
import { startNatsServer, type NatsServer } from '@switchyard/launcher';
import { sleep, waitFor } from './helpers/wait.ts';

const token = (requestId: string, index: number, final = false): TokenEvent => ({
  requestId,
  index,
  tokenId: 100 + index,
  text: String.fromCharCode(97 + index),
  ...(final
    ? {
        finishReason: 'length' as const,
        usage: { promptTokens: 3, completionTokens: index + 1, cachedPromptTokens: 0 },
      }
    : {}),
});

describe('token streams on a real nats-server', () => {
  let server: NatsServer;
  let frontend: ClusterConnection;
  let engine: ClusterConnection;
  let subscriber: TokenSubscriber;

  beforeAll(async () => {
    server = await startNatsServer();
    frontend = await ClusterConnection.open({ url: server.url, name: 'frontend' });
    engine = await ClusterConnection.open({ url: server.url, name: 'engine' });
    subscriber = new TokenSubscriber(
      frontend,
      {
        resendAfterMs: 200,
        tickMs: 50,
        idleTimeoutMs: 1_000,
        firstEventTimeoutMs: 1_500,
      },
      'frontend-0',
    );
  });
  afterAll(async () => {
    subscriber?.close();
    await frontend.close(1_000);
    await engine.close(1_000);
    await server.stop();
  });

  it('forwards each index once and in order when a second engine replays the request', async () => {
    const got: TokenEvent[] = [];
    subscriber.open('replayed', (e) => got.push(e));
    await frontend.nc.flush();
    const crashed = new TokenPublisher(engine, { onCancel: () => {} });
    crashed.begin('replayed', subscriber.frontendId);
    for (const i of [0, 1, 2]) crashed.publish(token('replayed', i));
    crashed.close(); // the first engine dies after three tokens
    const replay = new TokenPublisher(engine, { onCancel: () => {} });
    replay.begin('replayed', subscriber.frontendId);
    for (const i of [0, 1, 2, 3, 4]) replay.publish(token('replayed', i, i === 4));
    await waitFor(() => got.at(-1)?.finishReason !== undefined, 5_000, 'the final event');
    replay.close();
    expect(got.map((e) => e.index)).toEqual([0, 1, 2, 3, 4]);
    expect(got.map((e) => e.text).join('')).toBe('abcde');
    expect(got.at(-1)?.usage?.completionTokens).toBe(5);
    expect(subscriber.numOpen).toBe(0);
  });

  it('gets lost events back from the serving engine when it sees a gap', async () => {
    const got: TokenEvent[] = [];
    subscriber.open('gappy', (e) => got.push(e));
    await frontend.nc.flush();
    const publisher = new TokenPublisher(engine, { onCancel: () => {} });
    await engine.nc.flush();
    publisher.begin('gappy', subscriber.frontendId);
    publisher.publish(token('gappy', 0));
    dropNextPublish(engine, engine.names.tokenSubject(subscriber.frontendId, 'gappy')); // index 1 is retained by the engine but lost on the way
    for (const i of [1, 2, 3]) publisher.publish(token('gappy', i, i === 3));
    await waitFor(() => got.at(-1)?.finishReason !== undefined, 5_000, 'the final event after a resend');
    publisher.close();
    expect(got.map((e) => e.index)).toEqual([0, 1, 2, 3]);
  });

  it('ends with an error event, not a hang, when every engine is gone', async () => {
    const got: TokenEvent[] = [];
    subscriber.open('orphan', (e) => got.push(e));
    await frontend.nc.flush();
    engine.nc.publish(engine.names.tokenSubject(subscriber.frontendId, 'orphan'), encodeTokenEvent(token('orphan', 0)));
    await waitFor(() => got.length === 2, 5_000, 'the timeout event');
    expect(got[0]?.index).toBe(0);
    expect(got[1]).toMatchObject({ index: 1, finishReason: 'error' });
    expect(got[1]?.error).toBeInstanceOf(TokenStreamTimeoutError);
    await sleep(100);
    expect(got).toHaveLength(2);
  });

  it('relays a frontend cancel to the engine', async () => {
    const cancelled: string[] = [];
    const publisher = new TokenPublisher(engine, { onCancel: (id) => cancelled.push(id) });
    await engine.nc.flush();
    publisher.begin('to-cancel', subscriber.frontendId);
    publisher.begin('not-theirs', 'another-frontend');
    subscriber.open('to-cancel', () => {});
    // A cancel naming another frontend's request (or a request this engine does not serve) is ignored.
    subscriber.cancel('not-theirs');
    subscriber.cancel('unknown');
    subscriber.cancel('to-cancel');
    await waitFor(() => cancelled.length === 1, 5_000, 'the cancel');
    await engine.nc.flush();
    expect(cancelled).toEqual(['to-cancel']);
    publisher.close();
  });
});

/** Makes the next publish on `subject` vanish, as a core NATS message lost in a broker restart would. */
function dropNextPublish(conn: ClusterConnection, subject: string): void {
  const nc = conn.nc;
  const publish = nc.publish.bind(nc);
  nc.publish = (s, data, options) => {
    if (s !== subject) return publish(s, data, options);
    nc.publish = publish;
  };
}
