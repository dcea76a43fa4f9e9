import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initModelDir } from '@switchyard/model';
import { readTraceFile, type SpanRecord } from '@switchyard/telemetry';
import { startGateway, type ManagedProcess, startNatsServer, type NatsServer } from '@switchyard/launcher';

let root = '';
let traceFile = '';
let nats: NatsServer;
let gateway: ManagedProcess & { url: string };

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'switchyard-otel-nats-'));
  traceFile = join(root, 'trace.jsonl');
  await initModelDir(join(root, 'tiny'), 'tiny', 6);
  nats = await startNatsServer();
  gateway = await startGateway(join(root, 'tiny'), ['--nats-url', nats.url], { SWITCHYARD_TRACE_FILE: traceFile });
}, 120_000);

afterAll(async () => {
  await gateway?.kill('SIGTERM');
  await nats?.stop();
  await rm(root, { recursive: true, force: true });
});

describe('telemetry on the NATS request queue path', () => {
  it('traces a queued request on the engine that serves it, joined to the client’s trace, and counts its tokens', async () => {
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const res = await fetch(`${gateway.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', traceparent: `00-${traceId}-00f067aa0ba902b7-01` },
      body: JSON.stringify({
        model: 'tiny',
        messages: [{ role: 'user', content: 'hi' }],
        max_tokens: 4,
        temperature: 0,
        ignore_eos: true,
      }),
    });
    const usage = ((await res.json()) as { usage: { prompt_tokens: number; completion_tokens: number } }).usage;
    let request: SpanRecord | undefined;
    for (let i = 0; i < 50 && !request; i++) {
      request = (await readTraceFile(traceFile).catch(() => [])).find((s) => s.name === 'chat tiny');
      if (!request) await new Promise((r) => setTimeout(r, 200));
    }
    expect(request?.traceId).toBe(traceId);
    expect(request?.attributes['gen_ai.operation.name']).toBe('chat');
    expect(request?.attributes['gen_ai.usage.input_tokens']).toBe(usage.prompt_tokens);
    expect(request?.attributes['gen_ai.usage.output_tokens']).toBe(usage.completion_tokens);
    // The frontend's routing decision travels with the request onto the serving engine's span.
    expect(request?.attributes['switchyard.route.mode']).toBe('kv');
    expect(['engine', 'shared']).toContain(request?.attributes['switchyard.route.target']);
    expect(request?.attributes['switchyard.route.prompt_blocks']).toBe(Math.floor(usage.prompt_tokens / 16));
    const metrics = await (await fetch(`${gateway.url}/metrics`)).text();
    const output = metrics
      .split('\n')
      .find((l) => l.startsWith('gen_ai_client_token_usage_sum{') && l.includes('gen_ai_token_type="output"'));
    expect(Number(output?.slice(output.lastIndexOf(' ') + 1))).toBe(usage.completion_tokens);
  }, 60_000);
});
