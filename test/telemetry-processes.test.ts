import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initModelDir } from '@switchyard/model';
import { METRIC_CATALOG, readTraceFile, type SpanRecord } from '@switchyard/telemetry';
import { startGateway, startWorker, type ManagedProcess } from '@switchyard/launcher';

let root = '';
let traceFile = '';
let worker: ManagedProcess & { address: string };
let gateway: ManagedProcess & { url: string };

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'switchyard-otel-'));
  traceFile = join(root, 'trace.jsonl');
  await initModelDir(join(root, 'tiny'), 'tiny', 4);
  const env = { SWITCHYARD_TRACE_FILE: traceFile, SWITCHYARD_TRACE_DETAIL: 'summary' };
  worker = await startWorker(join(root, 'tiny'), 'traced-worker', [], env);
  gateway = await startGateway(join(root, 'tiny'), ['--workers', worker.address], env);
}, 120_000);

afterAll(async () => {
  await gateway?.kill('SIGTERM');
  await worker?.kill('SIGTERM');
  await rm(root, { recursive: true, force: true });
});

interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
}

/** Sum of a Prometheus series' samples whose labels include all of `labels`. */
function sumOf(text: string, name: string, labels: Record<string, string>): number {
  let total = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (!Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) continue;
    total += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return total;
}

describe('telemetry across processes', () => {
  const usages: Usage[] = [];

  it('serves requests whose token counts /metrics reports exactly as the responses’ usage', async () => {
    for (const [i, prompt] of ['Hello', 'MoE tokens cost', 'abc'].entries()) {
      const res = await fetch(`${gateway.url}/v1/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'tiny', prompt, max_tokens: 3 + i, temperature: 0, ignore_eos: true }),
      });
      usages.push(((await res.json()) as { usage: Usage }).usage);
    }
    const metrics = await (await fetch(`${gateway.url}/metrics`)).text();
    // Every family is in the catalog, and a gateway with workers exports all of its engine and dispatch ones.
    const families = [...metrics.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]);
    const catalog = new Set(METRIC_CATALOG.map((m) => m.name));
    expect(families.filter((name) => !catalog.has(name ?? ''))).toEqual([]);
    const expected = METRIC_CATALOG.filter((m) => m.exportedBy === 'engine' || m.exportedBy === 'dispatch');
    expect(expected.map((m) => m.name).filter((name) => !families.includes(name))).toEqual([]);
    // Expert load is attributed to the worker by its address, as the dispatch latency is.
    expect(metrics).toContain(`switchyard_worker="${worker.address}"`);
    const input = usages.reduce((n, u) => n + u.prompt_tokens, 0);
    const output = usages.reduce((n, u) => n + u.completion_tokens, 0);
    expect(sumOf(metrics, 'gen_ai_client_token_usage_sum', { gen_ai_token_type: 'input' })).toBe(input);
    expect(sumOf(metrics, 'gen_ai_client_token_usage_sum', { gen_ai_token_type: 'output' })).toBe(output);
  }, 60_000);

  it('writes one trace that spans both processes: engine step → dispatch → worker span', async () => {
    let spans: SpanRecord[] = [];
    for (let i = 0; i < 50; i++) {
      spans = await readTraceFile(traceFile);
      if (
        spans.some((s) => s.service === 'switchyard-expert-worker') &&
        spans.some((s) => s.name.startsWith('text_completion'))
      )
        break;
      await new Promise((r) => setTimeout(r, 200));
    }
    const byId = new Map(spans.map((s) => [s.spanId, s]));
    const workerSpan = spans.find((s) => s.service === 'switchyard-expert-worker');
    expect(workerSpan).toBeDefined();
    const dispatch = byId.get(workerSpan?.parentSpanId ?? '');
    expect(dispatch?.service).toBe('switchyard-gateway');
    const step = byId.get(dispatch?.parentSpanId ?? '');
    expect(step?.service).toBe('switchyard-gateway');
    expect(new Set([workerSpan?.traceId, dispatch?.traceId, step?.traceId]).size).toBe(1);
    const request = spans.find((s) => s.name === 'text_completion tiny');
    expect(request?.attributes['gen_ai.usage.input_tokens']).toBe(usages[0]?.prompt_tokens);
  }, 30_000);
});
