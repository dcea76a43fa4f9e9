/** Test helpers of @switchyard/telemetry (its `./testing` entry): never imported by production code. */
import type { Meter } from '@opentelemetry/api';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import { renderExposition } from './prometheus-exposition.ts';

/**
 * The Prometheus text Switchyard serves for whatever `record` sets up on a meter:
 * what a gateway's `/metrics` serves, without a gateway. `expose()` serialises the current values.
 */
export function otelExposition(record: (meter: Meter) => void): {
  expose: () => Promise<string>;
  close: () => Promise<void>;
} {
  const exporter = new PrometheusExporter({ preventServerStart: true });
  const provider = new MeterProvider({ readers: [exporter] });
  record(provider.getMeter('switchyard'));
  return {
    async expose() {
      const { resourceMetrics } = await exporter.collect();
      return renderExposition(resourceMetrics);
    },
    close: () => provider.shutdown(),
  };
}
