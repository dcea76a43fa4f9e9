/**
 * @switchyard/telemetry — OpenTelemetry start-up, every span/attribute/metric name, exact per-token
 * compute accounting from the routing decisions made, the cost model, and the token-economics report.
 *
 * NOTE: the SVG chart (`renderReportChart`) loads vega on first use, so importing this package does not.
 */
export * from './names.ts';
export * from './compute-accounting.ts';
export * from './accounting-observer.ts';
export * from './cost-model.ts';
export * from './span-record.ts';
export * from './span-file-exporter.ts';
export * from './trace-context.ts';
export * from './metrics.ts';
export * from './request-tracer.ts';
export * from './request-handle.ts';
export * from './engine-telemetry.ts';
export * from './sdk.ts';
export * from './token-report.ts';
export * from './report-chart.ts';
