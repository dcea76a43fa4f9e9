import { Command, Option } from 'commander';
import {
  countConfigParams,
  expertSizeBytes,
  importHfCheckpoint,
  initModelDir,
  isPresetName,
  openModelDir,
  PRESET_NAMES,
  resolveCheckpointDir,
  weightsSizeBytes,
  type CheckpointLocation,
} from '@switchyard/model';
import { downloadHubSnapshot, parseHubReference } from '../hub-download.ts';
import { byteProgress } from '../progress.ts';
import { action, UsageError } from '../user-error.ts';
import { parseInteger } from '../parse.ts';

export function modelCommand(): Command {
  const model = new Command('model').description('create, inspect and import models');

  model
    .command('init')
    .description('write a preset model with seeded random weights')
    .addOption(new Option('--preset <name>', 'model preset').choices(PRESET_NAMES).default('small'))
    .option('--seed <n>', 'random seed (same preset and seed give byte-identical files)', parseInteger('--seed'), 1)
    .requiredOption('--out <dir>', 'directory to write')
    .action(
      action(async (opts: { preset: string; seed: number; out: string }) => {
        if (!isPresetName(opts.preset)) throw new UsageError(`unknown preset ${opts.preset}`);
        const bar = byteProgress(`writing ${opts.preset}`);
        const started = performance.now();
        const written = await initModelDir(opts.out, opts.preset, opts.seed, bar.update).finally(bar.stop);
        const seconds = (performance.now() - started) / 1000;
        process.stdout.write(
          `wrote ${opts.out}: ${(written.sizeBytes / 2 ** 20).toFixed(1)} MiB in ${seconds.toFixed(1)} s, weights sha256 ${written.weightsDigest}\n`,
        );
      }),
    );

  model
    .command('inspect')
    .description('print shapes, total and active parameters, and bytes of a model directory')
    .argument('<dir>', 'model directory')
    .option('--json', 'print one JSON object')
    .action(
      action(async (dir: string, opts: { json?: boolean }) => {
        const opened = await openModelDir(dir);
        await opened.close();
        const { config } = opened;
        const counts = countConfigParams(config);
        const report = {
          dir,
          name: config.name,
          family: config.family,
          config,
          weightsDigest: opened.weightsDigest,
          totalParams: counts.totalParams,
          activeParamsPerToken: counts.activeParamsPerToken,
          matmulParamsPerToken: counts.matmulParamsPerToken,
          activeFraction: counts.activeParamsPerToken / counts.totalParams,
          breakdown: { total: counts.total, activePerToken: counts.activePerToken },
          bytes: {
            fp32: weightsSizeBytes(config, 'f32'),
            int8Experts: weightsSizeBytes(config, 'int8'),
            expertFp32: expertSizeBytes(config, 'f32'),
            expertInt8: expertSizeBytes(config, 'int8'),
          },
          tensors: opened.layout.map((s) => ({ name: s.name, shape: s.shape })),
        };
        if (opts.json) {
          process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
          return;
        }
        process.stdout.write(formatInspect(report));
      }),
    );

  model
    .command('import')
    .description(
      'import a Hugging Face MoE checkpoint (Mixtral, OLMoE, Qwen2-MoE, Qwen3-MoE): a directory, a hub cache ' +
        'folder (models--org--name or its snapshots/<commit>), or hf://org/name[@revision] from the hub',
    )
    .argument('<source>', 'checkpoint directory, hub cache folder, or hf://org/name[@revision]')
    .requiredOption('--out <dir>', 'model directory to write')
    .option('--name <name>', 'model name (default: the repository or directory name)')
    .option('--revision <rev>', 'for a hub cache folder: the ref or commit to import (default refs/main)')
    .addOption(
      new Option('--hub-url <url>', 'for hf://: the hub to download from')
        .env('HF_ENDPOINT')
        .default('https://huggingface.co'),
    )
    .addOption(new Option('--cache-dir <dir>', 'for hf://: the hub cache to download into').env('HF_HUB_CACHE'))
    .action(
      action(
        async (
          source: string,
          opts: { out: string; name?: string; revision?: string; hubUrl: string; cacheDir?: string },
        ) => {
          const checkpoint = await locateCheckpoint(source, opts);
          const name = opts.name ?? checkpoint.repo?.split('/').at(-1);
          const bar = byteProgress('importing');
          const imported = await importHfCheckpoint(checkpoint.dir, opts.out, {
            ...(name ? { name } : {}),
            onProgress: bar.update,
          }).finally(bar.stop);
          const ignored =
            imported.ignoredTensors.length > 0 ? ` (ignored ${imported.ignoredTensors.length} unused tensors)` : '';
          const from = checkpoint.repo ? ` from ${checkpoint.repo}@${checkpoint.revision ?? ''}` : '';
          process.stdout.write(
            `imported ${imported.config.family} model ${imported.config.name}${from} into ${opts.out}${ignored}\n`,
          );
        },
      ),
    );
  return model;
}

/**
 * The checkpoint directory of an import's source: hf:// is downloaded into the hub cache first (token
 * from HF_TOKEN), a hub cache folder is resolved to its snapshot, anything else is the directory itself.
 */
async function locateCheckpoint(
  source: string,
  opts: { readonly revision?: string; readonly hubUrl: string; readonly cacheDir?: string },
): Promise<CheckpointLocation> {
  const ref = parseHubReference(source);
  if (!ref) return resolveCheckpointDir(source, opts.revision);
  const token = process.env['HF_TOKEN'];
  const bar = byteProgress(`downloading ${ref.repo}@${ref.revision}`);
  const snapshot = await downloadHubSnapshot(ref, {
    hubUrl: opts.hubUrl,
    ...(token ? { accessToken: token } : {}),
    ...(opts.cacheDir ? { cacheDir: opts.cacheDir } : {}),
    onProgress: bar.update,
  }).finally(bar.stop);
  return resolveCheckpointDir(snapshot);
}

interface InspectReport {
  readonly dir: string;
  readonly name: string;
  readonly family: string;
  readonly config: {
    readonly hiddenSize: number;
    readonly numLayers: number;
    readonly numHeads: number;
    readonly numKvHeads: number;
    readonly headDim: number;
    readonly numExperts: number;
    readonly numExpertsPerToken: number;
    readonly expertFfnSize: number;
    readonly vocabSize: number;
    readonly maxContext: number;
  };
  readonly totalParams: number;
  readonly activeParamsPerToken: number;
  readonly activeFraction: number;
  readonly bytes: {
    readonly fp32: number;
    readonly int8Experts: number;
    readonly expertFp32: number;
    readonly expertInt8: number;
  };
  readonly tensors: readonly { readonly name: string; readonly shape: readonly number[] }[];
}

function formatInspect(r: InspectReport): string {
  const c = r.config;
  const m = (n: number) => `${(n / 1e6).toFixed(2)}M`;
  const mib = (n: number) => `${(n / 2 ** 20).toFixed(1)} MiB`;
  return [
    `${r.name} (${r.family}) at ${r.dir}`,
    `  hidden ${c.hiddenSize}, ${c.numLayers} layers, ${c.numHeads} heads / ${c.numKvHeads} KV heads of ${c.headDim}, vocab ${c.vocabSize}, context ${c.maxContext}`,
    `  ${c.numExperts} experts, top-${c.numExpertsPerToken}, expert FFN ${c.expertFfnSize}`,
    `  parameters: total ${m(r.totalParams)}, active per token ${m(r.activeParamsPerToken)} (${(100 * r.activeFraction).toFixed(1)}%)`,
    `  bytes: fp32 ${mib(r.bytes.fp32)}, with int8 experts ${mib(r.bytes.int8Experts)}; one expert fp32 ${mib(r.bytes.expertFp32)} vs int8 ${mib(r.bytes.expertInt8)}`,
    `  ${r.tensors.length} tensors (--json lists them)`,
    '',
  ].join('\n');
}
