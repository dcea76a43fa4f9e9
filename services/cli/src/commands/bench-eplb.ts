/**
 * `switchyard bench --scenario eplb`: starts the expert workers of the `eplb` scenario, puts a gateway
 * in front of them per phase (static, then `--placement eplb --rebalance-interval-s n`), reads every worker's
 * own counters through `Describe`, and writes the report (`@switchyard/loadgen`'s eplb runner,
 * analysis and writer do the rest).
 */

import {
  analyseEplb,
  consoleEplb,
  denseCounts,
  describeEplb,
  outputDirFor,
  runEplbScenario,
  writeEplbOutputs,
  type EplbCluster,
  type EplbPhaseKind,
  type EplbSettings,
  type RunHooks,
} from '@switchyard/loadgen';
import { cpuBudgetSupport, limitCpu, startExpertWorkers, startGateway, type CpuBudget } from '@switchyard/launcher';
import { getPreset } from '@switchyard/model';
import { connectExpertClient, type ExpertStreamClient } from '@switchyard/rpc';
import { ensurePresetModel } from '../preset-model.ts';

const START_TIMEOUT_MS = 180_000;

/**
 * The gateway flags of a phase: the static placement, or eplb with live re-placement on (the gateway
 * starts on the static placement and re-places every `warmupS` seconds when the gain is worth it — the
 * first time under the bench's load).
 */
export function gatewayArgsOf(kind: EplbPhaseKind, s: EplbSettings, addresses: readonly string[]): string[] {
  const placement =
    kind === 'static'
      ? ['--placement', 'contiguous']
      : [
          '--placement',
          'eplb',
          '--rebalance-interval-s',
          String(s.warmupS),
          '--redundant-experts',
          String(s.redundantExperts),
          '--max-experts-per-worker',
          String(s.maxExpertsPerWorker),
        ];
  return ['--workers', addresses.join(','), ...placement, '--micro-batches', String(s.microBatches)];
}

export async function runEplbBench(
  settings: EplbSettings,
  dirs: { readonly modelsDir: string; readonly outDir: string },
  hooks: RunHooks,
): Promise<void> {
  const { log } = hooks;
  const startedAt = new Date();
  log(`scenario eplb: ${describeEplb(settings)}`);
  const modelDir = await ensurePresetModel(dirs.modelsDir, settings.preset, log);
  const config = getPreset(settings.preset);
  const shape = { numLayers: config.numLayers, numExperts: config.numExperts };
  log(`starting ${settings.numWorkers} expert workers`);
  const workers = await startExpertWorkers(modelDir, settings.numWorkers, {
    expertDtype: 'fp32',
    intraOpThreads: settings.workerThreads,
    startTimeoutMs: START_TIMEOUT_MS,
  });
  const budgets: CpuBudget[] = [];
  const budgetNotes: string[] = [];
  const clients: ExpertStreamClient[] = [];
  try {
    if (settings.workerCpu > 0) {
      const support = cpuBudgetSupport();
      if (support.ok) {
        workers.pids.forEach((pid, i) => budgets.push(limitCpu(pid, settings.workerCpu, `eplb-worker-${i}`)));
        log(`every worker limited to ${settings.workerCpu} cores of CPU time (cgroup quota)`);
        budgetNotes.push(`every worker ran under a CPU quota of ${settings.workerCpu} cores (cgroup), in both phases`);
      } else {
        log(
          `WARNING: no CPU budget for the workers (${support.reason}); they share every core, so balance cannot add compute`,
        );
        budgetNotes.push(`the workers ran without a CPU budget (${support.reason}): they shared every core`);
      }
    }
    for (const address of workers.addresses) clients.push(await connectExpertClient(address, { deadlineMs: 5_000 }));
    const cluster: EplbCluster = {
      shape,
      async startGateway(kind, s) {
        const gateway = await startGateway(modelDir, gatewayArgsOf(kind, s, workers.addresses), {}, START_TIMEOUT_MS);
        log(`${kind} gateway serving at ${gateway.url}`);
        return { url: gateway.url, stop: () => gateway.stop(15_000) };
      },
      async readCounters() {
        const described = await Promise.all(clients.map((c) => c.describe({ deadlineMs: 2_000 })));
        return {
          counts: described.map((d) => denseCounts(d.tokensServed, shape)),
          hosted: described.map((d) => d.hosted.length),
        };
      },
    };
    const outcome = await runEplbScenario(cluster, settings, hooks);
    const report = analyseEplb(outcome.phases, settings);
    const durationS = (Date.now() - startedAt.getTime()) / 1000;
    const written = await writeEplbOutputs(outputDirFor(dirs.outDir, 'eplb', startedAt), report, {
      startedAt,
      durationS,
      interrupted: outcome.interrupted,
      notes: [...budgetNotes, ...outcome.notes],
    });
    const out = process.stdout;
    out.write(consoleEplb(report));
    out.write(
      `\nresults:  ${written.json}\nsummary:  ${written.markdown}\n${written.svgs.map((s) => `plot:     ${s}`).join('\n')}\n`,
    );
    if (outcome.phases.length === 0) process.exitCode = 1;
  } finally {
    for (const c of clients) c.close();
    await workers.stop();
    await Promise.all(budgets.map((b) => b.release()));
  }
}
