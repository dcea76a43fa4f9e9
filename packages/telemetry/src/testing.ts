/** Test helpers of @switchyard/telemetry (its `./testing` entry): never imported by production code. */
import type { Meter } from '@opentelemetry/api';
import { PrometheusExporter, PrometheusSerializer } from '@opentelemetry/exporter-prometheus';
import { MeterProvider } from '@opentelemetry/sdk-metrics';

/**
 * The Prometheus text the OpenTelemetry exporter writes for whatever `record` sets up on a meter:
 * what a gateway's `/metrics` serves, without a gateway. `expose()` serialises the current values.
 */
export function otelExposition(record: (meter: Meter) => void): {
  expose: () => Promise<string>;
  close: () => Promise<void>;
} {
  const exporter = new PrometheusExporter({ preventServerStart: true });
  const provider = new MeterProvider({ readers: [exporter] });
  record(provider.getMeter('switchyard'));
  const serializer = new PrometheusSerializer();
  return {
    async expose() {
      const { resourceMetrics } = await exporter.collect();
      return serializer.serialize(resourceMetrics);
    },
    close: () => provider.shutdown(),
  };
}
