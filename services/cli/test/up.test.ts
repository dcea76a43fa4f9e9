import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '@switchyard/launcher';

const main = new URL('../src/main.ts', import.meta.url).pathname;
const root = await mkdtemp(join(tmpdir(), 'switchyard-up-'));
afterAll(() => rm(root, { recursive: true, force: true }));

describe('switchyard up', () => {
  it('creates the model on first run, serves it through two workers, and stops everything on Ctrl-C', async () => {
    const port = await freePort();
    const child = spawn(
      process.execPath,
      [main, 'up', '--preset', 'tiny', '--models-dir', root, '--workers', '2', '--port', String(port)],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    for (let i = 0; i < 600 && !out.includes('Press Ctrl-C'); i++) await new Promise((r) => setTimeout(r, 100));
    expect(out).toContain('creating the tiny model');
    // Two workers on one machine share its cores (each gets half, at least one).
    const threads = Math.max(1, Math.floor(availableParallelism() / 2));
    expect(out).toMatch(
      new RegExp(`2 expert worker\\(s\\) serving at \\S+, \\S+ \\(${threads} intra-op threads? each\\)`),
    );
    const curl = /curl (\S+) -H 'Content-Type: application\/json' \\\n\s+-d '(.+)'/.exec(out);
    expect(curl).not.toBeNull();
    const res = await fetch(curl?.[1] ?? '', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: curl?.[2] ?? '',
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { object: string; usage: { prompt_tokens: number } };
    expect(body.object).toBe('text_completion');
    expect(body.usage.prompt_tokens).toBe(5);
    child.kill('SIGINT');
    expect(await exited).toBe(0);
    expect(out).toContain('stopped');
    await expect(fetch(`http://127.0.0.1:${port}/health`)).rejects.toThrow();
  }, 120_000);
});
