/**
 * Command-line manners of every `npm run bench:*` script, run as real processes: `--help` prints its
 * usage and exits 0, an unknown flag is one line naming the bench and exit code 2 (no stack trace), and a
 * bad value is refused the same way before any work starts.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const scripts = (JSON.parse(readFileSync(`${ROOT}/package.json`, 'utf8')) as { scripts: Record<string, string> })
  .scripts;
/** [script name, file] for every `bench:<x>` script that runs a file under bench/. */
const BENCHES = Object.entries(scripts)
  .filter(([name]) => name.startsWith('bench:'))
  .map(([name, command]) => [name, /^node (bench\/[\w-]+\.ts)$/.exec(command)?.[1] ?? command] as const);

function run(file: string, args: readonly string[]) {
  const result = spawnSync(process.execPath, [file, ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    env: { PATH: process.env['PATH'] ?? '' },
    timeout: 30_000,
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('bench command-line manners', () => {
  it('finds the bench scripts', () => {
    expect(BENCHES.length).toBeGreaterThanOrEqual(12);
    for (const [, file] of BENCHES) expect(file).toMatch(/^bench\/[\w-]+\.ts$/);
  });

  it.each(BENCHES)('%s answers --help and refuses an unknown flag in one line', (name, file) => {
    const help = run(file, ['--help']);
    expect(help.status, help.stderr).toBe(0);
    expect(help.stdout).toMatch(new RegExp(`^usage: npm run ${name} -- `));
    expect(help.stderr).toBe('');
    expect(run(file, ['--frobnicate'])).toEqual({
      status: 2,
      stdout: '',
      stderr: `${name}: Unknown option '--frobnicate' (--help for usage)\n`,
    });
  });

  it.each([
    ['bench/queue-latency.ts', ['--requests', 'x'], 'bench:queue: --requests must be an integer ≥ 1, got "x"'],
    ['bench/decode-profile.ts', ['--dtypes', 'fp16'], 'bench:profile: --dtypes must list fp32 and/or int8, got "fp16"'],
    ['bench/decode-profile.ts', ['--batches', '0'], 'bench:profile: --batches must be an integer ≥ 1, got "0"'],
    [
      'bench/decode-profile.ts',
      ['--dense-dtype', 'bf16'],
      'bench:profile: --dense-dtype must be fp32 or int8, got "bf16"',
    ],
    ['bench/kv-routing.ts', ['--rounds', '0'], 'bench:kv: --rounds must be an integer ≥ 1, got "0"'],
    ['bench/session-spinning.ts', ['--sessions', 'x'], 'bench:spinning: --sessions must be an integer ≥ 1, got "x"'],
    ['bench/health-latency.ts', ['--clients', '0'], 'bench:health: --clients must be an integer ≥ 1, got "0"'],
    [
      'bench/engine-bench.ts',
      ['--prompts', 'same'],
      'bench:engine: --prompts must be distinct or identical, got "same"',
    ],
  ] as const)('%s %j: a bad value is one line, exit code 2', (file, args, message) => {
    expect(run(file, args)).toEqual({ status: 2, stdout: '', stderr: `${message} (--help for usage)\n` });
  });
});
