/**
 * Expert load merged across gateways over a real nats-server (issue 14 item 1): each engine publishes its
 * window, every engine sums the fresh windows of the others of its model into its own.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClusterConnection, ExpertLoadExchange, decodeExpertLoad, encodeExpertLoad } from '@switchyard/cluster';
import { startNatsServer, type NatsServer } from '@switchyard/launcher';
import { waitFor } from './helpers/wait.ts';

let server: NatsServer;
const conns: ClusterConnection[] = [];

beforeAll(async () => {
  server = await startNatsServer();
});
afterAll(async () => {
  await Promise.all(conns.map((c) => c.close(1_000)));
  await server?.stop();
});

async function exchange(engineId: string, local: number[][], model = 'm', opts: { ttlMs?: number } = {}) {
  const conn = await ClusterConnection.open({ url: server.url, name: engineId, namespace: 'loadtest' });
  conns.push(conn);
  return new ExpertLoadExchange(conn, {
    model,
    engineId,
    numLayers: 2,
    numExperts: 3,
    local: () => local,
    intervalMs: 100,
    ...opts,
  });
}

describe('ExpertLoadExchange', () => {
  it('gives every engine the sum of its own window and the other engines’ of its model', async () => {
    const a = await exchange('a', [
      [10, 0, 1],
      [2, 2, 2],
    ]);
    const b = await exchange('b', [
      [0, 5, 0],
      [1, 0, 4],
    ]);
    // Another model on the same namespace is not counted.
    const other = await exchange(
      'c',
      [
        [100, 100, 100],
        [100, 100, 100],
      ],
      'other-model',
    );
    try {
      await waitFor(() => a.peers.length === 1 && b.peers.length === 1, 5_000, 'both engines to hear each other');
      const sum = [
        [10, 5, 1],
        [3, 2, 6],
      ];
      expect(a.merged()).toEqual(sum);
      expect(b.merged()).toEqual(sum);
      expect(a.peers).toEqual(['b']);
      expect(other.peers).toEqual([]);
    } finally {
      for (const x of [a, b, other]) x.stop();
    }
  });

  it('stops counting an engine whose reports stop (past the TTL)', async () => {
    const a = await exchange(
      'ttl-a',
      [
        [1, 1, 1],
        [1, 1, 1],
      ],
      'm2',
      { ttlMs: 400 },
    );
    const b = await exchange(
      'ttl-b',
      [
        [5, 5, 5],
        [5, 5, 5],
      ],
      'm2',
    );
    try {
      await waitFor(() => a.peers.includes('ttl-b'), 5_000, "ttl-b's report");
      expect(a.merged()[0]).toEqual([6, 6, 6]);
      b.stop();
      await waitFor(() => a.peers.length === 0, 5_000, 'ttl-b to expire');
      expect(a.merged()).toEqual([
        [1, 1, 1],
        [1, 1, 1],
      ]);
    } finally {
      a.stop();
      b.stop();
    }
  });

  it('decodes only well-formed reports', () => {
    const report = { model: 'm', engineId: 'e', numLayers: 1, numExperts: 2, totals: [3, 4] };
    expect(decodeExpertLoad(encodeExpertLoad(report))).toEqual(report);
    const bad = (r: object) => () => decodeExpertLoad(new TextEncoder().encode(JSON.stringify(r)));
    expect(bad({ ...report, totals: [3] })).toThrow(/do not match/);
    expect(bad({ ...report, totals: [3, -1] })).toThrow(/do not match/);
    expect(bad({ ...report, engineId: 7 })).toThrow(/no model or engine/);
    expect(bad({ ...report, numLayers: 'x' })).toThrow(/no shape/);
  });
});
