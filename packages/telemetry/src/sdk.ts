/**
 * OpenTelemetry start-up for a Switchyard process: NodeSDK with our span processors and metric readers,
 * started before the service code and shut down last, within a deadline.
 *
 * - Traces: a JSON-lines file (`traceFile`, from SWITCHYARD_TRACE_FILE) and/or OTLP over HTTP when the
 *   standard OTEL_* variables ask for it (the OTLP exporters read their own OTEL_EXPORTER_OTLP_*).
 * - Metrics: Prometheus text named by the OpenTelemetry → Prometheus specification (as the Collector
 *   names the OTLP path's metrics; prometheus-exposition.ts), either rendered on demand (`prometheus: 'handler'`: the gateway serves it
 *   at GET /metrics on its own HTTP server) or served by a small HTTP server of ours on a port (a worker);
 *   and/or OTLP.
 * - Resource: service.name (+ instance id), OTEL_RESOURCE_ATTRIBUTES and the host name. NOTE: the
 *   process detector is left out on purpose: it records the command line, which may hold a prompt.
 */
import { appendFile, mkdir } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { dirname } from 'node:path';
import { context, metrics, propagation, trace } from '@opentelemetry/api';
import type { IMetricReader } from '@opentelemetry/sdk-metrics';
import type { SpanProcessor } from '@opentelemetry/sdk-trace';
import { SwitchyardMetrics } from './metrics.ts';
import { PROMETHEUS_CONTENT_TYPE, renderExposition } from './prometheus-exposition.ts';
import { ATTR_SERVICE_INSTANCE_ID, ATTR_SERVICE_NAME } from './names.ts';
import { SwitchyardTracer, TRACE_DETAILS, type TraceDetail } from './request-tracer.ts';
import { JsonLinesSpanExporter } from './span-file-exporter.ts';

export { PROMETHEUS_CONTENT_TYPE };
const INSTRUMENTATION_SCOPE = '@switchyard/telemetry';

export interface PrometheusServerOptions {
  readonly port: number;
  readonly host?: string;
}

export interface TelemetryOptions {
  readonly serviceName: string;
  readonly serviceInstanceId?: string;
  /** Span detail; effective `off` when no span destination is configured. */
  readonly detail: TraceDetail;
  /** JSON-lines span file (SWITCHYARD_TRACE_FILE). */
  readonly traceFile?: string;
  /** Export spans / metrics over OTLP (the exporters read OTEL_EXPORTER_OTLP_*). */
  readonly otlpTraces?: boolean;
  readonly otlpMetrics?: boolean;
  /** 'handler': render on demand with `renderPrometheus()`; a port: serve GET /metrics there. */
  readonly prometheus?: PrometheusServerOptions | 'handler';
  /** OTEL_SDK_DISABLED: nothing is started, every recorder is a no-op. */
  readonly disabled?: boolean;
  /** Upper bound of `shutdown()`; default 5000. */
  readonly shutdownTimeoutMs?: number;
}

export class TelemetryConfigError extends Error {
  override readonly name = 'TelemetryConfigError';
  readonly code = 'invalid_telemetry_config' as const;
}

/** A started telemetry pipeline. `shutdown()` flushes and unregisters the OpenTelemetry globals. */
export interface Telemetry {
  readonly options: TelemetryOptions;
  readonly tracer: SwitchyardTracer;
  readonly metrics: SwitchyardMetrics;
  /** `http://host:port/metrics` of our Prometheus server, when one was started. */
  readonly metricsUrl: string | undefined;
  /** Prometheus text exposition of every metric ('' without Prometheus). */
  renderPrometheus(): Promise<string>;
  forceFlush(): Promise<void>;
  shutdown(): Promise<void>;
}

type Env = Readonly<Record<string, string | undefined>>;

/**
 * Telemetry options from the environment: SWITCHYARD_TRACE_FILE, SWITCHYARD_TRACE_DETAIL
 * (off | summary | tokens; default summary) and the standard OTEL_* switches. Call it from main.ts with
 * `process.env`; throws TelemetryConfigError naming the variable on a bad value.
 */
export function telemetryOptionsFromEnv(
  env: Env,
  base: {
    readonly serviceName: string;
    readonly serviceInstanceId?: string;
    readonly prometheus?: PrometheusServerOptions | 'handler';
  },
): TelemetryOptions {
  const detail = env['SWITCHYARD_TRACE_DETAIL'] ?? 'summary';
  if (!(TRACE_DETAILS as readonly string[]).includes(detail)) {
    throw new TelemetryConfigError(
      `SWITCHYARD_TRACE_DETAIL must be one of ${TRACE_DETAILS.join(', ')}, got "${detail}"`,
    );
  }
  const traceFile = env['SWITCHYARD_TRACE_FILE'];
  return Object.freeze({
    ...base,
    detail: detail as TraceDetail,
    ...(traceFile ? { traceFile } : {}),
    otlpTraces: wantsOtlp(env, 'TRACES'),
    otlpMetrics: wantsOtlp(env, 'METRICS'),
    disabled: (env['OTEL_SDK_DISABLED'] ?? '').trim().toLowerCase() === 'true',
  });
}

/** OTLP is on when OTEL_{SIGNAL}_EXPORTER lists `otlp`, or is unset and an OTLP endpoint is set. */
function wantsOtlp(env: Env, signal: 'TRACES' | 'METRICS'): boolean {
  const exporters = (env[`OTEL_${signal}_EXPORTER`] ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (exporters.length > 0) return exporters.includes('otlp');
  return Boolean(env['OTEL_EXPORTER_OTLP_ENDPOINT'] || env[`OTEL_EXPORTER_OTLP_${signal}_ENDPOINT`]);
}

/**
 * Starts NodeSDK with Switchyard's processors and readers (one per process: the OpenTelemetry API
 * globals are process-wide) and, for a port, the Prometheus server — listening before this resolves,
 * so a busy port fails start-up.
 */
export async function startTelemetry(input: TelemetryOptions): Promise<Telemetry> {
  const options = Object.freeze({ ...input });
  const {
    BatchSpanProcessor,
    envDetector,
    hostDetector,
    NodeSDK,
    OTLPMetricExporter,
    OTLPTraceExporter,
    PeriodicExportingMetricReader,
    PrometheusExporter,
    resourceFromAttributes,
  } = await loadSdk();
  const spanProcessors: SpanProcessor[] = [];
  if (!options.disabled && options.detail !== 'off') {
    const batch = { maxQueueSize: 65_536, maxExportBatchSize: 4096, scheduledDelayMillis: 500 };
    if (options.traceFile) await ensureWritable(options.traceFile);
    if (options.traceFile)
      spanProcessors.push(new BatchSpanProcessor({ exporter: new JsonLinesSpanExporter(options.traceFile), ...batch }));
    if (options.otlpTraces)
      spanProcessors.push(new BatchSpanProcessor({ exporter: new OTLPTraceExporter(), ...batch }));
  }
  const prometheus =
    !options.disabled && options.prometheus ? new PrometheusExporter({ preventServerStart: true }) : undefined;
  const metricReaders: IMetricReader[] = [];
  if (prometheus) metricReaders.push(prometheus);
  if (!options.disabled && options.otlpMetrics)
    metricReaders.push(new PeriodicExportingMetricReader({ exporter: new OTLPMetricExporter() }));

  const sdk = options.disabled
    ? undefined
    : new NodeSDK({
        resource: resourceFromAttributes({
          [ATTR_SERVICE_NAME]: options.serviceName,
          ...(options.serviceInstanceId ? { [ATTR_SERVICE_INSTANCE_ID]: options.serviceInstanceId } : {}),
        }),
        resourceDetectors: [envDetector, hostDetector],
        spanProcessors,
        metricReaders,
        logRecordProcessors: [],
        instrumentations: [],
        // Detail `tokens` puts one event per computed token on a request span: lift the 128-event default.
        ...(options.detail === 'tokens' ? { spanLimits: { eventCountLimit: 1 << 20 } } : {}),
      });
  sdk?.start();

  const detail: TraceDetail = spanProcessors.length > 0 ? options.detail : 'off';
  const tracer = new SwitchyardTracer(trace.getTracer(INSTRUMENTATION_SCOPE), detail);
  const meterInstance = new SwitchyardMetrics(metrics.getMeter(INSTRUMENTATION_SCOPE));
  const renderPrometheus = async (): Promise<string> => {
    if (!prometheus) return '';
    const { resourceMetrics } = await prometheus.collect();
    return renderExposition(resourceMetrics);
  };

  let server: Server | undefined;
  let metricsUrl: string | undefined;
  if (prometheus && options.prometheus !== 'handler' && options.prometheus) {
    try {
      ({ server, url: metricsUrl } = await servePrometheus(options.prometheus, renderPrometheus));
    } catch (error) {
      await sdk?.shutdown();
      disableGlobals();
      throw error;
    }
  }

  let shutdown: Promise<void> | undefined;
  return {
    options,
    tracer,
    metrics: meterInstance,
    metricsUrl,
    renderPrometheus,
    forceFlush: async () => {
      await Promise.all(spanProcessors.map((p) => p.forceFlush()));
    },
    shutdown: () => {
      shutdown ??= shutdownWithin(options.shutdownTimeoutMs ?? 5000, async () => {
        await closeServer(server);
        await sdk?.shutdown();
      });
      return shutdown;
    },
  };
}

/**
 * The SDK's modules, loaded on start-up only. NOTE: importing them costs about a second (NodeSDK pulls
 * in every exporter); a process that only counts or reads traces (the CLI) never pays it.
 */
async function loadSdk() {
  const [node, trace, metricsSdk, resources, prometheus, otlpTraces, otlpMetrics] = await Promise.all([
    import('@opentelemetry/sdk-node'),
    import('@opentelemetry/sdk-trace'),
    import('@opentelemetry/sdk-metrics'),
    import('@opentelemetry/resources'),
    import('@opentelemetry/exporter-prometheus'),
    import('@opentelemetry/exporter-trace-otlp-http'),
    import('@opentelemetry/exporter-metrics-otlp-http'),
  ]);
  return {
    NodeSDK: node.NodeSDK,
    BatchSpanProcessor: trace.BatchSpanProcessor,
    PeriodicExportingMetricReader: metricsSdk.PeriodicExportingMetricReader,
    envDetector: resources.envDetector,
    hostDetector: resources.hostDetector,
    resourceFromAttributes: resources.resourceFromAttributes,
    PrometheusExporter: prometheus.PrometheusExporter,
    OTLPTraceExporter: otlpTraces.OTLPTraceExporter,
    OTLPMetricExporter: otlpMetrics.OTLPMetricExporter,
  };
}

/** Creates the trace file (and its directory) now, so a path that cannot be written fails start-up. */
async function ensureWritable(path: string): Promise<void> {
  try {
    await mkdir(dirname(path), { recursive: true });
    await appendFile(path, '');
  } catch (error) {
    throw new TelemetryConfigError(
      `cannot write the trace file ${path}: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
}

/** Runs `close` for at most `timeoutMs`, then unregisters the globals whatever happened. */
async function shutdownWithin(timeoutMs: number, close: () => Promise<void>): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, timeoutMs);
    timer.unref();
  });
  try {
    await Promise.race([close().catch(() => undefined), deadline]);
  } finally {
    clearTimeout(timer);
    disableGlobals();
  }
}

function disableGlobals(): void {
  trace.disable();
  metrics.disable();
  propagation.disable();
  context.disable();
}

async function servePrometheus(
  at: PrometheusServerOptions,
  render: () => Promise<string>,
): Promise<{ server: Server; url: string }> {
  const server = createServer((request, response) => {
    const path = (request.url ?? '').split('?')[0];
    if (request.method !== 'GET' || path !== '/metrics') {
      response.writeHead(404).end();
      return;
    }
    render().then(
      (text) => response.writeHead(200, { 'content-type': PROMETHEUS_CONTENT_TYPE }).end(text),
      () => response.writeHead(500).end(),
    );
  });
  const host = at.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(at.port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : at.port;
  return { server, url: `http://${host.includes(':') ? `[${host}]` : host}:${port}/metrics` };
}

function closeServer(server: Server | undefined): Promise<void> {
  if (!server) return Promise.resolve();
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}
