export { heatmapCells, heatmapSpec, renderSvg, type ChartSpec } from './charts.ts';

export { consoleSummary, consoleLine } from './console-summary.ts';

export { analyseEplb, type Check, type EplbReport, type PhaseReport } from './eplb-analysis.ts';
export { consoleEplb, writeEplbOutputs } from './eplb-report.ts';
export { runEplbScenario, type EplbCluster, type EplbPhaseKind } from './eplb-runner.ts';
export {
  describeEplb,
  EPLB_DEFAULTS,
  EPLB_PRESETS,
  EPLB_SCENARIO_NAME,
  type EplbPreset,
  type EplbSettings,
} from './eplb-scenario.ts';
export { parseGoodput } from './goodput.ts';

export { measureLoopbackBandwidth } from './loopback-bandwidth.ts';

export { plannerText, plannerJson } from './planner-report.ts';
export { planCapacity, type PlannerInput } from './planner.ts';
export { parseExposition } from './prometheus-text.ts';
export { denseCounts } from './worker-counters.ts';

export { outputDirFor, writeBenchOutputs } from './report-writer.ts';

export { runAgainstServer, type CommonSettings, type RunHooks } from './run-against-server.ts';
export { type RunRecord } from './run-record.ts';
export { runScenario, type LaunchedCluster } from './scenario-runner.ts';
export { isScenarioName, type ClusterSpec, type LoadSpec, SCENARIOS, SCENARIO_NAMES } from './scenario.ts';

export { scrapeMetrics, serverMetricsOf, type Scrape, type ServerMetricsReport } from './server-metrics.ts';

export { type DatasetSpec, type DatasetName, DATASET_NAMES } from './datasets/dataset.ts';

export { MOONCAKE_BLOCK_TOKENS, type BadLinePolicy } from './datasets/trace.ts';
