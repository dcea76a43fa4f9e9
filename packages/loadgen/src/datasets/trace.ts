/**
 * Trace replay in the format of Mooncake's published traces: JSON lines
 * `{"timestamp": 27482, "input_length": 6955, "output_length": 52, "hash_ids": [46, 47, …]}` with the
 * arrival time in ms and, optionally, the ids of the prompt's 512-token blocks — equal ids mean an equal
 * prefix. Each block id becomes a fixed run of seeded tokens, so requests that share block ids share a
 * prompt prefix and the server's prefix cache sees what the original system saw.
 *
 * A bad line is reported with its number; the caller's policy skips it or stops the run.
 */

import { readFile } from 'node:fs/promises';
import type { BenchRequest } from '../request-output.ts';
import { SeededRandom } from '../seeded-random.ts';
import { DatasetSpecError } from './random.ts';

/** Mooncake's block size in tokens. */
export const MOONCAKE_BLOCK_TOKENS = 512;

export type BadLinePolicy = 'skip' | 'fail';

export interface TraceDatasetSpec {
  readonly kind: 'trace';
  readonly path: string;
  readonly onBadLine: BadLinePolicy;
  /** Tokens per hash id (512 in Mooncake's traces). */
  readonly blockTokens: number;
  /** Multiplies input, output and block lengths (e.g. 0.05 to replay a long-context trace on a small model). */
  readonly lengthScale: number;
}

export interface TraceRecord {
  /** 1-based line number in the file. */
  readonly line: number;
  readonly timestampMs: number;
  readonly inputLength: number;
  readonly outputLength: number;
  readonly hashIds: readonly number[] | undefined;
}

export interface TraceProblem {
  readonly line: number;
  readonly message: string;
}

export class TraceLineError extends Error {
  override readonly name = 'TraceLineError';
  readonly code = 'bad_trace_line' as const;
  readonly line: number;

  constructor(source: string, problem: TraceProblem) {
    super(`${source}:${problem.line}: ${problem.message} (use --trace-bad-lines skip to skip bad lines)`);
    this.line = problem.line;
  }
}

const isPositiveInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 1;
const show = (v: unknown) => (v === undefined ? 'nothing' : JSON.stringify(v));

/** One line's record, or the reason it is not one. */
function parseLine(text: string, line: number): TraceRecord | TraceProblem {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return { line, message: `not JSON (${error instanceof Error ? error.message : String(error)})` };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    return { line, message: 'not a JSON object' };
  const { timestamp, input_length: input, output_length: output, hash_ids: hashIds } = value as Record<string, unknown>;
  if (typeof timestamp !== 'number' || !Number.isFinite(timestamp) || timestamp < 0) {
    return { line, message: `timestamp must be a number of ms ≥ 0, got ${show(timestamp)}` };
  }
  if (!isPositiveInt(input)) return { line, message: `input_length must be a positive integer, got ${show(input)}` };
  if (!isPositiveInt(output)) return { line, message: `output_length must be a positive integer, got ${show(output)}` };
  if (
    hashIds !== undefined &&
    !(Array.isArray(hashIds) && hashIds.every((h) => typeof h === 'number' && Number.isInteger(h) && h >= 0))
  ) {
    return { line, message: 'hash_ids must be an array of non-negative integers' };
  }
  return {
    line,
    timestampMs: timestamp,
    inputLength: input,
    outputLength: output,
    hashIds: hashIds as number[] | undefined,
  };
}

/** Every record and every problem of a trace's text; blank lines are neither. */
export function parseTrace(text: string): {
  readonly records: readonly TraceRecord[];
  readonly problems: readonly TraceProblem[];
} {
  const records: TraceRecord[] = [];
  const problems: TraceProblem[] = [];
  text.split('\n').forEach((raw, i) => {
    if (raw.trim() === '') return;
    const parsed = parseLine(raw, i + 1);
    if ('message' in parsed) problems.push(parsed);
    else records.push(parsed);
  });
  return { records, problems };
}

/**
 * Applies the bad-line policy: `fail` throws a `TraceLineError` for the first bad line; `skip` reports
 * each through `warn` and keeps the good records.
 */
export function acceptTrace(
  parsed: ReturnType<typeof parseTrace>,
  policy: BadLinePolicy,
  source: string,
  warn: (line: string) => void,
): readonly TraceRecord[] {
  const first = parsed.problems[0];
  if (first !== undefined && policy === 'fail') throw new TraceLineError(source, first);
  for (const p of parsed.problems) warn(`${source}:${p.line}: ${p.message} (skipped)`);
  return parsed.records;
}

const scaled = (n: number, scale: number) => Math.max(1, Math.round(n * scale));

/**
 * Requests for trace records: arrival = timestamp − the earliest timestamp; the prompt is the blocks of
 * its hash ids (each a seeded run of `blockTokens` tokens, the same wherever the id appears), cut or
 * padded with tokens unique to the line to `input_length`.
 */
export function traceRequests(
  records: readonly TraceRecord[],
  spec: TraceDatasetSpec,
  vocabSize: number,
  seed: number,
): BenchRequest[] {
  if (records.length === 0) throw new DatasetSpecError(`${spec.path} has no usable lines`);
  const t0 = Math.min(...records.map((r) => r.timestampMs));
  const blockTokens = scaled(spec.blockTokens, spec.lengthScale);
  const blocks = new Map<number, number[]>();
  const block = (id: number): number[] => {
    let tokens = blocks.get(id);
    if (tokens === undefined) {
      const random = new SeededRandom(seed, `trace-block-${id}`);
      tokens = Array.from({ length: blockTokens }, () => random.integer(0, vocabSize - 1));
      blocks.set(id, tokens);
    }
    return tokens;
  };
  const inArrivalOrder = [...records].sort((a, b) => a.timestampMs - b.timestampMs);
  return inArrivalOrder.map((r) => {
    const inputLen = scaled(r.inputLength, spec.lengthScale);
    const prompt = (r.hashIds ?? []).flatMap(block).slice(0, inputLen);
    const unique = new SeededRandom(seed, `trace-line-${r.line}`);
    while (prompt.length < inputLen) prompt.push(unique.integer(0, vocabSize - 1));
    return { promptIds: prompt, outputLen: scaled(r.outputLength, spec.lengthScale), arrivalMs: r.timestampMs - t0 };
  });
}

/** Reads, parses and checks a trace file; records in file order. */
export async function loadTrace(spec: TraceDatasetSpec, warn: (line: string) => void): Promise<readonly TraceRecord[]> {
  const text = await readFile(spec.path, 'utf8');
  return acceptTrace(parseTrace(text), spec.onBadLine, spec.path, warn);
}
