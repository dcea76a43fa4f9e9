import { afterEach, describe, expect, it, vi } from 'vitest';
import { createByteTokenizer, resolveSamplingParams, type TokenEvent, type TokenSink } from '@switchyard/engine';
import { NatsBackend, type NatsBackendParts } from '../src/nats-backend.ts';
import type { RequestMessage } from '../src/request-message.ts';

/** A queue that records what is published and removed, and token streams whose sinks the test drives. */
function fakes() {
  const published: { message: RequestMessage; attempt: number | undefined }[] = [];
  const removed: number[] = [];
  const sinks = new Map<string, TokenSink>();
  const queue = {
    publish: (message: RequestMessage, _trace: unknown, options: { attempt?: number } = {}) => {
      published.push({ message, attempt: options.attempt });
      return Promise.resolve({ seq: published.length });
    },
    remove: (seq: number) => {
      removed.push(seq);
      return Promise.resolve(true);
    },
  };
  const tokens = {
    open: (requestId: string, sink: TokenSink) => {
      sinks.set(requestId, sink);
      return { requestId, numForwarded: 0, close: () => {}, fail: () => {} };
    },
    cancel: () => {},
  };
  return { published, removed, sinks, queue, tokens };
}

const params = resolveSamplingParams({ maxTokens: 8, temperature: 0 });
const event = (requestId: string, index: number): TokenEvent => ({ requestId, index, tokenId: 65, text: 'A' });

afterEach(() => void vi.useRealTimers());

describe('NatsBackend rerouting', () => {
  it('publishes a started shared-queue request again once its engine has been silent for rerouteAfterMs, and only once', async () => {
    vi.useFakeTimers();
    const f = fakes();
    let now = 0;
    const backend = new NatsBackend({
      conn: { isConnected: true },
      queue: f.queue,
      tokens: f.tokens,
      model: { modelId: 'tiny', maxContext: 256, vocabSize: 258, tokenizer: createByteTokenizer() },
      maxInFlight: 8,
      rerouteAfterMs: 5_000,
      now: () => now,
    } as unknown as NatsBackendParts);
    const seen: TokenEvent[] = [];
    // No router: both go to the shared queue. One starts generating, the other waits its turn.
    backend.submit({ id: 'started', promptIds: [1, 2], params }, (e) => seen.push(e));
    backend.submit({ id: 'waiting', promptIds: [1, 2], params }, () => {});
    await vi.advanceTimersByTimeAsync(0);
    f.sinks.get('started')?.(event('started', 0));
    // Its engine dies: nothing more arrives.
    now = 4_000;
    await vi.advanceTimersByTimeAsync(1_000);
    expect(f.published).toHaveLength(2);
    now = 5_100;
    await vi.advanceTimersByTimeAsync(1_000);
    // Taken off the stream and published again for any engine; the request that never started is left alone.
    expect(f.published.map((p) => [p.message.id, p.attempt])).toEqual([
      ['started', undefined],
      ['waiting', undefined],
      ['started', 1],
    ]);
    expect(f.removed).toEqual([1]);
    now = 20_000;
    await vi.advanceTimersByTimeAsync(2_000);
    expect(f.published).toHaveLength(3);
    expect(backend.routing.rerouted).toBe(1);
    expect(seen.map((e) => e.index)).toEqual([0]);
    backend.close();
  });
});
