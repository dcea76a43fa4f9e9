/**
 * Carries out a scenario: for each cluster configuration, start it, run the scenario's loads against
 * it, stop it. Clusters are started by a launcher the caller passes in (the CLI's local cluster), so
 * this module owns the order and the bounds, not the processes. A configuration that fails to start
 * is noted and skipped, as is one whose load cannot run (a failed warm-up); Ctrl-C stops after the
 * current level, with the cluster stopped.
 */

import { runAgainstServer, type CommonSettings, type RunHooks } from './run-against-server.ts';
import type { RunRecord } from './run-record.ts';
import type { ClusterSpec, Scenario } from './scenario.ts';

export interface LaunchedCluster {
  readonly url: string;
  readonly shape: { readonly numLayers: number; readonly numExperts: number };
  stop(): Promise<void>;
}

export type ClusterLauncher = (spec: ClusterSpec) => Promise<LaunchedCluster>;

export interface ScenarioOutcome {
  readonly runs: readonly RunRecord[];
  readonly notes: readonly string[];
}

export async function runScenario(
  scenario: Scenario,
  launch: ClusterLauncher,
  common: CommonSettings,
  hooks: RunHooks,
): Promise<ScenarioOutcome> {
  const runs: RunRecord[] = [];
  const notes: string[] = [];
  for (const spec of scenario.clusters) {
    if (hooks.signal.aborted) break;
    hooks.log(`starting ${spec.label}`);
    let cluster: LaunchedCluster;
    try {
      cluster = await launch(spec);
    } catch (error) {
      const message = error instanceof Error ? error.message.split('\n')[0] : String(error);
      notes.push(`${spec.label} did not start: ${message}`);
      hooks.log(`${spec.label} did not start: ${message}`);
      continue;
    }
    try {
      const server = { baseUrl: cluster.url, series: spec.label, cluster: spec, shape: cluster.shape };
      runs.push(...(await runAgainstServer(server, scenario.dataset, scenario.loads, common, hooks)));
    } catch (error) {
      if (!(error instanceof Error && 'code' in error)) throw error;
      notes.push(`${spec.label}: ${error.message}`);
      hooks.log(`${spec.label}: ${error.message}`);
    } finally {
      hooks.log(`stopping ${spec.label}`);
      await cluster.stop();
    }
  }
  return { runs, notes };
}
