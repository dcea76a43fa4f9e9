/**
 * The workspace dependency graph, checked from the sources: pure packages at the bottom, services on top,
 * nothing imports a service, one package per native or network library, every cross-workspace import
 * declared, and the light packages load without onnxruntime.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = new URL('../', import.meta.url).pathname;

/**
 * The layers, bottom first: a workspace's production dependencies are all in lower layers. This is the
 * graph in docs/architecture.md §2; a new package takes its place here.
 */
const LAYERS: readonly (readonly string[])[] = [
  ['routing', 'kv-cache', 'rpc', 'launcher', 'flags'],
  ['model'],
  ['engine', 'telemetry'],
  ['onnx', 'cluster', 'loadgen', 'kv-transfer'],
  ['dispatch'],
  ['gateway', 'expert-worker', 'kv-store', 'cli'],
];
const SERVICES = new Set(['gateway', 'expert-worker', 'kv-store', 'cli']);
/** The one package allowed to import each library. */
const OWNER: readonly [RegExp, string][] = [
  [/^onnxruntime-node$/, 'onnx'],
  [/^@grpc\//, 'rpc'],
  [/^grpc-health-check$/, 'rpc'],
  [/^@nats-io\//, 'cluster'],
  [/^vega(-lite)?$/, 'loadgen'],
];

interface Workspace {
  readonly name: string;
  readonly dir: string;
  readonly dependencies: readonly string[];
  readonly devDependencies: readonly string[];
}

const workspaces: Workspace[] = ['packages', 'services'].flatMap((group) =>
  readdirSync(join(ROOT, group)).map((name) => {
    const pkg = JSON.parse(readFileSync(join(ROOT, group, name, 'package.json'), 'utf8')) as {
      name: string;
      dependencies?: Record<string, string>;
      devDependencies?: Record<string, string>;
    };
    expect(pkg.name).toBe(`@switchyard/${name}`);
    return {
      name,
      dir: join(ROOT, group, name),
      dependencies: Object.keys(pkg.dependencies ?? {}),
      devDependencies: Object.keys(pkg.devDependencies ?? {}),
    };
  }),
);
const internal = (deps: readonly string[]) =>
  deps.filter((d) => d.startsWith('@switchyard/')).map((d) => d.slice('@switchyard/'.length));
const layerOf = (name: string) => LAYERS.findIndex((layer) => layer.includes(name));

function tsFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((entry) => {
    const path = join(dir, entry);
    if (entry === 'node_modules') return [];
    if (statSync(path).isDirectory()) return tsFiles(path);
    return path.endsWith('.ts') ? [path] : [];
  });
}

/**
 * Bare module specifiers a file imports (static, re-exports and dynamic `import('…')`), or resolves to
 * read files of at run time (`import.meta.resolve('…')`, e.g. the gateway serving Chart.js to browsers).
 */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const specs = [
    ...text.matchAll(/^(?:import|export)\b[^;]*?\sfrom\s*'([^'.][^']*)'/gms),
    ...text.matchAll(/^import\s*'([^'.][^']*)'/gm),
    ...text.matchAll(/\bimport\(\s*'([^'.][^']*)'\s*\)/g),
    ...text.matchAll(/\bimport\.meta\.resolve\(\s*'([^'.][^']*)'\s*\)/g),
  ].map((m) => m[1] ?? '');
  return specs.filter((s) => !s.startsWith('node:'));
}
const packageOf = (spec: string) =>
  spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : (spec.split('/')[0] ?? spec);

describe('the workspace graph', () => {
  it('places every workspace in a layer, and production dependencies point only down', () => {
    for (const ws of workspaces) {
      expect(layerOf(ws.name), `${ws.name} is in no layer of LAYERS`).toBeGreaterThanOrEqual(0);
      for (const dep of internal(ws.dependencies)) {
        expect(layerOf(dep), `${ws.name} → ${dep}`).toBeLessThan(layerOf(ws.name));
      }
    }
  });

  it('has no workspace that depends on a service, in production or in tests', () => {
    for (const ws of workspaces) {
      for (const dep of internal([...ws.dependencies, ...ws.devDependencies]))
        expect(SERVICES.has(dep), `${ws.name} → ${dep}`).toBe(false);
    }
  });

  it('declares every workspace and library a source file imports, and no more', () => {
    for (const ws of workspaces) {
      const imported = new Set(tsFiles(join(ws.dir, 'src')).flatMap(importsOf).map(packageOf));
      imported.delete(`@switchyard/${ws.name}`);
      expect([...imported].sort(), ws.name).toEqual([...ws.dependencies].sort());
    }
  });

  it('lets one package import each native or network library', () => {
    const everything = [
      ...workspaces.map((ws) => ({ name: ws.name, dir: join(ws.dir, 'src') })),
      { name: 'bench', dir: join(ROOT, 'bench') },
    ];
    for (const { name, dir } of everything) {
      for (const file of tsFiles(dir)) {
        for (const spec of importsOf(file)) {
          const owner = OWNER.find(([pattern]) => pattern.test(spec))?.[1];
          if (owner !== undefined) expect(name, `${relative(ROOT, file)} imports ${spec}`).toBe(owner);
        }
      }
    }
  });

  it('keeps services out of the benches and root tests (they start services as processes)', () => {
    for (const file of [...tsFiles(join(ROOT, 'bench')), ...tsFiles(join(ROOT, 'test'))]) {
      for (const spec of importsOf(file))
        expect(
          SERVICES.has(packageOf(spec).replace('@switchyard/', '')),
          `${relative(ROOT, file)} imports ${spec}`,
        ).toBe(false);
    }
  });
});

describe('loading a package', () => {
  /** Imports `specifier` in a fresh Node process in which onnxruntime-node and vega cannot be resolved. */
  function importWithout(specifier: string): { status: number | null; stderr: string } {
    const script = `
      import { registerHooks } from 'node:module';
      registerHooks({
        resolve(spec, context, next) {
          if (spec === 'onnxruntime-node' || spec === 'vega' || spec === 'vega-lite') throw new Error('blocked: ' + spec);
          return next(spec, context);
        },
      });
      await import(${JSON.stringify(specifier)});
    `;
    const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 60_000,
    });
    return { status: child.status, stderr: child.stderr };
  }

  it.each([
    '@switchyard/telemetry',
    '@switchyard/model',
    '@switchyard/engine',
    '@switchyard/cluster',
    '@switchyard/loadgen',
    '@switchyard/routing',
    '@switchyard/kv-cache',
  ])('loads %s with onnxruntime (and vega) unavailable', (specifier) => {
    const { status, stderr } = importWithout(specifier);
    expect(stderr).toBe('');
    expect(status).toBe(0);
  });

  it('would notice: @switchyard/onnx does not load with onnxruntime unavailable', () => {
    const { status, stderr } = importWithout('@switchyard/onnx');
    expect(status).not.toBe(0);
    expect(stderr).toContain('blocked: onnxruntime-node');
  });
});
