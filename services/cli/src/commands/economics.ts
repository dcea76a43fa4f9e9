import { Command, Option } from 'commander';
import { getPreset, isPresetName, PRESET_NAMES, REAL_MODEL_NAMES, shapeOfConfig } from '@switchyard/model';
import {
  presetEconomics,
  shapeEconomics,
  throughputOf,
  type ShapeEconomics,
  type ShapeEconomicsOptions,
} from '@switchyard/telemetry';
import { action, UsageError } from '../user-error.ts';
import { parseInteger, parseNumber } from '../parse.ts';

interface EconomicsOptions {
  preset: string;
  deviceHourUsd: number;
  tokensPerSecond?: number;
  inputTokensPerSecond?: number;
  outputTokensPerSecond?: number;
  expertDtype: 'fp32' | 'int8';
  contextTokens: number;
  prefixHitRate: number;
  json?: boolean;
}

export function economicsCommand(): Command {
  return new Command('economics')
    .description(
      "token economics from a model's shapes alone: cost per million tokens and what MoE sparsity, int8 experts and prefix caching save",
    )
    .addOption(
      new Option('--preset <name>', 'real-model shape preset (or a runnable preset)')
        .choices([...REAL_MODEL_NAMES, ...PRESET_NAMES])
        .makeOptionMandatory(),
    )
    .option('--device-hour-usd <usd>', 'price of one device-hour in US dollars', parseNumber('--device-hour-usd'), 2.5)
    .option(
      '--tokens-per-second <n>',
      'measured tokens per second per device, input and output together',
      parseNumber('--tokens-per-second'),
    )
    .option(
      '--input-tokens-per-second <n>',
      'prefill rate per device (default: --tokens-per-second)',
      parseNumber('--input-tokens-per-second'),
    )
    .option(
      '--output-tokens-per-second <n>',
      'decode rate per device (default: --tokens-per-second)',
      parseNumber('--output-tokens-per-second'),
    )
    .addOption(
      new Option('--expert-dtype <dtype>', 'expert weights the rate was measured with')
        .choices(['fp32', 'int8'])
        .default('fp32'),
    )
    .option(
      '--context-tokens <n>',
      'prompt length behind the per-token figures',
      parseInteger('--context-tokens'),
      2048,
    )
    .option(
      '--prefix-hit-rate <r>',
      'fraction of prompt tokens found in the prefix cache, 0–1',
      parseNumber('--prefix-hit-rate'),
      0,
    )
    .option('--json', 'print one JSON object')
    .action(action(runEconomics));
}

async function runEconomics(opts: EconomicsOptions): Promise<void> {
  const rate = opts.tokensPerSecond;
  const input = opts.inputTokensPerSecond ?? rate;
  const output = opts.outputTokensPerSecond ?? rate;
  if (input === undefined || output === undefined) {
    throw new UsageError('give --tokens-per-second (or both --input-tokens-per-second and --output-tokens-per-second)');
  }
  const options: ShapeEconomicsOptions = {
    deviceHourUsd: opts.deviceHourUsd,
    throughput: throughputOf(rate ?? input, input, output),
    expertFormat: opts.expertDtype === 'fp32' ? 'f32' : 'int8',
    contextTokens: opts.contextTokens,
    prefixHitRate: opts.prefixHitRate,
  };
  const economics = isPresetName(opts.preset)
    ? shapeEconomics(shapeOfConfig(getPreset(opts.preset)), options)
    : presetEconomics(opts.preset, options);
  if (opts.json) {
    process.stdout.write(`${JSON.stringify(economics)}\n`);
    return;
  }
  process.stdout.write(`${formatEconomics(economics, opts, input, output)}\n`);
}

function formatEconomics(e: ShapeEconomics, opts: EconomicsOptions, input: number, output: number): string {
  const pct = (x: number) => `${(100 * x).toFixed(2)}%`;
  const p = e.published;
  const published = p
    ? `; published ${formatCount(p.activeParams, ' B')} of ${formatCount(p.totalParams, ' B')} = ${pct(p.activeFraction)}`
    : '';
  const s = e.savings;
  return formatTable(
    `${e.model}: ${formatCount(e.totalParams, ' B')} parameters, ${formatCount(e.activeParamsPerToken, ' B')} active per token (${pct(e.activeFraction)}${published})`,
    [
      [
        `FLOPs / input token`,
        `${formatCount(e.flopsPerInputToken)} (dense equivalent ${formatCount(e.denseEquivalentFlopsPerInputToken)}), ${e.contextTokens}-token prompt`,
      ],
      [
        `FLOPs / output token`,
        `${formatCount(e.flopsPerOutputToken)} (dense equivalent ${formatCount(e.denseEquivalentFlopsPerOutputToken)})`,
      ],
      [
        'per million input',
        `${formatUsd(e.costPerMillionInputUsd)} at ${formatUsd(opts.deviceHourUsd)}/device-hour and ${input} tokens/s`,
      ],
      ['per million output', `${formatUsd(e.costPerMillionOutputUsd)} at ${output} tokens/s`],
      [
        'saved: MoE sparsity',
        `${formatUsd(s.moeSparsity.usdPerMillionOutput)} per million output, ${formatUsd(s.moeSparsity.usdPerMillionInput)} per million input (${pct(s.moeSparsity.flopsFraction)} of FLOPs)`,
      ],
      [
        s.int8Experts.applied ? 'saved: int8 experts' : 'would save: int8 experts',
        `${formatUsd(s.int8Experts.usdPerMillionOutput)} per million output (${s.int8Experts.memoryBoundSpeedup.toFixed(2)}× fewer weight bytes per decode token)`,
      ],
      [
        'saved: prefix cache',
        `${formatUsd(s.prefixCache.usdPerMillionInput)} per million input (hit rate ${pct(s.prefixCache.hitRate)}, ${pct(s.prefixCache.prefillFlopsFraction)} of prefill FLOPs)`,
      ],
    ],
  );
}

/** 1234567 → "1.23 M" (FLOPs, bytes); `giga: ' B'` for parameter counts ("37.6 B"). */
export function formatCount(n: number, giga = ' G'): string {
  const units = ['', ' k', ' M', giga, ' T', ' P', ' E'];
  let i = 0;
  let v = n;
  while (Math.abs(v) >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${i === 0 ? String(Math.round(v)) : v.toPrecision(3)}${units[i] ?? ''}`;
}

/** Dollars with cents, or three significant digits below a cent. */
export function formatUsd(usd: number): string {
  return Math.abs(usd) >= 0.01 || usd === 0 ? `$${usd.toFixed(2)}` : `$${usd.toPrecision(3)}`;
}

/** A title and two aligned columns. */
export function formatTable(title: string, rows: readonly (readonly [string, string])[]): string {
  const width = Math.max(...rows.map(([label]) => label.length));
  return [title, ...rows.map(([label, value]) => `  ${label.padEnd(width)}  ${value}`)].join('\n');
}
