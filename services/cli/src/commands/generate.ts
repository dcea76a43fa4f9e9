import { Command, Option } from 'commander';
import { countConfigParams, loadModelDir } from '@switchyard/model';
import { EngineLoop, resolveSamplingParams, type TokenEvent } from '@switchyard/engine';
import { createEngine, DEFAULT_ENGINE_OPTIONS } from '@switchyard/onnx';
import { action, UsageError } from '../user-error.ts';
import { parseIdList, parseInteger, parseNumber } from '../parse.ts';

interface GenerateOptions {
  model: string;
  prompt?: string;
  promptIds?: number[];
  maxTokens: number;
  temperature: number;
  topK: number;
  topP: number;
  seed: number;
  stop: string[];
  ignoreEos?: boolean;
  expertDtype: 'fp32' | 'int8';
  dtype: 'fp32' | 'int8';
  json?: boolean;
}

export function generateCommand(): Command {
  return new Command('generate')
    .description('generate text with the monolithic engine (all experts in this process)')
    .requiredOption('--model <dir>', 'model directory')
    .option('--prompt <text>', 'prompt text (byte-level tokenizer)')
    .option('--prompt-ids <ids>', 'prompt as comma-separated token ids, instead of --prompt', parseIdList)
    .option('--max-tokens <n>', 'tokens to generate', parseInteger('--max-tokens'), 32)
    .option('--temperature <t>', 'sampling temperature; 0 is greedy', parseNumber('--temperature'), 0)
    .option('--top-k <k>', 'keep the k most likely tokens (0: all)', parseInteger('--top-k'), 0)
    .option('--top-p <p>', 'nucleus sampling mass', parseNumber('--top-p'), 1)
    .option(
      '--seed <n>',
      'sampling seed (a replay with the same seed gives the same tokens)',
      parseInteger('--seed'),
      1,
    )
    .option('--stop <text>', 'stop sequence (repeatable)', (v: string, prev: string[]) => [...prev, v], [] as string[])
    .option('--ignore-eos', 'keep generating past the end-of-sequence token')
    .addOption(
      new Option('--expert-dtype <dtype>', 'expert weights: fp32, or int8 quantised at load')
        .choices(['fp32', 'int8'])
        .default('fp32'),
    )
    .addOption(
      new Option('--dtype <dtype>', 'attention and LM head weights: fp32 or int8')
        .choices(['fp32', 'int8'])
        .default('fp32'),
    )
    .option('--json', 'print one JSON object: output ids, text and summary')
    .action(action(runGenerate));
}

async function runGenerate(opts: GenerateOptions): Promise<void> {
  if ((opts.prompt === undefined) === (opts.promptIds === undefined))
    throw new UsageError('give exactly one of --prompt and --prompt-ids');
  const loadStarted = performance.now();
  const model = await loadModelDir(opts.model);
  const bundle = await createEngine(model, {
    ...DEFAULT_ENGINE_OPTIONS,
    expertDtype: opts.expertDtype,
    denseDtype: opts.dtype,
  });
  const loadSeconds = (performance.now() - loadStarted) / 1000;
  const loop = new EngineLoop(bundle.engine);
  try {
    const promptIds = opts.promptIds ?? bundle.tokenizer.encode(opts.prompt ?? '');
    const outOfVocab = promptIds.find((id) => id >= model.config.vocabSize);
    if (outOfVocab !== undefined)
      throw new UsageError(`token id ${outOfVocab} is outside the vocabulary of ${model.config.vocabSize}`);
    const params = resolveSamplingParams({
      maxTokens: opts.maxTokens,
      temperature: opts.temperature,
      topK: opts.topK,
      topP: opts.topP,
      seed: opts.seed,
      stop: opts.stop,
      stopAtEos: !opts.ignoreEos,
    });
    const started = performance.now();
    let firstTokenAt = 0;
    const streaming = !opts.json && process.stdout.isTTY;
    const events: TokenEvent[] = await new Promise((resolve, reject) => {
      const collected: TokenEvent[] = [];
      try {
        loop.submit({ id: 'cli', promptIds, params }, (event) => {
          if (firstTokenAt === 0) firstTokenAt = performance.now();
          collected.push(event);
          if (streaming) process.stdout.write(event.text);
          if (event.finishReason) resolve(collected);
        });
      } catch (error) {
        reject(error instanceof Error ? error : new Error(String(error)));
      }
    });
    const ended = performance.now();
    const last = events.at(-1);
    if (last?.error) throw last.error;
    const outputIds = events.filter((e) => e.tokenId >= 0).map((e) => e.tokenId);
    const text = events.map((e) => e.text).join('');
    const numDecode = Math.max(0, outputIds.length - 1);
    const counts = countConfigParams(model.config);
    const summary = {
      promptTokens: promptIds.length,
      outputTokens: outputIds.length,
      finishReason: last?.finishReason,
      timeToFirstTokenMs: round(firstTokenAt - started),
      decodeTokensPerSecond: numDecode > 0 ? round((numDecode * 1000) / (ended - firstTokenAt)) : 0,
      tokensPerSecond: round((outputIds.length * 1000) / (ended - started)),
      activeParamsPerToken: counts.activeParamsPerToken,
      totalParams: counts.totalParams,
      expertDtype: opts.expertDtype,
      loadSeconds: round(loadSeconds),
    };
    if (opts.json) {
      process.stdout.write(`${JSON.stringify({ outputIds, text, summary })}\n`);
      return;
    }
    if (!streaming) process.stdout.write(text);
    process.stdout.write('\n');
    process.stderr.write(
      `— ${summary.promptTokens} prompt tokens, ${summary.outputTokens} output tokens (${summary.finishReason}); ` +
        `first token ${summary.timeToFirstTokenMs} ms, ${summary.decodeTokensPerSecond} tokens/s decode; ` +
        `${(summary.activeParamsPerToken / 1e6).toFixed(2)}M of ${(summary.totalParams / 1e6).toFixed(2)}M parameters active per token (${opts.expertDtype} experts)\n`,
    );
  } finally {
    await loop.stop(1000);
    await bundle.close();
  }
}

function round(n: number): number {
  return Math.round(n * 100) / 100;
}
