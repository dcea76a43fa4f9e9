/**
 * Fuzz: request messages published straight to the JetStream work queue (as a client past the HTTP
 * layer could), against an engine (QueueWorker + EngineLoop, the tiny model) on its own nats-server.
 * Every message that names itself with an id gets a final event on its token subject — tokens and a
 * finish, or an error saying why — never silence; and the engine serves a valid request afterwards.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { getPreset, randomWeights } from '@switchyard/model';
import { EngineLoop, type EngineBundle, type TokenEvent } from '@switchyard/engine';
import { createEngine } from '@switchyard/onnx';
import { ClusterConnection, QueueWorker, RequestQueue, TokenSubscriber } from '@switchyard/cluster';
import { startNatsServer, type NatsServer } from '@switchyard/launcher';
import { FUZZ_RUNS, FUZZ_TIMEOUT_MS } from './runs.ts';

const config = getPreset('tiny');
let nats: NatsServer;
let bundle: EngineBundle;
let loop: EngineLoop;
let engineConn: ClusterConnection;
let clientConn: ClusterConnection;
let worker: QueueWorker;
let tokens: TokenSubscriber;

beforeAll(async () => {
  nats = await startNatsServer();
  bundle = await createEngine(
    { config, weights: randomWeights(config, 6), weightsDigest: '12'.repeat(32) },
    {
      expertDtype: 'fp32',
      denseDtype: 'fp32',
      blockSize: 4,
      scheduler: { maxBatchedTokens: 256, maxRunningSequences: 16 },
    },
  );
  loop = new EngineLoop(bundle.engine);
  engineConn = await ClusterConnection.open({ url: nats.url, name: 'fuzz-engine' });
  const queueOptions = { ackWaitMs: 5_000, heartbeatIntervalMs: 1_000 };
  worker = await QueueWorker.start(
    { conn: engineConn, queue: await RequestQueue.open(engineConn, queueOptions), loop },
    { model: config.name, maxRunning: 16, retryDelayMs: 100 },
  );
  clientConn = await ClusterConnection.open({ url: nats.url, name: 'fuzz-client' });
  await RequestQueue.open(clientConn, queueOptions);
  tokens = new TokenSubscriber(clientConn, {
    resendAfterMs: 1_000,
    idleTimeoutMs: 10_000,
    firstEventTimeoutMs: 10_000,
  });
}, 60_000);

afterAll(async () => {
  tokens?.close();
  await worker?.drain(1_000);
  await loop?.stop(1_000);
  await clientConn?.close(1_000);
  await engineConn?.close(1_000);
  await bundle?.close();
  await nats?.stop();
});

const anyValue = fc.oneof(
  fc.anything({ maxDepth: 2 }),
  fc.integer({ min: -5, max: 300 }),
  fc.constantFrom(1e9, -1, 1.5, 2 ** 53, Number.MAX_VALUE, '', 'tiny'),
  fc.array(fc.array(fc.integer({ min: 0, max: 300 }), { maxLength: 3 }), { maxLength: 3 }),
);
const validParams = fc.record(
  {
    maxTokens: fc.integer({ min: 1, max: 3 }),
    temperature: fc.constantFrom(0, 0.8),
    topK: fc.constant(0),
    topP: fc.constant(1),
    seed: fc.integer({ min: 0, max: 1000 }),
    stop: fc.constant([] as string[]),
    stopAtEos: fc.boolean(),
    logprobs: fc.integer({ min: 0, max: 20 }),
    promptLogprobs: fc.integer({ min: 0, max: 20 }),
  },
  { requiredKeys: ['maxTokens', 'temperature', 'topK', 'topP', 'seed', 'stop', 'stopAtEos'] },
);
/** A valid message, or one with a top-level field or a sampling parameter replaced by anything. */
const message = fc
  .tuple(
    fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 1, maxLength: 8 }),
    validParams,
    fc.option(
      fc.oneof(
        fc.tuple(
          fc.constant('top'),
          fc.constantFrom('promptIds', 'params', 'model', 'createdAtMs', 'cacheSalt', 'operation', 'route'),
          anyValue,
        ),
        fc.tuple(
          fc.constant('param'),
          fc.constantFrom(
            'maxTokens',
            'temperature',
            'topK',
            'topP',
            'seed',
            'stop',
            'stopAtEos',
            'logprobs',
            'promptLogprobs',
          ),
          anyValue,
        ),
        fc.tuple(
          fc.constant('drop'),
          fc.constantFrom('promptIds', 'params', 'model', 'createdAtMs'),
          fc.constant(undefined),
        ),
      ),
      { freq: 4 },
    ),
  )
  .map(([promptIds, params, change]) => {
    const base: Record<string, unknown> = {
      promptIds,
      params: { ...params },
      model: config.name,
      createdAtMs: Date.now(),
    };
    if (change === null) return base;
    const [where, key, value] = change;
    if (where === 'top') base[key] = value;
    else if (where === 'param') (base['params'] as Record<string, unknown>)[key] = value;
    else delete base[key];
    return base;
  });

let counter = 0;

function finalEvent(id: string): Promise<TokenEvent> {
  return new Promise((resolve) => {
    tokens.open(id, (event) => {
      if (event.finishReason !== undefined) resolve(event);
    });
  });
}

describe(`fuzz: queued request messages (${FUZZ_RUNS} cases)`, () => {
  it(
    'ends every message that has an id with a final event (tokens and a finish, or an error), and keeps serving',
    async () => {
      const outcomes = new Map<string, number>();
      await fc.assert(
        fc.asyncProperty(message, async (body) => {
          const id = `fz-${++counter}`;
          const done = finalEvent(id);
          await clientConn.js.publish(clientConn.names.requestSubject(config.name), JSON.stringify({ id, ...body }));
          const last = await done;
          const outcome = last.finishReason === 'error' ? `error` : `finish:${last.finishReason}`;
          outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
          // The subscriber's own timeout also ends with an error: that would be silence, not an answer.
          expect(last.error?.message ?? '').not.toMatch(/no engine started/);
        }),
        { numRuns: FUZZ_RUNS },
      );
      process.stderr.write(
        `fuzz queue: ${FUZZ_RUNS} messages, outcomes ${JSON.stringify(Object.fromEntries(outcomes))}\n`,
      );
      expect(outcomes.get('error') ?? 0).toBeGreaterThan(0);
      expect([...outcomes.keys()].some((k) => k.startsWith('finish:'))).toBe(true);
      const last = await (async () => {
        const done = finalEvent('fz-after');
        await clientConn.js.publish(
          clientConn.names.requestSubject(config.name),
          JSON.stringify({
            id: 'fz-after',
            promptIds: [72, 105],
            params: { maxTokens: 2, temperature: 0, topK: 0, topP: 1, seed: 1, stop: [], stopAtEos: false },
            model: config.name,
            createdAtMs: Date.now(),
          }),
        );
        return done;
      })();
      expect(last.finishReason).toBe('length');
    },
    FUZZ_TIMEOUT_MS,
  );
});
