import { Command, Option } from 'commander';
import {
  chooseBroker,
  describeBrokerChoice,
  freshNamespace,
  ROUTER_MODES,
  validateNamespace,
  type RouterMode,
} from '@switchyard/cluster';
import { isPresetName, PRESET_NAMES } from '@switchyard/model';
import { startLocalCluster } from '@switchyard/launcher';
import { ensurePresetModel } from '../preset-model.ts';
import { action, UsageError } from '../user-error.ts';
import { parseInteger } from '../parse.ts';

interface UpOptions {
  model?: string;
  preset: string;
  workers: number;
  workerThreads?: number;
  host: string;
  port: number;
  expertDtype: 'fp32' | 'int8';
  placement: 'contiguous' | 'round-robin';
  replication: number;
  microBatches: number;
  modelsDir: string;
  gateways: number;
  routerMode: RouterMode;
  kvStore: boolean;
  kvStoreCapacity?: string;
  prefillEngines: number;
  decodeEngines?: number;
  namespace?: string;
}

export function upCommand(): Command {
  return new Command('up')
    .description('start a gateway and expert workers on this machine and serve a model (Ctrl-C stops everything)')
    .option('--model <dir>', 'model directory (default: <models-dir>/<preset>, created on first run)')
    .addOption(
      new Option('--preset <name>', 'preset to create when no --model is given').choices(PRESET_NAMES).default('small'),
    )
    .option('--workers <n>', 'expert worker processes (0: experts in the gateway)', parseInteger('--workers'), 2)
    .option(
      '--worker-threads <n>',
      'onnxruntime intra-op threads of each worker (default: the cores divided among the workers)',
      parseInteger('--worker-threads'),
    )
    .option('--host <host>', 'gateway HTTP host', '127.0.0.1')
    .option('--port <port>', 'gateway HTTP port', parseInteger('--port'), 8000)
    .addOption(new Option('--expert-dtype <dtype>', 'expert weights').choices(['fp32', 'int8']).default('fp32'))
    .addOption(
      new Option('--placement <strategy>', 'how experts are spread over workers')
        .choices(['contiguous', 'round-robin'])
        .default('contiguous'),
    )
    .option('--replication <n>', 'copies of each expert (≤ workers)', parseInteger('--replication'), 1)
    .option(
      '--micro-batches <n>',
      'micro-batches per step (2 overlaps attention with expert dispatch; pays when gateway and workers have their own cores)',
      parseInteger('--micro-batches'),
      1,
    )
    .option('--gateways <n>', 'gateway replicas behind the NATS request queue', parseInteger('--gateways'), 1)
    .addOption(
      new Option('--router-mode <mode>', 'how gateways choose the engine for a request (NATS): KV-aware, or not')
        .choices([...ROUTER_MODES])
        .default('kv'),
    )
    .option(
      '--kv-store',
      'also start a KV page store: engines offload evicted pages to it and fetch them back (NATS)',
      false,
    )
    .option('--kv-store-capacity <size>', 'page store memory, e.g. 512MiB (default 1GiB)')
    .option(
      '--prefill-engines <n>',
      'disaggregated prefill: engines that only compute prompts; the gateways then run as decode engines (NATS)',
      parseInteger('--prefill-engines'),
      0,
    )
    .option(
      '--decode-engines <n>',
      'with --prefill-engines: decode engines (the same as --gateways)',
      parseInteger('--decode-engines'),
    )
    .option('--models-dir <dir>', 'where presets are created', 'models')
    .option(
      '--namespace <name>',
      'the cluster’s namespace on NATS (a-z, 0-9, -); default SWITCHYARD_NAMESPACE, else a fresh run-<hex> per run, so two clusters on one broker never serve each other’s requests',
    )
    .addHelpText(
      'after',
      '\nRequest queue: NATS_URL when set (credentials from NATS_USER/NATS_PASSWORD or NATS_TOKEN), else a NATS server\nwith JetStream at 127.0.0.1:4222 if one answers, else the in-process queue (one gateway only).',
    )
    .action(action(runUp));
}

async function runUp(opts: UpOptions): Promise<void> {
  if (opts.workers < 0) throw new UsageError(`--workers must be ≥ 0, got ${opts.workers}`);
  if (opts.workerThreads !== undefined && opts.workerThreads < 1) {
    throw new UsageError(`--worker-threads must be ≥ 1, got ${opts.workerThreads}`);
  }
  if (opts.replication < 1 || (opts.workers > 0 && opts.replication > opts.workers)) {
    throw new UsageError(`--replication must be between 1 and --workers (${opts.workers}), got ${opts.replication}`);
  }
  const log = (line: string) => process.stdout.write(`switchyard: ${line}\n`);
  let modelDir = opts.model;
  if (!modelDir) {
    if (!isPresetName(opts.preset)) throw new UsageError(`unknown preset ${opts.preset}`);
    modelDir = await ensurePresetModel(opts.modelsDir, opts.preset, log);
  }
  if (opts.decodeEngines !== undefined) {
    if (opts.prefillEngines < 1) throw new UsageError('--decode-engines needs --prefill-engines ≥ 1');
    opts.gateways = opts.decodeEngines;
  }
  if (opts.gateways < 1) throw new UsageError(`--gateways must be ≥ 1, got ${opts.gateways}`);
  if (opts.prefillEngines < 0) throw new UsageError(`--prefill-engines must be ≥ 0, got ${opts.prefillEngines}`);
  const env = process.env;
  const credentials = {
    ...(env['NATS_USER'] ? { user: env['NATS_USER'] } : {}),
    ...(env['NATS_PASSWORD'] ? { pass: env['NATS_PASSWORD'] } : {}),
    ...(env['NATS_TOKEN'] ? { token: env['NATS_TOKEN'] } : {}),
  };
  const broker = await chooseBroker(env['NATS_URL'], { credentials });
  log(describeBrokerChoice(broker));
  const namespace = opts.namespace ?? (env['SWITCHYARD_NAMESPACE'] || freshNamespace());
  try {
    validateNamespace(namespace);
  } catch (error) {
    throw new UsageError(`--namespace: ${error instanceof Error ? error.message : String(error)}`);
  }
  if (broker.kind === 'nats') log(`namespace ${namespace} on NATS`);
  if (broker.kind === 'in-process' && opts.gateways > 1) {
    throw new UsageError(`--gateways ${opts.gateways} needs the NATS request queue: ${broker.reason}`);
  }
  if (broker.kind === 'in-process' && (opts.kvStore || opts.prefillEngines > 0)) {
    throw new UsageError(`--kv-store and --prefill-engines need the NATS request queue: ${broker.reason}`);
  }
  const extras = [
    ...(opts.prefillEngines > 0 ? [`${opts.prefillEngines} prefill engine(s)`] : []),
    ...(opts.kvStore ? ['a KV page store'] : []),
  ];
  log(
    `starting ${opts.workers} expert worker(s), ${opts.gateways} gateway(s)${opts.prefillEngines > 0 ? ' (decode engines)' : ''}` +
      `${extras.length > 0 ? `, ${extras.join(' and ')}` : ''} for ${modelDir}`,
  );
  const cluster = await startLocalCluster({
    gateways: opts.gateways,
    ...(broker.kind === 'nats' ? { natsUrl: broker.url, namespace } : {}),
    modelDir,
    workers: opts.workers,
    ...(opts.workerThreads !== undefined ? { workerThreads: opts.workerThreads } : {}),
    host: opts.host,
    port: opts.port,
    expertDtype: opts.expertDtype,
    placement: opts.placement,
    replication: opts.replication,
    microBatches: opts.microBatches,
    routerMode: opts.routerMode,
    kvStore: opts.kvStore,
    ...(opts.kvStoreCapacity !== undefined ? { kvStoreCapacity: opts.kvStoreCapacity } : {}),
    prefillEngines: opts.prefillEngines,
    startTimeoutMs: 180_000,
    log,
  });
  // With API keys on (SWITCHYARD_API_KEY reaches the gateways through the environment), ask with the key.
  const apiKey = env['SWITCHYARD_API_KEY'];
  const models = (await (
    await fetch(`${cluster.url}/v1/models`, apiKey ? { headers: { authorization: `Bearer ${apiKey}` } } : {})
  ).json()) as { data?: { id: string }[] };
  const modelId = models.data?.[0]?.id ?? 'model';
  log(`ready at ${cluster.gatewayUrls.join(', ')}`);
  if (cluster.kvStoreAddress !== undefined) log(`KV page store at ${cluster.kvStoreAddress}`);
  process.stdout.write(
    `\nTry it:\n  curl ${cluster.url}/v1/completions -H 'Content-Type: application/json' \\\n` +
      (apiKey ? `    -H "Authorization: Bearer $SWITCHYARD_API_KEY" \\\n` : '') +
      `    -d '{"model": "${modelId}", "prompt": "Hello", "max_tokens": 32, "temperature": 0}'\n\nPress Ctrl-C to stop.\n`,
  );
  // The cluster's state on demand: `kill -USR2 <pid of up>`, or Enter in a terminal.
  const printState = () => process.stdout.write(`switchyard: cluster state\n${cluster.describe()}\n`);
  process.on('SIGUSR2', printState);
  if (process.stdin.isTTY) {
    process.stdin.on('data', printState);
    process.stdin.unref();
  }
  log(`children that exit are restarted; state: Enter, or kill -USR2 ${process.pid}`);
  const stopped = new Promise<string>((resolve) => {
    for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.once(signal, () => resolve(signal));
    // Started through npm or npx, `up` sits under a shell that dies of a SIGTERM without passing it on:
    // a parent that is gone (this process re-parented) stops the cluster too.
    const parent = process.ppid;
    const watch = setInterval(() => {
      if (process.ppid !== parent) resolve('SIGTERM');
    }, 1_000);
    watch.unref();
  });
  const reason = await Promise.race([stopped, cluster.unexpectedExit]);
  process.off('SIGUSR2', printState);
  if (reason === 'SIGINT' || reason === 'SIGTERM' || reason === 'SIGHUP') {
    log('stopping (draining the gateway, then the workers)');
    await cluster.stop();
    log('stopped');
    // NOTE: everything is stopped; exit now rather than wait on whatever handle a library keeps open
    // (before, `up` stayed alive after a SIGTERM).
    process.exit(0);
  }
  process.stderr.write(`switchyard: ${reason}\n`);
  await cluster.stop();
  process.exit(1);
}
