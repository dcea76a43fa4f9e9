import { join } from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { getPreset } from '@switchyard/model';
import {
  consoleLine,
  consoleSummary,
  DATASET_NAMES,
  type DatasetName,
  type DatasetSpec,
  MOONCAKE_BLOCK_TOKENS,
  type BadLinePolicy,
  parseGoodput,
  outputDirFor,
  writeBenchOutputs,
  runAgainstServer,
  type CommonSettings,
  type RunHooks,
  type RunRecord,
  isScenarioName,
  SCENARIO_NAMES,
  SCENARIOS,
  type ClusterSpec,
  type LoadSpec,
  runScenario,
  type LaunchedCluster,
  EPLB_DEFAULTS,
  EPLB_PRESETS,
  EPLB_SCENARIO_NAME,
  type EplbPreset,
  type EplbSettings,
} from '@switchyard/loadgen';
import { freePort, startLocalCluster } from '@switchyard/launcher';
import { ensurePresetModel } from '../preset-model.ts';
import { parseInteger, parseNumber } from '../parse.ts';
import { countProgress } from '../progress.ts';
import { action, UsageError } from '../user-error.ts';
import { runEplbBench } from './bench-eplb.ts';

const ROOT = new URL('../../../../', import.meta.url).pathname;

interface BenchOptions {
  baseUrl?: string;
  scenario?: string;
  label: string;
  model?: string;
  datasetName: DatasetName;
  numPrompts: number;
  requestRate: number;
  burstiness: number;
  maxConcurrency?: number;
  duration?: number;
  gracePeriod: number;
  seed: number;
  randomInputLen: number;
  randomOutputLen: number;
  randomRangeRatio: number;
  randomPrefixLen: number;
  sharedNumPrefixes: number;
  sharedPrefixLen: number;
  sharedSuffixLen: number;
  sharedOutputLen: number;
  datasetPath?: string;
  traceBadLines: BadLinePolicy;
  traceBlockTokens: number;
  traceLengthScale: number;
  goodput?: string[];
  metricPercentiles: number[];
  temperature: number;
  vocabSize: number;
  requestTimeout: number;
  warmUp: boolean;
  outDir: string;
  modelsDir: string;
  staticDuration: number;
  eplbDuration: number;
  eplbWarmup: number;
  redundantExperts: number;
  maxExpertsPerWorker: number;
  sampleInterval: number;
  workerThreads: number;
  workerCpu: number;
  eplbPreset: EplbPreset;
}

/** `--scenario` names: the planned cluster scenarios and `eplb` (its own runner). */
const BENCH_SCENARIOS = [...SCENARIO_NAMES, EPLB_SCENARIO_NAME];
const EPLB_EXPECTED = '≈ 3½ minutes';
/** Flags of `--scenario eplb` only. */
const EPLB_FLAGS = [
  'staticDuration',
  'eplbDuration',
  'eplbWarmup',
  'redundantExperts',
  'maxExpertsPerWorker',
  'sampleInterval',
  'workerThreads',
  'workerCpu',
  'eplbPreset',
] as const;
const flagName = (key: string) => `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;

/** A number, or `inf` / `Infinity` (vLLM's spelling for "no limit"). */
function parseRate(flag: string): (value: string) => number {
  return (value) => {
    if (value === 'inf' || value === 'Infinity') return Infinity;
    const n = Number(value);
    if (!(n > 0)) throw new InvalidArgumentError(`${flag} takes a positive number or inf, got "${value}"`);
    return n;
  };
}

function parsePercentiles(value: string): number[] {
  const ps = value.split(',').map((s) => Number(s.trim()));
  if (ps.length === 0 || ps.some((p) => !(p >= 0 && p <= 100)))
    throw new InvalidArgumentError(`--metric-percentiles takes percentiles in [0, 100], e.g. 90,99; got "${value}"`);
  return ps;
}

/** Flags that shape the load or dataset, so a scenario (which sets its own) must not be given them. */
const LOAD_FLAGS = [
  'model',
  'datasetName',
  'numPrompts',
  'requestRate',
  'burstiness',
  'maxConcurrency',
  'randomInputLen',
  'randomOutputLen',
  'randomRangeRatio',
  'randomPrefixLen',
  'sharedNumPrefixes',
  'sharedPrefixLen',
  'sharedSuffixLen',
  'sharedOutputLen',
  'datasetPath',
  'label',
] as const;

export function benchCommand(): Command {
  return new Command('bench')
    .description(
      'load-test an OpenAI-compatible server (--base-url) or local clusters started from a scenario (--scenario); ' +
        'writes JSON (vLLM key names), a Markdown summary and SVG plots under bench/out/<time>-<name>/. Ctrl-C writes what was measured so far.',
    )
    .option('--base-url <url>', 'server to load, e.g. http://127.0.0.1:8000')
    .addOption(
      new Option(
        '--scenario <name>',
        `start local clusters and run a planned load (${SCENARIO_NAMES.map((n) => `${n}: ${SCENARIOS[n].expectedDuration}`).join('; ')}; ` +
          `${EPLB_SCENARIO_NAME}: static vs rebalanced placement of the skewed preset on 4 workers, ${EPLB_EXPECTED})`,
      ).choices(BENCH_SCENARIOS),
    )
    .option('--label <name>', 'name of a --base-url run (output folder and plots)', 'custom')
    .option('--model <id>', 'model to request (default: the first of /v1/models)')
    .addOption(new Option('--dataset-name <name>', 'where prompts come from').choices(DATASET_NAMES).default('random'))
    .option('--num-prompts <n>', 'requests to send (a trace: at most its lines)', parseInteger('--num-prompts'), 100)
    .addOption(
      new Option('--request-rate <r>', 'requests per second, or inf to release all at once')
        .argParser(parseRate('--request-rate'))
        .default(Infinity, 'inf'),
    )
    .option(
      '--burstiness <b>',
      'gamma shape of inter-arrival gaps: 1 is Poisson, < 1 burstier, inf evenly spaced',
      parseRate('--burstiness'),
      1,
    )
    .option('--max-concurrency <n>', 'requests in flight at most (client side)', parseInteger('--max-concurrency'))
    .option('--duration <s>', 'release no request after this many seconds', parseNumber('--duration'))
    .option(
      '--grace-period <s>',
      'after --duration, wait this long for requests in flight, then cancel them',
      parseNumber('--grace-period'),
      30,
    )
    .option('--seed <n>', 'seed of prompts, lengths and arrivals', parseInteger('--seed'), 0)
    .option('--random-input-len <n>', 'random: mean input tokens', parseInteger('--random-input-len'), 1024)
    .option('--random-output-len <n>', 'random: mean output tokens', parseInteger('--random-output-len'), 128)
    .option(
      '--random-range-ratio <r>',
      'random: lengths uniform in [len·(1−r), len·(1+r)]',
      parseNumber('--random-range-ratio'),
      0,
    )
    .option(
      '--random-prefix-len <n>',
      'random: tokens of one prefix shared by every prompt',
      parseInteger('--random-prefix-len'),
      0,
    )
    .option(
      '--shared-num-prefixes <n>',
      'shared-prefix: groups (distinct prefixes)',
      parseInteger('--shared-num-prefixes'),
      4,
    )
    .option('--shared-prefix-len <n>', 'shared-prefix: tokens of each prefix', parseInteger('--shared-prefix-len'), 512)
    .option(
      '--shared-suffix-len <n>',
      'shared-prefix: tokens unique to each request',
      parseInteger('--shared-suffix-len'),
      64,
    )
    .option('--shared-output-len <n>', 'shared-prefix: output tokens', parseInteger('--shared-output-len'), 64)
    .option(
      '--dataset-path <file>',
      'trace: JSON lines {timestamp (ms), input_length, output_length, hash_ids?} (Mooncake format)',
    )
    .addOption(
      new Option('--trace-bad-lines <policy>', 'trace: a bad line stops the run, or is reported and skipped')
        .choices(['fail', 'skip'])
        .default('fail'),
    )
    .option(
      '--trace-block-tokens <n>',
      'trace: tokens per hash id',
      parseInteger('--trace-block-tokens'),
      MOONCAKE_BLOCK_TOKENS,
    )
    .option(
      '--trace-length-scale <s>',
      'trace: multiply input, output and block lengths (to fit a small model)',
      parseNumber('--trace-length-scale'),
      1,
    )
    .option('--goodput <slo...>', 'service-level objectives in ms: ttft:500 tpot:50 e2el:2000')
    .option('--metric-percentiles <list>', 'percentiles to report', parsePercentiles, [90, 99])
    .option('--temperature <t>', 'sampling temperature of every request', parseNumber('--temperature'), 0)
    .option(
      '--vocab-size <n>',
      'prompt token ids are drawn from [0, n) (256: the byte ids, valid in any vocabulary)',
      parseInteger('--vocab-size'),
      256,
    )
    .option(
      '--request-timeout <s>',
      'fail a request still running after this long',
      parseNumber('--request-timeout'),
      600,
    )
    .option('--no-warm-up', 'skip the short request sent before measuring (it fails fast on a bad setup)')
    .option('--out-dir <dir>', 'where the output folder is created', join(ROOT, 'bench/out'))
    .option('--models-dir <dir>', 'scenarios: where preset models are created', join(ROOT, 'models'))
    .option(
      '--static-duration <s>',
      'eplb: seconds of load on the static placement',
      parseNumber('--static-duration'),
      EPLB_DEFAULTS.staticDurationS,
    )
    .option(
      '--eplb-duration <s>',
      'eplb: seconds of load on the rebalancing gateway (warm-up, switch and after)',
      parseNumber('--eplb-duration'),
      EPLB_DEFAULTS.eplbDurationS,
    )
    .option(
      '--eplb-warmup <s>',
      'eplb: the gateway’s --rebalance-interval-s (seconds on the static placement before its first re-placement)',
      parseInteger('--eplb-warmup'),
      EPLB_DEFAULTS.warmupS,
    )
    .option(
      '--redundant-experts <n>',
      'eplb: extra replicas per layer',
      parseInteger('--redundant-experts'),
      EPLB_DEFAULTS.redundantExperts,
    )
    .option(
      '--max-experts-per-worker <n>',
      'eplb: replicas a worker may hold per layer',
      parseInteger('--max-experts-per-worker'),
      EPLB_DEFAULTS.maxExpertsPerWorker,
    )
    .option(
      '--sample-interval <s>',
      'eplb: seconds between reads of the workers’ counters',
      parseNumber('--sample-interval'),
      EPLB_DEFAULTS.sampleIntervalMs / 1000,
    )
    .option(
      '--worker-threads <n>',
      'eplb: onnxruntime threads of each worker, both phases (a fixed compute budget per worker)',
      parseInteger('--worker-threads'),
      EPLB_DEFAULTS.workerThreads,
    )
    .addOption(
      new Option('--eplb-preset <name>', 'eplb: the model (skewed-heavy: the same router, experts 16× wider)')
        .choices(EPLB_PRESETS)
        .default(EPLB_DEFAULTS.preset),
    )
    .option(
      '--worker-cpu <cores>',
      'eplb: CPU time per second each worker may use, as a cgroup quota (0: none; needs root)',
      parseNumber('--worker-cpu'),
      EPLB_DEFAULTS.workerCpu,
    )
    .action(action(runBench));
}

function datasetOf(opts: BenchOptions): DatasetSpec {
  switch (opts.datasetName) {
    case 'random':
      return {
        kind: 'random',
        inputLen: opts.randomInputLen,
        outputLen: opts.randomOutputLen,
        rangeRatio: opts.randomRangeRatio,
        prefixLen: opts.randomPrefixLen,
      };
    case 'shared-prefix':
      return {
        kind: 'shared-prefix',
        numPrefixes: opts.sharedNumPrefixes,
        prefixLen: opts.sharedPrefixLen,
        suffixLen: opts.sharedSuffixLen,
        outputLen: opts.sharedOutputLen,
      };
    case 'trace':
      if (opts.datasetPath === undefined) throw new UsageError('--dataset-name trace needs --dataset-path <file>');
      return {
        kind: 'trace',
        path: opts.datasetPath,
        onBadLine: opts.traceBadLines,
        blockTokens: opts.traceBlockTokens,
        lengthScale: opts.traceLengthScale,
      };
  }
}

/** Starts a local cluster for a scenario, creating its preset model on first use. */
function localLauncher(
  modelsDir: string,
  log: (line: string) => void,
): (spec: ClusterSpec) => Promise<LaunchedCluster> {
  return async (spec) => {
    const modelDir = await ensurePresetModel(modelsDir, spec.preset, log);
    const cluster = await startLocalCluster({
      modelDir,
      workers: spec.workers,
      host: '127.0.0.1',
      port: await freePort(),
      expertDtype: spec.expertDtype,
      placement: spec.placement,
      replication: spec.replication,
      microBatches: spec.microBatches,
      startTimeoutMs: 180_000,
      log,
    });
    const config = getPreset(spec.preset);
    return {
      url: cluster.url,
      shape: { numLayers: config.numLayers, numExperts: config.numExperts },
      stop: () => cluster.stop(),
    };
  };
}

/** First Ctrl-C: stop loading and write what was measured. Second: exit at once. */
function interruptOnSigint(log: (line: string) => void): { signal: AbortSignal; dispose: () => void } {
  const controller = new AbortController();
  const onSigint = () => {
    if (controller.signal.aborted) process.exit(130);
    log('interrupted: cancelling requests in flight and writing what was measured (Ctrl-C again to quit at once)');
    controller.abort();
  };
  process.on('SIGINT', onSigint);
  return { signal: controller.signal, dispose: () => process.off('SIGINT', onSigint) };
}

function checkOptions(opts: BenchOptions, command: Command): void {
  if ((opts.baseUrl === undefined) === (opts.scenario === undefined)) {
    throw new UsageError(
      'give either --base-url <url> (load a running server) or --scenario <name> (start local clusters), e.g. --scenario quick',
    );
  }
  if (opts.scenario !== undefined) {
    const given = LOAD_FLAGS.filter((f) => command.getOptionValueSource(f) === 'cli');
    if (given.length > 0)
      throw new UsageError(
        `--scenario sets its own load and dataset; ${given.map((f) => `--${f.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`).join(', ')} apply only with --base-url`,
      );
  }
  const eplbGiven = EPLB_FLAGS.filter((f) => command.getOptionValueSource(f) === 'cli');
  if (opts.scenario !== EPLB_SCENARIO_NAME && eplbGiven.length > 0)
    throw new UsageError(
      `${eplbGiven.map(flagName).join(', ')} ${eplbGiven.length === 1 ? 'applies' : 'apply'} only with --scenario eplb`,
    );
  if (opts.scenario === EPLB_SCENARIO_NAME && command.getOptionValueSource('duration') === 'cli')
    throw new UsageError('--scenario eplb takes --static-duration and --eplb-duration, not --duration');
  if (opts.numPrompts < 1) throw new UsageError(`--num-prompts must be ≥ 1, got ${opts.numPrompts}`);
  if (opts.maxConcurrency !== undefined && opts.maxConcurrency < 1)
    throw new UsageError(`--max-concurrency must be ≥ 1, got ${opts.maxConcurrency}`);
  if (opts.duration !== undefined && !(opts.duration > 0))
    throw new UsageError(`--duration must be > 0 seconds, got ${opts.duration}`);
  if (opts.vocabSize < 1) throw new UsageError(`--vocab-size must be ≥ 1, got ${opts.vocabSize}`);
}

/** The eplb scenario's settings from the flags, checked. */
function eplbSettingsOf(opts: BenchOptions): EplbSettings {
  const positive = (flag: string, n: number) => {
    if (!(n > 0)) throw new UsageError(`${flag} must be > 0, got ${n}`);
    return n;
  };
  const nonNegative = (flag: string, n: number) => {
    if (!(n >= 0)) throw new UsageError(`${flag} must be ≥ 0, got ${n}`);
    return n;
  };
  const eplbDurationS = positive('--eplb-duration', opts.eplbDuration);
  const warmupS = positive('--eplb-warmup', opts.eplbWarmup);
  if (warmupS >= eplbDurationS)
    throw new UsageError(`--eplb-warmup (${warmupS} s) must be shorter than --eplb-duration (${eplbDurationS} s)`);
  return Object.freeze({
    ...EPLB_DEFAULTS,
    staticDurationS: positive('--static-duration', opts.staticDuration),
    eplbDurationS,
    warmupS,
    redundantExperts: opts.redundantExperts,
    maxExpertsPerWorker: positive('--max-experts-per-worker', opts.maxExpertsPerWorker),
    sampleIntervalMs: 1000 * positive('--sample-interval', opts.sampleInterval),
    workerThreads: positive('--worker-threads', opts.workerThreads),
    workerCpu: nonNegative('--worker-cpu', opts.workerCpu),
    preset: opts.eplbPreset,
  });
}

async function runBench(opts: BenchOptions, command: Command): Promise<void> {
  checkOptions(opts, command);
  const log = (line: string) => process.stderr.write(`switchyard bench: ${line}\n`);
  if (opts.scenario === EPLB_SCENARIO_NAME) {
    const settings = eplbSettingsOf(opts);
    const interrupt = interruptOnSigint(log);
    try {
      const hooks: RunHooks = { signal: interrupt.signal, log, progress: (label) => countProgress(label) };
      await runEplbBench(settings, { modelsDir: opts.modelsDir, outDir: opts.outDir }, hooks);
    } finally {
      interrupt.dispose();
    }
    return;
  }
  const common: CommonSettings = {
    seed: opts.seed,
    percentiles: opts.metricPercentiles,
    goodput: parseGoodput(opts.goodput ?? []),
    vocabSize: opts.vocabSize,
    temperature: opts.temperature,
    durationMs: opts.duration === undefined ? Infinity : opts.duration * 1000,
    gracePeriodMs: opts.gracePeriod * 1000,
    requestTimeoutMs: opts.requestTimeout * 1000,
    model: opts.model,
    warmUp: opts.warmUp,
  };
  const interrupt = interruptOnSigint(log);
  const hooks: RunHooks = { signal: interrupt.signal, log, progress: (label) => countProgress(label) };
  const startedAt = new Date();
  let name: string;
  let description: string;
  let runs: readonly RunRecord[];
  let notes: readonly string[] = [];
  try {
    if (opts.scenario !== undefined && isScenarioName(opts.scenario)) {
      const scenario = SCENARIOS[opts.scenario];
      ({ name, description } = scenario);
      log(`scenario ${name}: ${description} (expected ${scenario.expectedDuration})`);
      ({ runs, notes } = await runScenario(scenario, localLauncher(opts.modelsDir, log), common, hooks));
    } else {
      const baseUrl = (opts.baseUrl ?? '').replace(/\/+$/, '');
      const load: LoadSpec = {
        maxConcurrency: opts.maxConcurrency ?? Infinity,
        numPrompts: opts.numPrompts,
        requestRate: opts.requestRate,
        burstiness: opts.burstiness,
      };
      name = opts.label;
      description = `load against ${baseUrl}`;
      runs = await runAgainstServer(
        { baseUrl, series: opts.label, cluster: undefined, shape: undefined },
        datasetOf(opts),
        [load],
        common,
        hooks,
      );
    }
  } finally {
    interrupt.dispose();
  }
  const durationS = (Date.now() - startedAt.getTime()) / 1000;
  const written = await writeBenchOutputs(
    outputDirFor(opts.outDir, name, startedAt),
    { name, description, startedAt, durationS, interrupted: interrupt.signal.aborted, notes },
    runs,
  );
  const out = process.stdout;
  if (runs.length === 1 && runs[0] !== undefined) out.write(consoleSummary(runs[0]));
  else for (const run of runs) out.write(`${consoleLine(run)}\n`);
  for (const note of notes) out.write(`note: ${note}\n`);
  out.write(
    `\nresults:  ${written.json}\nsummary:  ${written.markdown}\n${written.svgs.map((s) => `plot:     ${s}`).join('\n')}\n`,
  );
  if (runs.length === 0) process.exitCode = 1;
}
