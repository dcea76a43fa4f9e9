import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { getPreset, randomWeights } from '@switchyard/model';
import { resolveSamplingParams } from '@switchyard/engine';
import { createEngine } from '@switchyard/onnx';
import {
  EngineTelemetry,
  readTraceFile,
  startTelemetry,
  type SpanRecord,
  type TokenReport,
} from '@switchyard/telemetry';
import {
  ATTR_GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,
  ATTR_GEN_AI_USAGE_INPUT_TOKENS,
  ATTR_GEN_AI_USAGE_OUTPUT_TOKENS,
  ATTR_REQUEST_COMPUTED_TOKENS,
  ATTR_REQUEST_DENSE_EQUIVALENT_FLOPS,
  ATTR_REQUEST_FLOPS,
  ATTR_STEP_DECODE_FLOPS,
  ATTR_STEP_PREFILL_FLOPS,
  SPAN_ENGINE_STEP,
} from '@switchyard/telemetry/names';
import { economicsCommand } from '../src/commands/economics.ts';
import { reportCommand } from '../src/commands/report.ts';

/** Runs a command in process and returns what it printed and the exit code it set. */
async function run(
  command: ReturnType<typeof reportCommand>,
  args: string[],
): Promise<{ stdout: string; stderr: string; code: number }> {
  let stdout = '';
  let stderr = '';
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => ((stdout += String(chunk)), true));
  vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => ((stderr += String(chunk)), true));
  process.exitCode = 0;
  try {
    await command.exitOverride().parseAsync(args, { from: 'user' });
  } finally {
    vi.restoreAllMocks();
  }
  const code = Number(process.exitCode ?? 0);
  process.exitCode = 0;
  return { stdout, stderr, code };
}

let dir = '';
let traceFile = '';

/** A real run of the tiny engine with telemetry at detail `summary`, written to a trace file. */
async function tracedRun(): Promise<void> {
  const config = getPreset('tiny');
  const telemetry = await startTelemetry({ serviceName: 'gateway', detail: 'summary', traceFile });
  const et = new EngineTelemetry(telemetry, { config, expertDtype: 'int8' });
  const bundle = await createEngine(
    { config, weights: randomWeights(config, 5), weightsDigest: 'ef'.repeat(32) },
    {
      expertDtype: 'int8',
      denseDtype: 'fp32',
      blockSize: 4,
      scheduler: { maxBatchedTokens: 32, maxRunningSequences: 8 },
      onRouted: et.onRouted,
    },
  );
  try {
    const { engine, tokenizer } = bundle;
    for (const round of [0, 1]) {
      ['Economics of experts', 'Sparse models are cheap to run'].forEach((prompt, i) => {
        const id = `r${round}-${i}`;
        const handle = et.startRequest({ operation: 'chat', model: config.name, requestId: id });
        engine.add(
          {
            id,
            promptIds: tokenizer.encode(prompt),
            params: resolveSamplingParams({ maxTokens: 8, temperature: 0, stopAtEos: false }),
          },
          handle.wrapSink(() => {}),
        );
      });
      while (engine.hasWork) await et.traceStep(() => engine.step());
    }
  } finally {
    await telemetry.shutdown();
    await bundle.close();
  }
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'switchyard-report-'));
  traceFile = join(dir, 'trace.jsonl');
  await tracedRun();
});
afterAll(() => rm(dir, { recursive: true, force: true }));
afterEach(() => vi.restoreAllMocks());

describe('switchyard report', () => {
  it('prints the table and writes report.json and an SVG chart whose numbers the spans confirm', async () => {
    const out = join(dir, 'out');
    const res = await run(reportCommand(), [traceFile, '--device-hour-usd', '3', '--out-dir', out]);
    expect(res.code).toBe(0);
    for (const row of [
      'tokens/s',
      'active params / token',
      'FLOPs / token',
      'per million input',
      'per million output',
      'saved: MoE sparsity',
      'saved: int8 experts',
      'saved: prefix cache',
    ]) {
      expect(res.stdout).toContain(row);
    }
    const report = JSON.parse(await readFile(join(out, 'report.json'), 'utf8')) as TokenReport;
    const svg = await readFile(join(out, 'report.svg'), 'utf8');
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg).toContain('Cost per million tokens');

    // Independently from the spans of the file:
    const spans = await readTraceFile(traceFile);
    const requests = spans.filter((s) => s.name === 'chat tiny');
    const steps = spans.filter((s) => s.name === SPAN_ENGINE_STEP);
    const sum = (list: SpanRecord[], name: string) => list.reduce((n, s) => n + Number(s.attributes[name] ?? 0), 0);
    expect(report.numRequests).toBe(4);
    expect(report.numSteps).toBe(steps.length);
    expect(report.tokens).toMatchObject({
      input: sum(requests, ATTR_GEN_AI_USAGE_INPUT_TOKENS),
      output: 4 * 8,
      cachedInput: sum(requests, ATTR_GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS),
      computed: sum(requests, ATTR_REQUEST_COMPUTED_TOKENS),
    });
    expect(sum(requests, ATTR_GEN_AI_USAGE_OUTPUT_TOKENS)).toBe(32);
    expect(report.tokens.cachedInput).toBeGreaterThan(0); // round 1 repeats round 0's prompts
    const wall =
      (Math.max(...requests.map((s) => s.endTimeUnixMs)) - Math.min(...requests.map((s) => s.startTimeUnixMs))) / 1000;
    expect(report.throughput.tokensPerSecond).toBeCloseTo((report.tokens.input + report.tokens.output) / wall, 6);
    expect(report.perToken.flops).toBeCloseTo(sum(requests, ATTR_REQUEST_FLOPS) / report.tokens.computed, 6);
    expect(report.perToken.denseEquivalentFlops).toBeCloseTo(
      sum(requests, ATTR_REQUEST_DENSE_EQUIVALENT_FLOPS) / report.tokens.computed,
      6,
    );

    const busy = steps.reduce((n, s) => n + s.durationMs, 0) / 1000;
    expect(report.cost.totalUsd).toBeCloseTo((busy * 3) / 3600, 12);
    let inputUsd = 0;
    for (const s of steps) {
      const p = Number(s.attributes[ATTR_STEP_PREFILL_FLOPS]);
      inputUsd += ((s.durationMs / 1000) * 3 * p) / 3600 / (p + Number(s.attributes[ATTR_STEP_DECODE_FLOPS]));
    }
    expect(report.cost.inputUsd + report.cost.outputUsd).toBeCloseTo(report.cost.totalUsd, 12);
    expect(report.cost.perMillionInputUsd).toBeCloseTo((inputUsd * 1e6) / report.tokens.input, 9);
    expect(report.cost.perMillionOutputUsd).toBeCloseTo(((report.cost.totalUsd - inputUsd) * 1e6) / 32, 9);

    const flops = sum(requests, ATTR_REQUEST_FLOPS);
    const dense = sum(requests, ATTR_REQUEST_DENSE_EQUIVALENT_FLOPS);
    expect(report.savings.moeSparsity.usd).toBeCloseTo(report.cost.totalUsd * (dense / flops - 1), 12);
    expect(report.savings.int8Experts).toMatchObject({ expertDtype: 'int8', applied: true });
    expect(report.savings.int8Experts.memoryBoundSpeedup).toBeGreaterThan(1);
    expect(report.savings.prefixCache.usd).toBeGreaterThan(0);
  });

  it('explains a missing trace file, or one without request spans, in one line', async () => {
    const missing = await run(reportCommand(), ['/nonexistent/trace.jsonl']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('no such file');
    const empty = join(dir, 'empty.jsonl');
    await writeFile(empty, '');
    const none = await run(reportCommand(), [empty]);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain(`no request spans in ${empty}`);
  });
});

describe('switchyard economics', () => {
  it.each([
    ['mixtral-8x7b', 12.9 / 46.7],
    ['deepseek-v3', 37 / 671],
  ])('gives %s an active ÷ total ratio within 2%% of the published one', async (preset, published) => {
    const res = await run(economicsCommand(), [
      '--preset',
      preset,
      '--device-hour-usd',
      '2.5',
      '--tokens-per-second',
      '1000',
      '--json',
    ]);
    const e = JSON.parse(res.stdout) as { activeFraction: number; costPerMillionOutputUsd: number };
    expect(Math.abs(e.activeFraction / published - 1)).toBeLessThan(0.02);
    expect(e.costPerMillionOutputUsd).toBeCloseTo((2.5 / 3600) * 1000, 9);
  });

  it('prints the table for deepseek-v3', async () => {
    const res = await run(economicsCommand(), ['--preset', 'deepseek-v3', '--tokens-per-second', '1000']);
    expect(res.stdout).toContain('deepseek-v3: 671 B parameters');
    expect(res.stdout).toContain('per million output');
  });

  it('asks for a rate when none is given', async () => {
    const res = await run(economicsCommand(), ['--preset', 'deepseek-v3']);
    expect(res.code).toBe(2);
    expect(res.stderr).toContain('give --tokens-per-second');
  });
});
