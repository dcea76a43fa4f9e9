/** What one load level against one server produced: its settings, client metrics and server metrics. */

import type { ClientMetrics } from './client-metrics.ts';
import type { DatasetSpec } from './datasets/dataset.ts';
import type { GoodputSlos } from './goodput.ts';
import type { LoadResult } from './load-runner.ts';
import type { ClusterSpec } from './scenario.ts';
import type { ServerMetricsReport } from './server-metrics.ts';

export interface RunSettings {
  /** Unique within a bench run, e.g. `small 2w contiguous fp32 overlap, concurrency 4`. */
  readonly label: string;
  /** The configuration the run belongs to (a cluster label, or the base URL): one line in the plots. */
  readonly series: string;
  readonly baseUrl: string;
  readonly modelId: string;
  readonly dataset: DatasetSpec;
  readonly numPrompts: number;
  readonly requestRate: number;
  readonly burstiness: number;
  readonly maxConcurrency: number;
  readonly seed: number;
  readonly percentiles: readonly number[];
  readonly goodput: GoodputSlos;
  readonly cluster: ClusterSpec | undefined;
}

export interface RunRecord {
  readonly settings: RunSettings;
  readonly startedAt: string;
  readonly metrics: ClientMetrics;
  readonly load: LoadResult;
  readonly server: ServerMetricsReport;
}
