import { describe, expect, it } from 'vitest';
import { decodeRequestMessage, encodeRequestMessage, type RequestMessage } from '../src/request-message.ts';
import { decodeTokenEvent, encodeTokenEvent } from '../src/token-message.ts';
import { IndexDedup } from '../src/index-dedup.ts';
import { InvalidMessageError, RemoteGenerationError } from '../src/errors.ts';
import { getTraceContext, setTraceContext } from '../src/trace-context.ts';
import { decodePlacement } from '../src/placement-store.ts';
import { decodeWorker } from '../src/worker-registry.ts';

const params = { maxTokens: 8, temperature: 0, topK: 0, topP: 1, seed: 7, stop: ['\n'], stopAtEos: true };
const request: RequestMessage = {
  id: 'cmpl-1',
  promptIds: [1, 2, 3],
  params,
  cacheSalt: 'tenant',
  model: 'tiny',
  createdAtMs: 1_700_000_000_000,
};

describe('request messages', () => {
  it('round-trip through JSON', () => {
    expect(decodeRequestMessage(encodeRequestMessage(request))).toEqual(request);
  });

  it('carry the frontend’s routing decision for the serving engine’s span, and refuse an unknown target', () => {
    const route = {
      mode: 'kv',
      target: 'engine' as const,
      engineId: 'gateway-1',
      overlapBlocks: 6,
      promptBlocks: 8,
      score: 0.7,
    };
    expect(decodeRequestMessage(encodeRequestMessage({ ...request, route }))).toEqual({ ...request, route });
    expect(() =>
      decodeRequestMessage(JSON.stringify({ ...request, route: { ...route, target: 'elsewhere' } })),
    ).toThrow(/route.target/);
  });

  it('carry the id of the frontend that reads the tokens', () => {
    const withFrontend = { ...request, frontendId: 'gateway-1' };
    expect(decodeRequestMessage(encodeRequestMessage(withFrontend))).toEqual(withFrontend);
  });

  it('name the first bad field of an invalid message', () => {
    expect(() => decodeRequestMessage('{not json')).toThrow(InvalidMessageError);
    expect(() => decodeRequestMessage(JSON.stringify({ ...request, promptIds: [1, -2] }))).toThrow(/promptIds/);
    expect(() => decodeRequestMessage(JSON.stringify({ ...request, params: { ...params, seed: 1.5 } }))).toThrow(
      /seed/,
    );
    expect(() => decodeRequestMessage(JSON.stringify({ ...request, model: '' }))).toThrow(/model/);
  });
});

describe('token events', () => {
  it('round-trip, the error becoming a RemoteGenerationError with its name and code', () => {
    const usage = { promptTokens: 3, completionTokens: 1, cachedPromptTokens: 0 };
    expect(decodeTokenEvent(encodeTokenEvent({ requestId: 'r', index: 0, tokenId: 65, text: 'A' }))).toEqual({
      requestId: 'r',
      index: 0,
      tokenId: 65,
      text: 'A',
    });
    const failure = Object.assign(new Error('workers gone'), { name: 'DispatchError', code: 'unavailable' });
    const decoded = decodeTokenEvent(
      encodeTokenEvent({
        requestId: 'r',
        index: 1,
        tokenId: -1,
        text: '',
        finishReason: 'error',
        usage,
        error: failure,
      }),
    );
    expect(decoded.usage).toEqual(usage);
    expect(decoded.error).toBeInstanceOf(RemoteGenerationError);
    expect(decoded.error).toMatchObject({
      message: 'workers gone',
      remoteName: 'DispatchError',
      remoteCode: 'unavailable',
    });
  });
});

describe('logprobs on the wire', () => {
  const logprob = {
    tokenId: 65,
    logprob: -0.25,
    top: [
      { tokenId: 65, logprob: -0.25 },
      { tokenId: 66, logprob: -1.5 },
    ],
  };
  const event = { requestId: 'r', index: 0, tokenId: 65, text: 'A', logprob, promptLogprobs: [null, logprob] };

  it('round-trip a token logprob, its alternatives and the prompt logprobs exactly', () => {
    expect(decodeTokenEvent(encodeTokenEvent(event))).toEqual(event);
    const withCounts = { ...request, params: { ...params, logprobs: 5, promptLogprobs: 0 } };
    expect(decodeRequestMessage(encodeRequestMessage(withCounts))).toEqual(withCounts);
  });

  it.each([
    ['a logprob for another token', { logprob: { ...logprob, tokenId: 66 } }, /logprob.tokenId/],
    ['a positive logprob', { logprob: { ...logprob, logprob: 0.1 } }, /logprob/],
    ['a logprob sent as a string', { logprob: { ...logprob, logprob: '-0.25' } }, /logprob/],
    ['a null logprob (no -Infinity in JSON)', { logprob: { ...logprob, logprob: null } }, /logprob/],
    ['a fractional alternative id', { logprob: { ...logprob, top: [{ tokenId: 1.5, logprob: -1 }] } }, /tokenId/],
    ['an unknown field', { logprob: { ...logprob, rank: 1 } }, /unknown field/],
    ['an unknown field in an alternative', { logprob: { ...logprob, top: [{ ...logprob.top[0], x: 1 }] } }, /x/],
    ['too many alternatives', { logprob: { ...logprob, top: Array(21).fill(logprob.top[0]) } }, /at most 20/],
    ['top as an object', { logprob: { ...logprob, top: {} } }, /top/],
    ['prompt logprobs not starting with null', { promptLogprobs: [logprob] }, /promptLogprobs/],
    ['an empty prompt logprobs list', { promptLogprobs: [] }, /promptLogprobs/],
    ['a null past the first prompt token', { promptLogprobs: [null, null] }, /promptLogprobs\[1\]/],
    ['prompt logprobs past index 0', { index: 1, promptLogprobs: [null] }, /index 0/],
  ])('refuse %s', (_what, change, message) => {
    expect(() => decodeTokenEvent(JSON.stringify({ ...event, ...change }))).toThrow(message);
  });

  it('refuse logprob counts that are not non-negative integers in a request', () => {
    for (const bad of [-1, 1.5, '3', true, null]) {
      expect(() => decodeRequestMessage(JSON.stringify({ ...request, params: { ...params, logprobs: bad } }))).toThrow(
        /logprobs/,
      );
      expect(() =>
        decodeRequestMessage(JSON.stringify({ ...request, params: { ...params, promptLogprobs: bad } })),
      ).toThrow(/promptLogprobs/);
    }
  });
});

describe('IndexDedup', () => {
  it('forwards each index once and in order across a replay, and nothing after the final event', () => {
    const dedup = new IndexDedup();
    const verdicts = [0, 1, 2, 0, 1, 2, 3, 5, 4].map((index) => dedup.accept({ index, tokenId: 10 + index }));
    expect(verdicts).toEqual([
      'forward',
      'forward',
      'forward',
      'duplicate',
      'duplicate',
      'duplicate',
      'forward',
      'gap',
      'forward',
    ]);
    expect(dedup.accept({ index: 5, tokenId: 15, finishReason: 'length' })).toBe('forward');
    expect(dedup.accept({ index: 6, tokenId: 16 })).toBe('duplicate');
    expect(dedup.isFinished).toBe(true);
    expect(dedup.nextIndex).toBe(6);
  });

  it('ends on a tokenless error event from a try that got less far than an earlier one', () => {
    const dedup = new IndexDedup();
    for (const index of [0, 1, 2]) dedup.accept({ index, tokenId: 1 });
    expect(dedup.accept({ index: 0, tokenId: -1, finishReason: 'error' })).toBe('forward');
    expect(dedup.isFinished).toBe(true);
  });
});

describe('trace context', () => {
  it('travels in headers and drops a malformed traceparent', () => {
    const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    expect(getTraceContext(setTraceContext({ traceparent, tracestate: 'a=1' }))).toEqual({
      traceparent,
      tracestate: 'a=1',
    });
    expect(getTraceContext(setTraceContext({ traceparent: 'nope' }))).toBeUndefined();
    expect(getTraceContext(undefined)).toBeUndefined();
  });
});

describe('KV values', () => {
  it('checks a placement against its own shape', () => {
    const placement = { revision: 1, numLayers: 1, numExperts: 2, workers: ['w0', 'w1'], replicas: [[[0], [1]]] };
    expect(decodePlacement(JSON.stringify(placement))).toEqual(placement);
    expect(() => decodePlacement(JSON.stringify({ ...placement, replicas: [[[0], [2]]] }))).toThrow(/replicas/);
  });

  it('checks a worker record', () => {
    const worker = {
      id: 'w0',
      address: '127.0.0.1:1',
      model: 'tiny',
      experts: [[0, 1]],
      executionProvider: 'cpu',
      load: { numInFlight: 0 },
    };
    expect(decodeWorker(JSON.stringify(worker))).toEqual(worker);
    expect(() => decodeWorker(JSON.stringify({ ...worker, experts: [[0]] }))).toThrow(/experts/);
  });
});
