import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getPreset, randomWeights } from '@switchyard/model';
import {
  EngineLoop,
  resolveSamplingParams,
  type EngineBundle,
  type GenerateRequest,
  type TokenEvent,
} from '@switchyard/engine';
import { createEngine } from '@switchyard/onnx';
import { ClusterConnection, RequestQueue, TokenSubscriber, NatsBackend, QueueWorker } from '@switchyard/cluster';
import { startNatsServer, type NatsServer } from '@switchyard/launcher';
import { sleep, waitFor } from './helpers/wait.ts';

const config = getPreset('tiny');
const model = { config, weights: randomWeights(config, 2), weightsDigest: 'cd'.repeat(32) };
const engineOptions = {
  expertDtype: 'fp32',
  denseDtype: 'fp32',
  blockSize: 4,
  microBatches: 1,
  scheduler: { maxBatchedTokens: 256, maxRunningSequences: 8 },
} as const;
const reconnect = { maxAttempts: 100, waitMs: 100 };

describe('a broker restart during 20 requests (the full path, own nats-server)', () => {
  let server: NatsServer;
  let oracle: EngineBundle;
  let engine: EngineBundle;
  let loop: EngineLoop;
  let engineConn: ClusterConnection;
  let frontendConn: ClusterConnection;
  let worker: QueueWorker;
  let tokens: TokenSubscriber;

  beforeAll(async () => {
    server = await startNatsServer();
    oracle = await createEngine(model, engineOptions);
    engine = await createEngine(model, engineOptions);
    loop = new EngineLoop(engine.engine, () => busyWait(4));
    const queueOptions = { ackWaitMs: 2_000, heartbeatIntervalMs: 500 };
    engineConn = await ClusterConnection.open({ url: server.url, name: 'engine', reconnect });
    frontendConn = await ClusterConnection.open({ url: server.url, name: 'frontend', reconnect });
    worker = await QueueWorker.start(
      { conn: engineConn, queue: await RequestQueue.open(engineConn, queueOptions), loop },
      { model: config.name, maxRunning: 8, retryDelayMs: 100 },
    );
    tokens = new TokenSubscriber(frontendConn, {
      resendAfterMs: 300,
      idleTimeoutMs: 10_000,
      firstEventTimeoutMs: 20_000,
    });
  });
  afterAll(async () => {
    tokens?.close();
    await worker?.drain(1_000);
    await loop?.stop(1_000);
    await engineConn?.close(1_000);
    await frontendConn?.close(1_000);
    await engine?.close();
    await oracle?.close();
    await server?.stop();
  });

  it('completes every request after the reconnect, or ends it with a clear error; none hangs', async () => {
    const backend = new NatsBackend({
      conn: frontendConn,
      queue: await RequestQueue.open(frontendConn, { ackWaitMs: 2_000, heartbeatIntervalMs: 500 }),
      tokens,
      model: {
        modelId: config.name,
        maxContext: config.maxContext,
        vocabSize: config.vocabSize,
        tokenizer: engine.tokenizer,
      },
      maxInFlight: 64,
    });
    const requests: GenerateRequest[] = Array.from({ length: 20 }, (_, i) => ({
      id: `restart-${i}`,
      promptIds: engine.tokenizer.encode(`request number ${i} survives`),
      params: resolveSamplingParams({ maxTokens: 24, temperature: 0, stopAtEos: false }),
    }));
    const oracleLoop = new EngineLoop(oracle.engine);
    const expected = await Promise.all(requests.map((r) => oracleLoop.generate({ ...r, id: `oracle-${r.id}` })));
    await oracleLoop.stop();

    const results = requests.map(() => [] as TokenEvent[]);
    const done = requests.map(
      (r, i) =>
        new Promise<void>((resolve) =>
          backend.submit(r, (event) => {
            results[i]?.push(event);
            if (event.finishReason) resolve();
          }),
        ),
    );
    await waitFor(() => results.some((events) => events.length >= 3), 10_000, 'generation to start');
    await server.kill();
    await sleep(700);
    await server.start();
    const startMs = Date.now();
    await Promise.all(done);
    const finishedWithinMs = Date.now() - startMs;

    const ids = (events: readonly TokenEvent[]) => events.filter((e) => e.tokenId >= 0).map((e) => e.tokenId);
    const outcomes = results.map((events, i) => {
      const last = events.at(-1);
      if (last?.finishReason === 'length')
        return ids(events).join(',') === ids(expected[i] ?? []).join(',') ? 'exact' : 'WRONG';
      return `error:${(last?.error as { code?: string } | undefined)?.code ?? 'none'}`;
    });
    expect(outcomes.filter((o) => o === 'WRONG')).toEqual([]);
    for (const o of outcomes)
      expect(
        o === 'exact' ||
          /^error:(token_stream_timeout|token_stream_gap|request_publish_failed|remote_generation_failed)$/.test(o),
      ).toBe(true);
    // Indices stay gapless and unique whatever happened.
    for (const events of results) expect(events.map((e) => e.index)).toEqual(events.map((_, i) => i));
    expect(finishedWithinMs).toBeLessThan(20_000);
  });
});

function busyWait(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    // a slower step, so the restart lands mid-generation
  }
}
