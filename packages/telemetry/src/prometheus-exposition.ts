/**
 * Prometheus text exposition (format 0.0.4) of collected OpenTelemetry metrics, named by the
 * specification's rules (prometheus-naming.ts) so the direct scrape and the Collector's OTLP → Prometheus
 * path spell every metric alike.
 *
 * Series carry exactly their attributes as labels: no `otel_scope_*` labels and no `target_info`
 * (the Collector adds its resource labels on its own path; Prometheus adds `job`/`instance`).
 */
import type { Attributes } from '@opentelemetry/api';
import type { MetricData, ResourceMetrics } from '@opentelemetry/sdk-metrics';
import { prometheusLabelName, prometheusMetricName, type PrometheusKind } from './prometheus-naming.ts';

export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** How Prometheus sees a metric, read from its shape (no SDK enums: the SDK loads lazily). */
export function prometheusKindOf(metric: MetricData): PrometheusKind | undefined {
  if ('isMonotonic' in metric) return metric.isMonotonic ? 'counter' : 'updown';
  const first = metric.dataPoints[0]?.value;
  if (first === undefined || typeof first === 'number') return 'gauge';
  return 'buckets' in first && 'boundaries' in first.buckets ? 'histogram' : undefined;
}

/** The Prometheus name of a collected metric, or undefined for a kind we do not expose. */
export function prometheusNameOf(metric: MetricData): string | undefined {
  const kind = prometheusKindOf(metric);
  return kind && prometheusMetricName(metric.descriptor.name, metric.descriptor.unit, kind);
}

export function renderExposition(resourceMetrics: ResourceMetrics): string {
  const blocks: string[] = [];
  for (const scope of resourceMetrics.scopeMetrics) {
    for (const metric of scope.metrics) {
      const block = renderMetric(metric);
      if (block) blocks.push(block);
    }
  }
  return blocks.length > 0 ? `${blocks.join('\n')}\n` : '';
}

function renderMetric(metric: MetricData): string | undefined {
  const kind = prometheusKindOf(metric);
  if (kind === undefined || metric.dataPoints.length === 0) return undefined;
  const name = prometheusMetricName(metric.descriptor.name, metric.descriptor.unit, kind);
  const lines = [
    `# HELP ${name} ${escapeHelp(metric.descriptor.description || metric.descriptor.name)}`,
    `# TYPE ${name} ${kind === 'updown' ? 'gauge' : kind}`,
  ];
  for (const point of metric.dataPoints) {
    const value = point.value;
    if (typeof value === 'number') {
      lines.push(`${name}${labels(point.attributes)} ${number(value)}`);
    } else if ('buckets' in value && 'boundaries' in value.buckets) {
      const { boundaries, counts } = value.buckets;
      let cumulative = 0;
      boundaries.forEach((le, i) => {
        cumulative += counts[i] ?? 0;
        lines.push(`${name}_bucket${labels(point.attributes, ['le', number(le)])} ${cumulative}`);
      });
      lines.push(`${name}_bucket${labels(point.attributes, ['le', '+Inf'])} ${value.count}`);
      lines.push(`${name}_sum${labels(point.attributes)} ${number(value.sum ?? 0)}`);
      lines.push(`${name}_count${labels(point.attributes)} ${value.count}`);
    }
  }
  return lines.join('\n');
}

function labels(attributes: Attributes, extra?: readonly [string, string]): string {
  const parts: string[] = [];
  for (const [key, value] of Object.entries(attributes)) {
    if (value === undefined || value === null) continue;
    const text = Array.isArray(value) ? value.join(',') : String(value);
    parts.push(`${prometheusLabelName(key)}="${escapeLabelValue(text)}"`);
  }
  if (extra) parts.push(`${extra[0]}="${extra[1]}"`);
  return parts.length > 0 ? `{${parts.join(',')}}` : '';
}

function number(value: number): string {
  if (value === Number.POSITIVE_INFINITY) return '+Inf';
  if (value === Number.NEGATIVE_INFINITY) return '-Inf';
  return Number.isNaN(value) ? 'NaN' : String(value);
}

function escapeLabelValue(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function escapeHelp(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}
