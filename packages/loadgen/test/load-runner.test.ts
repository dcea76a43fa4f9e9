import { afterEach, describe, expect, it } from 'vitest';
import { runLoad, type LoadPlan } from '../src/load-runner.ts';
import type { CompletionTarget } from '../src/openai-stream.ts';
import type { BenchRequest } from '../src/request-output.ts';
import { SseReader } from '../src/sse-reader.ts';
import { startFakeServer, type FakeServer } from './helpers/fake-openai-server.ts';

const requests = (n: number, outputLen: number, first = 1): BenchRequest[] =>
  Array.from({ length: n }, (_, i) => ({ promptIds: [i === 0 ? first : 1, 2, 3], outputLen }));
const plan = (reqs: BenchRequest[], overrides: Partial<LoadPlan> = {}): LoadPlan => ({
  requests: reqs,
  arrivalsMs: reqs.map(() => 0),
  maxConcurrency: Infinity,
  durationMs: Infinity,
  gracePeriodMs: 0,
  ...overrides,
});
const target = (server: FakeServer): CompletionTarget => ({
  baseUrl: server.url,
  model: 'fake',
  temperature: 0,
  requestTimeoutMs: 10_000,
});
const noAbort = () => ({ signal: new AbortController().signal });

let server: FakeServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

describe('SSE reader', () => {
  it('yields data payloads whole, however the bytes are split, skipping comments', () => {
    const text = 'data: {"a":1}\n\n: ping\n\ndata: {"b":\r\n\r\ndata: [DONE]\n\n';
    const bytes = new TextEncoder().encode(text);
    const reader = new SseReader();
    const out: string[] = [];
    for (let i = 0; i < bytes.length; i += 3) out.push(...reader.push(bytes.subarray(i, i + 3)));
    out.push(...reader.finish());
    expect(out).toEqual(['{"a":1}', '{"b":', '[DONE]']);
  });
});

describe('load runner against a streaming server', () => {
  it('times TTFT at the first token chunk and an ITL gap at every later one, with usage counts', async () => {
    server = await startFakeServer({ firstTokenMs: 60, tokenIntervalMs: 15 });
    const result = await runLoad(plan(requests(1, 5)), target(server), noAbort());
    const [o] = result.outputs;
    expect(o?.success).toBe(true);
    expect(o?.outputTokens).toBe(5);
    expect(o?.promptLen).toBe(3);
    expect(o?.ttftMs).toBeGreaterThanOrEqual(55);
    expect(o?.itlMs).toHaveLength(4);
    // Delivery jitters one gap against the next; the last chunk cannot come before the server's waits.
    for (const gap of o?.itlMs ?? []) expect(gap).toBeGreaterThanOrEqual(0);
    expect(o?.latencyMs).toBeGreaterThanOrEqual(60 + 4 * 15 - 2);
    expect(o?.latencyMs).toBeCloseTo((o?.ttftMs ?? 0) + (o?.itlMs ?? []).reduce((a, b) => a + b, 0), 6);
    expect(o?.generatedText).toBe('xxxxx');
  });

  it('keeps at most --max-concurrency requests in flight', async () => {
    server = await startFakeServer({ firstTokenMs: 20, tokenIntervalMs: 5 });
    const result = await runLoad(plan(requests(6, 3), { maxConcurrency: 2 }), target(server), noAbort());
    expect(result.outputs.filter((o) => o.success)).toHaveLength(6);
    expect(server.peakInFlight()).toBe(2);
    expect(Math.max(...result.outputs.map((o) => o.queueMs))).toBeGreaterThan(20);
  });

  it('releases requests at their arrival times, open loop', async () => {
    server = await startFakeServer({ firstTokenMs: 5, tokenIntervalMs: 5 });
    const result = await runLoad(plan(requests(3, 2), { arrivalsMs: [0, 100, 200] }), target(server), noAbort());
    const starts = result.outputs.map((o) => o.startMs);
    expect(starts[1]).toBeGreaterThanOrEqual(95);
    expect(starts[2]).toBeGreaterThanOrEqual(195);
    expect(result.durationMs).toBeGreaterThanOrEqual(195);
  });

  it('records an HTTP error as a failed request with the server message', async () => {
    server = await startFakeServer({ firstTokenMs: 5, tokenIntervalMs: 5, rejectPromptStartingWith: 99 });
    const result = await runLoad(plan(requests(2, 2, 99)), target(server), noAbort());
    expect(result.outputs.map((o) => o.success)).toEqual([false, true]);
    expect(result.outputs[0]?.error).toBe('HTTP 400: bad prompt');
    expect(result.outputs[0]?.cancelled).toBe(false);
  });

  it('stops releasing at the duration bound and cancels what is still running after the grace period', async () => {
    server = await startFakeServer({ firstTokenMs: 10, tokenIntervalMs: 100 });
    const reqs = requests(10, 20);
    const result = await runLoad(
      plan(reqs, { arrivalsMs: reqs.map((_, i) => i * 50), durationMs: 120, gracePeriodMs: 50 }),
      target(server),
      noAbort(),
    );
    expect(result.outputs).toHaveLength(3);
    expect(result.numNotSent).toBe(7);
    expect(result.outputs.every((o) => o.cancelled && !o.success)).toBe(true);
    expect(result.interrupted).toBe(false);
    expect(result.durationMs).toBeLessThan(1000);
  });

  it('on abort (Ctrl-C) cancels requests in flight and returns what was measured', async () => {
    server = await startFakeServer({ firstTokenMs: 5, tokenIntervalMs: 100 });
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 150);
    const reqs = [...requests(1, 1), ...requests(3, 50)];
    const result = await runLoad(plan(reqs, { maxConcurrency: 2 }), target(server), { signal: controller.signal });
    expect(result.interrupted).toBe(true);
    expect(result.outputs.filter((o) => o.success)).toHaveLength(1);
    expect(result.outputs.filter((o) => o.cancelled).length).toBeGreaterThanOrEqual(1);
    expect(result.outputs.length + result.numNotSent).toBe(4);
  });
});
