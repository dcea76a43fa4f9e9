/**
 * @switchyard/telemetry — OpenTelemetry start-up, every span/attribute/metric name, exact per-token
 * compute accounting from the routing decisions made, the cost model, and the token-economics report.
 * Span, attribute and metric names are the `./names` entry (dependency-free).
 *
 * NOTE: no charts here (the CLI draws the report's chart) and no onnxruntime: loading this package loads
 * the OpenTelemetry API and the accounting; the SDK and exporters load only when telemetry starts.
 */
export {
  throughputOf,
  presetEconomics,
  shapeEconomics,
  type ShapeEconomicsOptions,
  type ShapeEconomics,
} from './cost-model.ts';
export { type SpanRecord } from './span-record.ts';
export { readTraceFile } from './span-file-exporter.ts';

export { type RouteAttributes, type TraceDetail, SwitchyardTracer } from './request-tracer.ts';
export { type KvTransferRecord } from './metrics.ts';

export { EngineTelemetry } from './engine-telemetry.ts';
export { ExpertLoadWindow, type ExpertLoadWindowOptions } from './expert-load-window.ts';
export { telemetryOptionsFromEnv, startTelemetry, PROMETHEUS_CONTENT_TYPE, type Telemetry } from './sdk.ts';
export { buildTokenReport, type TokenReport } from './token-report.ts';
export { METRIC_CATALOG, type CatalogMetric } from './metric-catalog.ts';
export { prometheusMetricName, prometheusLabelName, type PrometheusKind } from './prometheus-naming.ts';
