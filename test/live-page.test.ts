/**
 * The live cluster page (`GET /` on the gateway) in a real headless browser — Debian's Chromium driven
 * by Playwright — against a running `switchyard up` with two expert workers: it loads with no console
 * error and no failed request (everything is served by the gateway: it works offline), shows both
 * workers and their experts, and its expert-load heatmap changes after requests are sent. A screenshot
 * of the page is written to test-artifacts/live-page.png.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '@switchyard/launcher';
import { getPreset, randomWeights, writeModelDir } from '@switchyard/model';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CHROMIUM = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';
/** The model has a name of its own, so that a shared NATS queue carries no other test's requests for it. */
const MODEL = 'live-page-tiny';
const SCREENSHOT = join(ROOT, 'test-artifacts', 'live-page.png');

let root = '';
let up: ChildProcess | undefined;
let url = '';
let browser: Browser;
let page: Page;
const problems: string[] = [];

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'switchyard-live-'));
  const config = getPreset('tiny', { name: MODEL });
  await writeModelDir(join(root, MODEL), config, randomWeights(config, 5));
  const port = await freePort();
  up = spawn(
    process.execPath,
    ['services/cli/src/main.ts', 'up', '--model', join(root, MODEL), '--workers', '2', '--port', String(port)],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  up.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  up.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  for (let i = 0; i < 1200 && !out.includes('Press Ctrl-C'); i++) await new Promise((r) => setTimeout(r, 100));
  url = /ready at (http:\/\/\S+?)(,|\s)/.exec(out)?.[1] ?? '';
  if (!url) throw new Error(`switchyard up did not start:\n${out}`);
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(`console: ${message.text()}`);
  });
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('requestfailed', (request) => {
    // The SSE stream is cut when the page closes at the end; anything else failing is a problem.
    if (!request.url().endsWith('/v1/switchyard/live')) problems.push(`request failed: ${request.url()}`);
  });
  page.on('response', (response) => {
    if (response.status() >= 400) problems.push(`HTTP ${response.status()}: ${response.url()}`);
  });
}, 240_000);

afterAll(async () => {
  await browser?.close();
  if (up && up.exitCode === null) {
    const exited = new Promise((resolve) => up?.once('exit', resolve));
    up.kill('SIGINT');
    await exited;
  }
  await rm(root, { recursive: true, force: true });
});

const snapshots = async () => Number((await page.locator('body').getAttribute('data-snapshots')) ?? 0);

async function waitForSnapshots(atLeast: number): Promise<void> {
  for (let i = 0; i < 100 && (await snapshots()) < atLeast; i++) await page.waitForTimeout(100);
}

describe('the live cluster page', () => {
  it('loads from the gateway with no console error and shows the workers of `switchyard up`', async () => {
    await page.goto(url, { waitUntil: 'load' });
    await waitForSnapshots(2);
    expect(await page.locator('#model').textContent()).toBe(MODEL);
    const rows = page.locator('#workers tbody tr');
    await expect.poll(() => rows.count()).toBe(2);
    const text = await page.locator('#workers').innerText();
    expect(text.match(/127\.0\.0\.1:\d+/g)).toHaveLength(2);
    expect(text.match(/serving/g)).toHaveLength(2);
    // Every expert of both layers is held by one of the two workers (contiguous placement, no replicas).
    expect(text).toMatch(/L0: 0,1,2,3\s+L1: 0,1,2,3/);
    expect(text).toMatch(/L0: 4,5,6,7\s+L1: 4,5,6,7/);
    expect(problems).toEqual([]);
  });

  it('redraws the expert-load heatmap after requests are sent, and writes a screenshot', async () => {
    const heatmap = page.locator('#heatmap');
    const before = await heatmap.screenshot();
    for (const prompt of ['Mixture of experts', 'route every token', 'to two of eight experts']) {
      const response = await fetch(`${url}/v1/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: MODEL, prompt, max_tokens: 8, temperature: 0, ignore_eos: true }),
      });
      expect(response.status).toBe(200);
    }
    await waitForSnapshots((await snapshots()) + 2);
    const after = await heatmap.screenshot();
    expect(after.equals(before)).toBe(false);
    expect(Number((await page.locator('#params').textContent())?.replace(/[^\d.]/g, '') ?? 0)).toBeGreaterThan(0);
    await mkdir(join(ROOT, 'test-artifacts'), { recursive: true });
    await writeFile(SCREENSHOT, await page.screenshot({ fullPage: true }));
    expect(problems).toEqual([]);
  });
});
