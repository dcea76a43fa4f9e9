/**
 * Command-line manners of the entry points (the `switchyard` CLI, the gateway, the expert worker and
 * the KV page store), run as real processes: `--version`, one line and exit code 2 for a mistake, and every service
 * flag's environment variable listed in `--help`.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const ENTRIES = {
  switchyard: 'services/cli/src/main.ts',
  gateway: 'services/gateway/src/main.ts',
  'expert-worker': 'services/expert-worker/src/main.ts',
  'kv-store': 'services/kv-store/src/main.ts',
} as const;

function run(entry: keyof typeof ENTRIES, args: readonly string[], env: Record<string, string> = {}) {
  const result = spawnSync(process.execPath, [ENTRIES[entry], ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    env: { PATH: process.env['PATH'] ?? '', ...env },
    timeout: 30_000,
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

const versionOf = (dir: string) =>
  (JSON.parse(readFileSync(`${ROOT}/${dir}/package.json`, 'utf8')) as { version: string }).version;

describe('command-line manners', () => {
  it('prints the version with --version', () => {
    expect(run('switchyard', ['--version'])).toMatchObject({ status: 0, stdout: `${versionOf('services/cli')}\n` });
    expect(run('gateway', ['--version'])).toMatchObject({ status: 0, stdout: `${versionOf('services/gateway')}\n` });
    expect(run('expert-worker', ['-V'])).toMatchObject({
      status: 0,
      stdout: `${versionOf('services/expert-worker')}\n`,
    });
    expect(run('kv-store', ['--version'])).toMatchObject({ status: 0, stdout: `${versionOf('services/kv-store')}\n` });
  });

  it.each([
    ['switchyard', ['--frobnicate']],
    ['switchyard', ['up', '--frobnicate']],
    ['gateway', ['--model', 'models/x', '--frobnicate']],
    ['expert-worker', ['--frobnicate', '1']],
    ['kv-store', ['--frobnicate']],
  ] as const)('%s %j: an unknown flag is one line naming it, exit code 2', (entry, args) => {
    const { status, stdout, stderr } = run(entry, args);
    expect(status).toBe(2);
    expect(stdout).toBe('');
    expect(stderr).toBe(`${entry}: unknown option '--frobnicate'\n`);
  });

  it('reports a flag without its value, or a bad value from a variable, in one line with exit code 2', () => {
    expect(run('switchyard', ['up', '--worker-threads', '0'])).toMatchObject({
      status: 2,
      stdout: '',
      stderr: 'switchyard: --worker-threads must be ≥ 1, got 0\n',
    });
    expect(run('gateway', ['--port'])).toMatchObject({
      status: 2,
      stderr: "gateway: option '--port <n>' argument missing\n",
    });
    // The KV bulk data plane's flags, from their variables.
    expect(run('gateway', ['--model', 'models/x'], { SWITCHYARD_KV_TRANSPORT: 'udp' })).toMatchObject({
      status: 2,
      stderr: 'gateway: --kv-transport must be one of tcp, grpc, got "udp"\n',
    });
    expect(run('kv-store', ['--nats-url', 'nats://127.0.0.1:1'], { SWITCHYARD_KV_DATA_PORT: '70000' })).toMatchObject({
      status: 2,
      stderr: 'kv-store: --kv-data-port must be an integer in [0, 65535], got "70000"\n',
    });
    // The worker's message-size bound has its own variable now.
    expect(run('expert-worker', ['--model', 'models/x'], { SWITCHYARD_WORKER_MAX_TOKENS_PER_RUN: '0' })).toMatchObject({
      status: 2,
      stderr: 'expert-worker: --max-tokens-per-run must be a positive integer, got 0\n',
    });
    expect(
      run('kv-store', ['--nats-url', 'nats://127.0.0.1:1'], { SWITCHYARD_KV_STORE_CAPACITY_BYTES: '4 bananas' }),
    ).toMatchObject({
      status: 2,
      stderr: 'kv-store: --capacity-bytes must be a size such as 1GiB or 536870912, got "4 bananas"\n',
    });
  });

  it.each(['gateway', 'expert-worker', 'kv-store'] as const)(
    '%s --help lists every flag with its SWITCHYARD_* variable',
    (entry) => {
      const { status, stdout } = run(entry, ['--help']);
      expect(status).toBe(0);
      // One option per entry (wrapped lines joined): "--flag <value>  what it does (env: VARIABLE[, OTHER])".
      const block = stdout.slice(stdout.indexOf('Options:'));
      const text = block.slice(0, block.indexOf('\n\n')).replace(/\s+/g, ' ');
      const options = [...text.matchAll(/ (--[a-z-]+)(?: <[^>]+>)? (.*?)(?= (?:-[a-zA-Z], )?--[a-z-]+|$)/g)];
      const flags = options.map((m) => m[1]).filter((f) => f !== '--help' && f !== '--version');
      // (the parse found the options: each service has more flags than this)
      expect(flags.length).toBeGreaterThan(entry === 'kv-store' ? 6 : 10);
      for (const option of options) {
        if (option[1] === '--help' || option[1] === '--version') continue;
        expect(option[2], option[1]).toMatch(/\(env: SWITCHYARD_[A-Z0-9_]+(, [A-Z_]+)?\)/);
      }
      // The flag → variable table the Kubernetes checks read is the one --help shows.
      const source = readFileSync(`${ROOT}/${ENTRIES[entry]}`, 'utf8');
      const table = /\bconst ENV_OF = \{([\s\S]*?)\} as const/.exec(source)?.[1] ?? '';
      for (const [, flag, variable] of table.matchAll(/'?([a-z-]+)'?: '(SWITCHYARD_[A-Z0-9_]+)'/g))
        expect(text).toMatch(new RegExp(`--${flag ?? ''} .*?\\(env: ${variable ?? ''}[,)]`));
    },
  );
});
