import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as N from '../src/names.ts';
import { PROMETHEUS_CONTENT_TYPE, startTelemetry, telemetryOptionsFromEnv, TelemetryConfigError } from '../src/sdk.ts';
import { readTraceFile } from '../src/span-file-exporter.ts';
import { TraceFileError } from '../src/span-record.ts';

let dir = '';
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'switchyard-sdk-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('the JSON-lines span file', () => {
  it('writes one parseable span per line, and a step → dispatch → worker chain shares one trace', async () => {
    const traceFile = join(dir, 'chain.jsonl');
    const telemetry = await startTelemetry({ serviceName: 'gateway', detail: 'summary', traceFile });
    let sent: string | undefined;
    await telemetry.tracer.traceStep(
      async () => {
        const dispatch = telemetry.tracer.startDispatchSpan(1, 0, 3);
        sent = dispatch.traceparent;
        // What the worker does with RunRequest.traceparent (in its own process in production).
        telemetry.tracer.startWorkerSpan(sent, 1, 3, 'worker-0').end();
        dispatch.end();
        return { numSequences: 1 };
      },
      (stats) => ({ [N.ATTR_STEP_SEQUENCES]: stats.numSequences }),
    );
    const failed = telemetry.tracer.startRequestSpan({
      operation: 'chat',
      model: 'tiny',
      requestId: 'r-1',
      parentTraceparent: sent ?? '',
    });
    failed.end({}, Object.assign(new Error('prompt "secret words" rejected'), { code: 'prompt_too_long' }));
    await telemetry.shutdown();

    const lines = (await readFile(traceFile, 'utf8')).trim().split('\n');
    expect(lines).toHaveLength(4);
    const spans = await readTraceFile(traceFile);
    const byName = new Map(spans.map((s) => [s.name, s]));
    const step = byName.get(N.SPAN_ENGINE_STEP);
    const dispatch = byName.get(N.SPAN_EXPERT_DISPATCH);
    const run = byName.get(N.SPAN_EXPERT_RUN);
    expect(sent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    expect(step?.parentSpanId).toBeUndefined();
    expect(dispatch).toMatchObject({
      traceId: step?.traceId,
      parentSpanId: step?.spanId,
      kind: 'client',
      attributes: { [N.ATTR_LAYER]: 1, [N.ATTR_WORKER_INDEX]: 0 },
    });
    expect(run).toMatchObject({
      traceId: step?.traceId,
      parentSpanId: dispatch?.spanId,
      kind: 'server',
      attributes: { [N.ATTR_WORKER_ID]: 'worker-0' },
    });
    expect(step).toMatchObject({ service: 'gateway', attributes: { [N.ATTR_STEP_SEQUENCES]: 1 } });
    expect(step && step.endTimeUnixMs >= step.startTimeUnixMs).toBe(true);

    const request = byName.get('chat tiny');
    expect(request).toMatchObject({
      traceId: step?.traceId,
      status: { code: 'error', message: 'prompt_too_long' },
      attributes: { [N.ATTR_ERROR_TYPE]: 'prompt_too_long' },
    });
    expect(lines.join('\n')).not.toContain('secret');
  });

  it('names the file and line of a line that is not a span', async () => {
    const path = join(dir, 'bad.jsonl');
    await writeFile(path, '{"name":"x"}\n');
    await expect(readTraceFile(path)).rejects.toThrow(TraceFileError);
    await expect(readTraceFile(path)).rejects.toThrow(`${path}:1: not a span record`);
  });

  it('makes no span at detail off, and none on the worker without a traceparent', async () => {
    const traceFile = join(dir, 'off.jsonl');
    const off = await startTelemetry({ serviceName: 'gateway', detail: 'off', traceFile });
    expect(off.tracer.startDispatchSpan(0, 0, 1).traceparent).toBeUndefined();
    await off.shutdown();
    const on = await startTelemetry({ serviceName: 'worker', detail: 'summary', traceFile });
    on.tracer.startWorkerSpan(undefined, 0, 1).end();
    on.tracer.startWorkerSpan('not-a-traceparent', 0, 1).end();
    await on.shutdown();
    expect(await readFile(traceFile, 'utf8')).toBe('');
  });

  it('fails start-up naming a trace file it cannot write', async () => {
    const blocker = join(dir, 'a-file');
    await writeFile(blocker, '');
    await expect(
      startTelemetry({ serviceName: 'g', detail: 'summary', traceFile: join(blocker, 'trace.jsonl') }),
    ).rejects.toThrow(`cannot write the trace file ${join(blocker, 'trace.jsonl')}`);
  });
});

describe('OTLP export chosen by the standard OTEL_* variables', () => {
  it('posts spans to OTEL_EXPORTER_OTLP_ENDPOINT/v1/traces', async () => {
    const received: { path: string; body: string }[] = [];
    const collector = createServer((request, response) => {
      let body = '';
      request.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
      request.on('end', () => {
        received.push({ path: request.url ?? '', body });
        response.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    await new Promise<void>((resolve) => collector.listen(0, '127.0.0.1', resolve));
    const address = collector.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    const saved = process.env['OTEL_EXPORTER_OTLP_ENDPOINT'];
    process.env['OTEL_EXPORTER_OTLP_ENDPOINT'] = `http://127.0.0.1:${port}`;
    try {
      const options = telemetryOptionsFromEnv(process.env, { serviceName: 'gateway' });
      expect(options.otlpTraces).toBe(true);
      const telemetry = await startTelemetry({ ...options, otlpMetrics: false });
      telemetry.tracer.startRequestSpan({ operation: 'chat', model: 'tiny', requestId: 'otlp-1' }).end({});
      await telemetry.shutdown();
    } finally {
      if (saved === undefined) delete process.env['OTEL_EXPORTER_OTLP_ENDPOINT'];
      else process.env['OTEL_EXPORTER_OTLP_ENDPOINT'] = saved;
      await new Promise((resolve) => collector.close(resolve));
    }
    expect(received.map((r) => r.path)).toContain('/v1/traces');
    expect(received.find((r) => r.path === '/v1/traces')?.body).toContain('chat tiny');
  });
});

describe('Prometheus on its own port (a worker)', () => {
  it('serves GET /metrics with the named metrics and 404 elsewhere, and closes on shutdown', async () => {
    const telemetry = await startTelemetry({ serviceName: 'worker', detail: 'off', prometheus: { port: 0 } });
    telemetry.metrics.observeEngine({
      model: 'tiny',
      numRunning: () => 2,
      numWaiting: () => 1,
      kvUsage: () => 0.5,
      queueDepth: () => 7,
    });
    telemetry.metrics.recordPageTransfer('fetch', 3, 3 << 20);
    const url = telemetry.metricsUrl ?? '';
    const response = await fetch(url);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe(PROMETHEUS_CONTENT_TYPE);
    const text = await response.text();
    expect(text).toMatch(/^vllm:num_requests_running\{model_name="tiny"\} 2$/m);
    // The engine's waiting requests plus the queue's.
    expect(text).toMatch(/^vllm:num_requests_waiting\{model_name="tiny"\} 8$/m);
    expect(text).toMatch(/^vllm:kv_cache_usage_perc\{model_name="tiny"\} 0\.5$/m);
    expect(text).toMatch(
      /^switchyard_kv_page_transfers_total\{[^}]*switchyard_kv_transfer_direction="fetch"[^}]*\} 3$/m,
    );
    expect((await fetch(url.replace('/metrics', '/other'))).status).toBe(404);
    await telemetry.shutdown();
    await expect(fetch(url)).rejects.toThrow();
  });
});

describe('options from the environment', () => {
  it('reads the trace file, the detail and the OTLP switches', () => {
    expect(telemetryOptionsFromEnv({}, { serviceName: 'g' })).toMatchObject({
      detail: 'summary',
      otlpTraces: false,
      otlpMetrics: false,
      disabled: false,
    });
    expect(
      telemetryOptionsFromEnv(
        {
          SWITCHYARD_TRACE_FILE: '/tmp/t.jsonl',
          SWITCHYARD_TRACE_DETAIL: 'tokens',
          OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318',
          OTEL_METRICS_EXPORTER: 'none',
        },
        { serviceName: 'g', prometheus: 'handler' },
      ),
    ).toMatchObject({
      traceFile: '/tmp/t.jsonl',
      detail: 'tokens',
      otlpTraces: true,
      otlpMetrics: false,
      prometheus: 'handler',
    });
    expect(
      telemetryOptionsFromEnv({ OTEL_TRACES_EXPORTER: 'otlp', OTEL_SDK_DISABLED: 'true' }, { serviceName: 'g' }),
    ).toMatchObject({ otlpTraces: true, disabled: true });
  });

  it('names the variable of a bad value', () => {
    expect(() => telemetryOptionsFromEnv({ SWITCHYARD_TRACE_DETAIL: 'all' }, { serviceName: 'g' })).toThrow(
      TelemetryConfigError,
    );
    expect(() => telemetryOptionsFromEnv({ SWITCHYARD_TRACE_DETAIL: 'all' }, { serviceName: 'g' })).toThrow(
      'SWITCHYARD_TRACE_DETAIL must be one of off, summary, tokens, got "all"',
    );
  });
});
