/**
 * `switchyard bench --scenario eplb` end to end with tiny durations: the command starts its 4 workers
 * and both gateways, the rebalancing gateway switches under load, and the report says so in every output.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

interface EplbJson {
  name: string;
  notes: string[];
  settings: { numWorkers: number; redundantExperts: number; workerThreads: number; workerCpu: number; preset: string };
  checks: { name: string; value: number | null; target: string; ok: boolean }[];
  phases: {
    kind: string;
    switchAtS: number | null;
    switches: { fromRevision: number; toRevision: number }[];
    metrics: { completed: number; failed: number };
    windows: { name: string; workers?: { balancednessPerLayer: (number | null)[] } }[];
    timeline: { atS: number; pairsPerSPerWorker: number[]; balancednessPerLayer: (number | null)[] }[];
  }[];
}

let root = '';

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'switchyard-bench-eplb-'));
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

/** Runs the CLI to the end; resolves with its exit code and output. */
function runCli(args: readonly string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['services/cli/src/main.ts', ...args], { cwd: ROOT });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('switchyard bench --scenario eplb', () => {
  it('runs the static and the rebalancing phase, sees the switch, and writes JSON, Markdown and SVGs', async () => {
    const out = join(root, 'out');
    const args = [
      'bench',
      '--scenario',
      'eplb',
      '--static-duration',
      '4',
      // Long enough that the window after the switch (which starts 5 s after it, once the paced loads
      // are done) holds several counter samples.
      '--eplb-duration',
      '20',
      '--eplb-warmup',
      '3',
    ];
    const run = await runCli([...args, '--out-dir', out, '--models-dir', join(root, 'models')]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toContain('placement revision 1 → 2');
    const [dir] = await readdir(out);
    expect(dir).toMatch(/^\d{8}-\d{6}-eplb$/);
    const folder = join(out, dir ?? '');
    const report = JSON.parse(await readFile(join(folder, 'results.json'), 'utf8')) as EplbJson;
    expect(report.settings).toMatchObject({
      numWorkers: 4,
      redundantExperts: 8,
      workerThreads: 1,
      workerCpu: 0.25,
      preset: 'skewed',
    });
    // Every worker under a CPU quota where cgroups can be made (root), else a note saying they shared the cores.
    expect(report.notes.join('\n')).toMatch(/CPU quota of 0.25 cores|without a CPU budget/);
    expect(report.phases.map((p) => p.kind)).toEqual(['static', 'eplb']);
    const [staticPhase, eplb] = report.phases;
    expect(staticPhase?.switches).toEqual([]);
    expect(staticPhase?.windows.map((w) => w.name)).toEqual(['steady']);
    expect(eplb?.switches.map((s) => [s.fromRevision, s.toRevision])).toEqual([[1, 2]]);
    expect(eplb?.switchAtS).toBeGreaterThan(0);
    const names = eplb?.windows.map((w) => w.name) ?? [];
    expect(names.slice(-3)).toEqual(['before switch', 'around switch', 'after switch']);
    // The re-placement's own windows, when a sample saw the workers' loads begin after the settling time.
    expect([[], ['before re-placement', 're-placement']]).toContainEqual(names.slice(0, -3));
    for (const phase of report.phases) {
      expect(phase.metrics.completed).toBeGreaterThan(0);
      expect(phase.metrics.failed).toBe(0);
      // Every worker computed something (the 4 workers' own counters), every layer has a balancedness.
      const busy = phase.timeline.filter((t) => t.pairsPerSPerWorker.some((n) => n > 0));
      expect(busy.length).toBeGreaterThan(0);
      expect(busy[0]?.pairsPerSPerWorker).toHaveLength(4);
      expect(busy[0]?.balancednessPerLayer).toHaveLength(4);
    }
    // The hot expert is shared after the switch: the layers are better balanced than on the static placement.
    const minOf = (xs: (number | null)[] | undefined) => Math.min(...(xs ?? []).map((x) => x ?? 0));
    const after = eplb?.windows.find((w) => w.name === 'after switch')?.workers?.balancednessPerLayer;
    const before = staticPhase?.windows[0]?.workers?.balancednessPerLayer;
    expect(after).toHaveLength(4);
    expect(before).toHaveLength(4);
    expect(minOf(after)).toBeGreaterThan(minOf(before));
    expect(report.checks.map((c) => c.name)).toHaveLength(6);
    const summary = await readFile(join(folder, 'summary.md'), 'utf8');
    expect(summary).toContain('## Acceptance figures (issue 14)');
    expect(summary).toContain('revision 1 → 2');
    const svgs = (await readdir(folder)).filter((f) => f.endsWith('.svg')).sort();
    expect(svgs).toEqual([
      'balancedness-eplb.svg',
      'balancedness-static.svg',
      'expert-heatmap-after.svg',
      'expert-heatmap-before.svg',
      'itl-p99-eplb.svg',
      'itl-p99-static.svg',
      'worker-heatmap-after.svg',
      'worker-heatmap-before.svg',
      'worker-load-eplb.svg',
      'worker-load-static.svg',
    ]);
    expect(await readFile(join(folder, 'worker-load-eplb.svg'), 'utf8')).toContain('re-placement (revision 2)');
    expect(run.stdout).toContain(`results:  ${join(folder, 'results.json')}`);
  }, 120_000);
});
