import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
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
import { waitFor } from './helpers/wait.ts';

const config = getPreset('tiny');
const model = { config, weights: randomWeights(config, 1), weightsDigest: 'ab'.repeat(32) };
const queueOptions = { ackWaitMs: 1_000, heartbeatIntervalMs: 250 };
const prompts = [
  'The quick brown fox',
  'Mixture of experts',
  'a',
  'Switchyard routes tokens',
  'zzz',
  'KV pages',
  'NATS',
  'JetStream',
];

interface EngineSide {
  readonly bundle: EngineBundle;
  readonly loop: EngineLoop;
  readonly conn: ClusterConnection;
  readonly worker: QueueWorker;
}

async function openEngine(url: string, name: string, stepDelayMs = 0): Promise<EngineSide> {
  const bundle = await createEngine(model, {
    expertDtype: 'fp32',
    denseDtype: 'fp32',
    blockSize: 4,
    microBatches: 1,
    scheduler: { maxBatchedTokens: 64, maxRunningSequences: 8 },
  });
  // A slow engine (busy steps) lets a test cut it off mid-generation.
  const loop = new EngineLoop(bundle.engine, stepDelayMs > 0 ? () => busyWait(stepDelayMs) : undefined);
  const conn = await ClusterConnection.open({ url, name });
  const queue = await RequestQueue.open(conn, queueOptions);
  const worker = await QueueWorker.start(
    { conn, queue, loop },
    { model: config.name, maxRunning: 8, retryDelayMs: 100 },
  );
  return { bundle, loop, conn, worker };
}

function request(i: number, maxTokens: number, tokenizer: EngineBundle['tokenizer']): GenerateRequest {
  return {
    id: `e2e-${i}-${maxTokens}`,
    promptIds: tokenizer.encode(prompts[i % prompts.length] ?? ''),
    params: resolveSamplingParams({ maxTokens, temperature: 0, stopAtEos: false }),
  };
}

const ids = (events: readonly TokenEvent[]) => events.filter((e) => e.tokenId >= 0).map((e) => e.tokenId);

function collect(backend: NatsBackend, req: GenerateRequest): Promise<TokenEvent[]> {
  return new Promise((resolve) => {
    const events: TokenEvent[] = [];
    backend.submit(req, (event) => {
      events.push(event);
      if (event.finishReason) resolve(events);
    });
  });
}

describe('NatsBackend → work queue → QueueWorker → EngineLoop, on a real nats-server', () => {
  let server: NatsServer;
  let oracle: { bundle: EngineBundle; loop: EngineLoop };
  let frontendConn: ClusterConnection;
  let backend: NatsBackend;
  let subscriber: TokenSubscriber;
  const engines: EngineSide[] = [];

  beforeAll(async () => {
    server = await startNatsServer();
    const bundle = await createEngine(model, {
      expertDtype: 'fp32',
      denseDtype: 'fp32',
      blockSize: 4,
      microBatches: 1,
      scheduler: { maxBatchedTokens: 64, maxRunningSequences: 8 },
    });
    oracle = { bundle, loop: new EngineLoop(bundle.engine) };
    frontendConn = await ClusterConnection.open({ url: server.url, name: 'frontend' });
    subscriber = new TokenSubscriber(frontendConn, {
      resendAfterMs: 500,
      idleTimeoutMs: 15_000,
      firstEventTimeoutMs: 15_000,
    });
    backend = new NatsBackend({
      conn: frontendConn,
      queue: await RequestQueue.open(frontendConn, queueOptions),
      tokens: subscriber,
      model: {
        modelId: config.name,
        maxContext: config.maxContext,
        vocabSize: config.vocabSize,
        tokenizer: bundle.tokenizer,
      },
      maxInFlight: 64,
    });
  });
  // Each test starts with no engine on the queue and closes the ones it opened, so no test depends on
  // the engines (or the kills) of another.
  async function closeEngines(): Promise<void> {
    for (const e of engines.splice(0)) {
      await e.worker.drain(1_000);
      await e.loop.stop(1_000);
      await e.conn.close(1_000);
      await e.bundle.close();
    }
  }
  afterEach(closeEngines);
  afterAll(async () => {
    subscriber?.close();
    await frontendConn?.close(1_000);
    await oracle?.loop.stop(1_000);
    await oracle?.bundle.close();
    await server?.stop();
  });

  it('serves concurrent requests on two engines with exactly the tokens of the engine called directly', async () => {
    engines.push(await openEngine(server.url, 'engine-1'), await openEngine(server.url, 'engine-2'));
    const tokenizer = oracle.bundle.tokenizer;
    const requests = Array.from({ length: 16 }, (_, i) => request(i, 12, tokenizer));
    const direct = await Promise.all(requests.map((r) => oracle.loop.generate({ ...r, id: `direct-${r.id}` })));
    const viaQueue = await Promise.all(requests.map((r) => collect(backend, r)));
    expect(viaQueue.map(ids)).toEqual(direct.map(ids));
    expect(viaQueue.map((events) => events.map((e) => e.index))).toEqual(
      direct.map((events) => events.map((e) => e.index)),
    );
    // Prefix-cache hits differ (each engine has its own cache); the counts do not.
    const counts = (events: readonly TokenEvent[]) => [
      events.at(-1)?.usage?.promptTokens,
      events.at(-1)?.usage?.completionTokens,
    ];
    expect(viaQueue.map(counts)).toEqual(direct.map(counts));
    expect(engines.map((e) => e.worker.numServed).every((n) => n > 0)).toBe(true);
    expect(backend.numInFlight).toBe(0);
  });

  it('answers a queued request with a token id outside the vocabulary with an error naming it, not tokens', async () => {
    engines.push(await openEngine(server.url, 'engine-vocab'));
    // Published straight to the queue, as a client past the HTTP layer would: only the engine checks it.
    const queue = await RequestQueue.open(frontendConn, queueOptions);
    const events: TokenEvent[] = [];
    const done = new Promise<void>((resolve) =>
      subscriber.open('vocab-999999', (event) => {
        events.push(event);
        if (event.finishReason) resolve();
      }),
    );
    await queue.publish(
      {
        id: 'vocab-999999',
        promptIds: [65, 999_999],
        params: resolveSamplingParams({ maxTokens: 8, temperature: 0, stopAtEos: false }),
        model: config.name,
        createdAtMs: Date.now(),
      },
      undefined,
      {},
    );
    await done;
    expect(ids(events)).toEqual([]);
    expect(events.at(-1)?.finishReason).toBe('error');
    expect(events.at(-1)?.error?.message).toContain('token id 999999 is outside the vocabulary');
  });

  it('answers a queued message that is not a valid request with an error event to its sender, never silence', async () => {
    engines.push(await openEngine(server.url, 'engine-invalid'));
    const events: TokenEvent[] = [];
    const done = new Promise<void>((resolve) =>
      subscriber.open('nested-1', (event) => {
        events.push(event);
        if (event.finishReason) resolve();
      }),
    );
    // Nested token lists: the shape check fails before any engine could run it.
    const bad = {
      id: 'nested-1',
      promptIds: [[65]],
      params: { maxTokens: 8, temperature: 0 },
      model: config.name,
      createdAtMs: Date.now(),
    };
    await frontendConn.js.publish(frontendConn.names.requestSubject(config.name), JSON.stringify(bad));
    await done;
    expect(ids(events)).toEqual([]);
    expect(events.at(-1)?.finishReason).toBe('error');
    expect(events.at(-1)?.error?.message).toMatch(/not valid.*promptIds/);
  });

  it('completes a request whose engine dies mid-generation on another engine, with no gap and no duplicate', async () => {
    const doomed = await openEngine(server.url, 'engine-doomed', 15);
    const req = request(3, 48, oracle.bundle.tokenizer);
    const direct = ids(await oracle.loop.generate({ ...req, id: 'direct-migrated' }));
    const events: TokenEvent[] = [];
    const done = new Promise<void>((resolve) =>
      backend.submit(req, (event) => {
        events.push(event);
        if (event.finishReason) resolve();
      }),
    );
    await waitFor(() => events.length >= 5, 10_000, 'the first tokens from the doomed engine');
    // kill -9, in process: the connection drops without a word and the engine stops.
    await doomed.conn.nc.close();
    await doomed.loop.stop(0);
    await doomed.bundle.close();
    const rescuer = await openEngine(server.url, 'engine-rescuer');
    engines.push(rescuer);
    await done;
    expect(events.at(-1)?.finishReason).toBe('length');
    expect(ids(events)).toEqual(direct);
    expect(events.map((e) => e.index)).toEqual(direct.map((_, i) => i));
    expect(rescuer.worker.numServed).toBe(1);
  });

  it('hands in-flight requests to another engine when a draining one runs out of time', async () => {
    const draining = await openEngine(server.url, 'engine-draining', 10);
    const req = request(5, 60, oracle.bundle.tokenizer);
    const direct = ids(await oracle.loop.generate({ ...req, id: 'direct-drained' }));
    const events: TokenEvent[] = [];
    const done = new Promise<void>((resolve) =>
      backend.submit(req, (event) => {
        events.push(event);
        if (event.finishReason) resolve();
      }),
    );
    await waitFor(() => events.length >= 3, 10_000, 'the first tokens');
    const taker = await openEngine(server.url, 'engine-taker');
    engines.push(taker, draining);
    const startMs = Date.now();
    await draining.worker.drain(200);
    expect(Date.now() - startMs).toBeLessThan(200 + queueOptions.ackWaitMs + 2_500);
    expect(draining.worker.state).toBe('stopped');
    await done;
    expect(ids(events)).toEqual(direct);
    expect(taker.worker.numServed).toBe(1);
    expect(draining.worker.numServed).toBe(0);
  });

  it('cancels on the serving engine when the client goes away', async () => {
    const slow = await openEngine(server.url, 'engine-slow', 10);
    engines.push(slow);
    const req = request(1, 200, oracle.bundle.tokenizer);
    const events: TokenEvent[] = [];
    backend.submit(req, (e) => events.push(e));
    await waitFor(() => events.length >= 2, 10_000, 'a few tokens');
    backend.abort(req.id);
    expect(events.at(-1)?.finishReason).toBe('abort');
    await waitFor(() => engines.every((e) => e.worker.numServing === 0), 5_000, 'the engine to stop it');
    expect(backend.numInFlight).toBe(0);
  });
});

function busyWait(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    // spin: a slow step
  }
}
