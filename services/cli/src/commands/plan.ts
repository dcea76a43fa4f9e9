import { Command, Option } from 'commander';
import {
  getPreset,
  getRealModel,
  isPresetName,
  isRealModelName,
  PRESET_NAMES,
  REAL_MODEL_NAMES,
  shapeOfConfig,
  type ShapeSpec,
} from '@switchyard/model';
import {
  measureLoopbackBandwidth,
  planCapacity,
  plannerJson,
  plannerText,
  type PlannerInput,
} from '@switchyard/loadgen';
import { measureMatMulFlops, measureReadBandwidth } from '@switchyard/onnx';
import { parseInteger, parseNumber } from '../parse.ts';
import { action, UsageError } from '../user-error.ts';

interface PlanOptions {
  preset?: string;
  attentionNodes: number;
  expertNodes?: number;
  linkGbps: number;
  deviceTflops: number;
  deviceMemGbps: number;
  batchTokens?: number;
  dtypeBytes?: number;
  weightBytes?: number;
  json: boolean;
  local: boolean;
}

const MEASURED = ['linkGbps', 'deviceTflops', 'deviceMemGbps'] as const;

export function planCommand(): Command {
  return new Command('plan')
    .description(
      'capacity planner for attention–FFN disaggregation: bytes per token per layer for dispatch and combine, and the token/s bounds set by ' +
        'the links, by expert compute and by expert-weight memory traffic (defaults: one H100 SXM and a 400 Gb/s NIC per node)',
    )
    .addOption(
      new Option(
        '--preset <name>',
        'real-model shapes or a runnable preset (default: deepseek-v3; small with --local)',
      ).choices([...REAL_MODEL_NAMES, ...PRESET_NAMES]),
    )
    .option(
      '--attention-nodes <n>',
      'nodes running attention (and the router, shared experts, dense layers)',
      parseInteger('--attention-nodes'),
      4,
    )
    .option(
      '--expert-nodes <n>',
      'nodes holding the routed experts (default 8; the worker count, 2, with --local)',
      parseInteger('--expert-nodes'),
    )
    .option('--link-gbps <g>', 'network per node and direction, Gbit/s', parseNumber('--link-gbps'), 400)
    .option(
      '--device-tflops <t>',
      'dense TFLOP/s per expert device at the expert dtype',
      parseNumber('--device-tflops'),
      990,
    )
    .option('--device-mem-gbps <g>', 'memory bandwidth per expert device, GB/s', parseNumber('--device-mem-gbps'), 3350)
    .option(
      '--batch-tokens <n>',
      'tokens per step over all attention nodes (default 4096; 64 with --local)',
      parseInteger('--batch-tokens'),
    )
    .option(
      '--dtype-bytes <n>',
      'bytes per activation on the wire (default 2, bf16; 4 with --local: fp32, as our wire)',
      parseNumber('--dtype-bytes'),
    )
    .option(
      '--weight-bytes <n>',
      'bytes per expert weight (default: --dtype-bytes; 1 for fp8/int8)',
      parseNumber('--weight-bytes'),
    )
    .option('--json', 'print JSON', false)
    .option(
      '--local',
      'this machine: measure MatMul FLOP/s, read bandwidth and loopback TCP bandwidth, and plan for nodes that share it',
      false,
    )
    .action(action(runPlan));
}

function shapeOf(name: string): ShapeSpec {
  if (isRealModelName(name)) return getRealModel(name).shape;
  if (isPresetName(name)) return shapeOfConfig(getPreset(name));
  throw new UsageError(`unknown preset ${name}`);
}

async function runPlan(opts: PlanOptions, command: Command): Promise<void> {
  const measuredGiven = MEASURED.filter((f) => command.getOptionValueSource(f) === 'cli');
  if (opts.local && measuredGiven.length > 0)
    throw new UsageError(
      '--local measures the link, FLOP/s and memory figures itself; drop --link-gbps, --device-tflops and --device-mem-gbps',
    );
  const dtypeBytes = opts.dtypeBytes ?? (opts.local ? 4 : 2);
  let figures = { linkGbps: opts.linkGbps, deviceTflops: opts.deviceTflops, deviceMemGBps: opts.deviceMemGbps };
  if (opts.local) {
    process.stderr.write('switchyard plan: measuring this machine (MatMul FLOP/s, read bandwidth, loopback TCP) …\n');
    // Short best-of-few measurements, the engine bench's probes.
    const matMulFlopsPerS = (await measureMatMulFlops(512, 2048, 2048, { repeats: 3 })).value;
    const readBytesPerS = (await measureReadBandwidth(256 << 20, { repeats: 3 })).value;
    const loopbackBytesPerS = await measureLoopbackBandwidth();
    figures = {
      linkGbps: (loopbackBytesPerS * 8) / 1e9,
      deviceTflops: matMulFlopsPerS / 1e12,
      deviceMemGBps: readBytesPerS / 1e9,
    };
  }
  const input: PlannerInput = {
    shape: shapeOf(opts.preset ?? (opts.local ? 'small' : 'deepseek-v3')),
    attentionNodes: opts.local ? 1 : opts.attentionNodes,
    expertNodes: opts.expertNodes ?? (opts.local ? 2 : 8),
    ...figures,
    batchTokens: opts.batchTokens ?? (opts.local ? 64 : 4096),
    dtypeBytes,
    weightBytes: opts.weightBytes ?? dtypeBytes,
    sharedMachine: opts.local,
  };
  const result = planCapacity(input);
  process.stdout.write(
    opts.json ? `${JSON.stringify(plannerJson(input, result), null, 2)}\n` : plannerText(input, result),
  );
}
