/**
 * The chaos suite's reporting: how many runs a case makes (`SWITCHYARD_CHAOS_RUNS` under `npm run chaos`,
 * a short count in `npm test`), and its table of runs, printed to stderr and written as Markdown to
 * `bench/out/chaos/<case>.md` so a full run's tables can be read back after it.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from '@switchyard/launcher';

/** The runs a case makes: `full` under `npm run chaos` (scaled by SWITCHYARD_CHAOS_RUNS ÷ 20), else `short`. */
export function chaosRuns(full: number, short: number): number {
  const raw = process.env['SWITCHYARD_CHAOS_RUNS'];
  if (raw === undefined) return short;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new Error(`SWITCHYARD_CHAOS_RUNS must be a positive integer, not ${raw}`);
  return Math.max(1, Math.round((full * n) / 20));
}

/** The value at quantile q (0–1) of a list of numbers (nearest rank, lower). */
export function quantile(values: readonly number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(q * (sorted.length - 1))] ?? Number.NaN;
}

/** Prints a case's table (header row, then one row per run, then a summary line) and writes it to bench/out/chaos. */
export function reportChaos(
  caseName: string,
  title: string,
  columns: readonly string[],
  rows: readonly (readonly (string | number)[])[],
  summary: string,
): string {
  const line = (cells: readonly (string | number)[]) => `| ${cells.join(' | ')} |`;
  const text = [
    `### chaos ${caseName}: ${title}`,
    '',
    line(columns),
    line(columns.map((_, i) => (i === 0 ? '--:' : '---'))),
    ...rows.map(line),
    '',
    summary,
    '',
  ].join('\n');
  process.stderr.write(`\n${text}`);
  const dir = join(REPO_ROOT, 'bench', 'out', 'chaos');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, `${caseName}.md`), text);
  return text;
}
