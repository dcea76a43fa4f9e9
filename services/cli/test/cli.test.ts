import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const main = new URL('../src/main.ts', import.meta.url).pathname;

async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [main, ...args], { maxBuffer: 16 << 20 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

async function digests(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const f of (await readdir(dir)).sort())
    out[f] = createHash('sha256')
      .update(await readFile(join(dir, f)))
      .digest('hex');
  return out;
}

let root = '';
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'switchyard-cli-'));
});
afterAll(() => rm(root, { recursive: true, force: true }));

describe('switchyard CLI', () => {
  it('writes NATS users for a cluster: a config nats-server accepts and one user seed per process', async () => {
    const out = join(root, 'nats');
    const made = await cli(
      'nats-config',
      '--out',
      out,
      '--namespace',
      'demo',
      '--engines',
      'e0',
      '--frontends',
      'f0,f1',
      '--workers',
      '0',
    );
    expect(made.code).toBe(0);
    expect((await readdir(out)).sort()).toEqual(['auth.conf', 'e0.nk', 'f0.nk', 'f1.nk', 'worker-0.nk']);
    expect((await readFile(join(out, 'f1.nk'), 'utf8')).trim()).toMatch(/^SU[A-Z2-7]{56}$/);
    const conf = await readFile(join(out, 'auth.conf'), 'utf8');
    expect(conf.match(/nkey: "U[A-Z2-7]{55}"/g)).toHaveLength(4);
    expect(conf).toContain('"switchyard.v1.demo.cancel.f1.*"');
    const checked = await run('/usr/sbin/nats-server', ['-c', join(out, 'auth.conf'), '-t']);
    expect(`${checked.stdout}${checked.stderr}`).toMatch(/is valid/);
    // Nothing is overwritten without --force; a bad call is one line and exit 2.
    const again = await cli('nats-config', '--out', out, '--engines', 'e0');
    expect(again).toMatchObject({ code: 2, stderr: expect.stringMatching(/exists \(--force to overwrite\)\n$/) });
    expect((await cli('nats-config', '--out', join(root, 'none'))).code).toBe(2);
  });

  it('writes byte-identical files for the same preset and seed', async () => {
    const a = await cli('model', 'init', '--preset', 'tiny', '--seed', '1', '--out', join(root, 'a'));
    const b = await cli('model', 'init', '--preset', 'tiny', '--seed', '1', '--out', join(root, 'b'));
    expect(a.code).toBe(0);
    expect(b.code).toBe(0);
    expect(await digests(join(root, 'a'))).toEqual(await digests(join(root, 'b')));
    const c = await cli('model', 'init', '--preset', 'tiny', '--seed', '2', '--out', join(root, 'c'));
    expect(c.code).toBe(0);
    expect((await digests(join(root, 'c')))['model.safetensors']).not.toBe(
      (await digests(join(root, 'a')))['model.safetensors'],
    );
  });

  it('generates the same text on every run at temperature 0, and prints JSON with --json', async () => {
    const args = [
      'generate',
      '--model',
      join(root, 'a'),
      '--prompt',
      'Hello',
      '--max-tokens',
      '12',
      '--temperature',
      '0',
      '--ignore-eos',
      '--json',
    ];
    const first = JSON.parse((await cli(...args)).stdout) as {
      outputIds: number[];
      text: string;
      summary: { outputTokens: number; activeParamsPerToken: number };
    };
    const second = JSON.parse((await cli(...args)).stdout) as { outputIds: number[]; text: string };
    expect(first.outputIds).toHaveLength(12);
    expect(second).toMatchObject({ outputIds: first.outputIds, text: first.text });
    expect(first.summary.outputTokens).toBe(12);
    expect(first.summary.activeParamsPerToken).toBeGreaterThan(0);
  });

  it('takes token ids with --prompt-ids and int8 experts with --expert-dtype int8', async () => {
    const res = await cli(
      'generate',
      '--model',
      join(root, 'a'),
      '--prompt-ids',
      '72,101,108',
      '--max-tokens',
      '4',
      '--expert-dtype',
      'int8',
      '--ignore-eos',
      '--json',
    );
    expect(res.code).toBe(0);
    expect((JSON.parse(res.stdout) as { outputIds: number[] }).outputIds).toHaveLength(4);
  });

  it('inspects a model: parameters and bytes', async () => {
    const res = await cli('model', 'inspect', join(root, 'a'), '--json');
    const report = JSON.parse(res.stdout) as {
      totalParams: number;
      activeParamsPerToken: number;
      bytes: { fp32: number; int8Experts: number };
    };
    expect(report.activeParamsPerToken).toBeLessThan(report.totalParams);
    expect(report.bytes.int8Experts).toBeLessThan(report.bytes.fp32);
  });

  it.each([
    [
      ['generate', '--model', 'MODEL', '--prompt', 'x', '--prompt-ids', '1'],
      'give exactly one of --prompt and --prompt-ids',
    ],
    [
      ['generate', '--model', 'MODEL', '--prompt', 'x'.repeat(300)],
      "the prompt has 300 tokens but the model's context is 256 tokens",
    ],
    [['generate', '--model', 'MODEL', '--prompt-ids', '1,999'], 'token id 999 is outside the vocabulary of 258'],
    [['model', 'inspect', '/nonexistent'], 'cannot read config.json'],
    [['model', 'init', '--preset', 'huge', '--out', '/tmp/x'], 'Allowed choices are tiny, small, olmoe-slice'],
  ])('explains a user mistake in one line without a stack trace: %j', async (args, message) => {
    const res = await cli(...args.map((a) => (a === 'MODEL' ? join(root, 'a') : a)));
    expect(res.code).not.toBe(0);
    expect(res.stderr).toContain(message);
    expect(res.stderr).not.toMatch(/\n\s+at /);
  });
});
