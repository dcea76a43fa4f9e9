/**
 * Static checks of the deployment — k8s/ (kustomize base, overlays, components, NATS chart values) and
 * the Dockerfile — against each other and against the sources they run. Offline and fast: YAML is
 * parsed here. Kustomize patches are not applied (they are checked where they are written), but the two
 * mechanisms the overlays use to resize and reconfigure, `replicas:` and `configMapGenerator` merges,
 * are resolved, so each overlay's worker count and settings are checked as a whole. Rendering with
 * `kubectl kustomize` and validating the rendered objects against their schemas is k8s-render.test.ts.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { isBuiltin } from 'node:module';
import { basename, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { ANY_NAME, ClusterNames, DEFAULT_NAMESPACE, natsPermissions, type NatsRole } from '@switchyard/cluster';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const K8S = join(ROOT, 'k8s');
const BASE = join(K8S, 'base');
const OVERLAYS = ['cpu', 'gpu'] as const;
const GPU = 'nvidia.com/gpu';

// ---- Plain-data access to parsed YAML (everything is `unknown` until looked at) --------------------

type Rec = Readonly<Record<string, unknown>>;
const isRec = (v: unknown): v is Rec => typeof v === 'object' && v !== null && !Array.isArray(v);
const rec = (v: unknown): Rec => (isRec(v) ? v : {});
const list = (v: unknown): readonly unknown[] => (Array.isArray(v) ? v : []);
const recs = (v: unknown): readonly Rec[] => list(v).filter(isRec);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const strs = (v: unknown): readonly string[] => list(v).filter((s): s is string => typeof s === 'string');
const num = (v: unknown): number | undefined =>
  typeof v === 'number'
    ? v
    : typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v))
      ? Number(v)
      : undefined;
const at = (v: unknown, ...path: readonly string[]): unknown => path.reduce<unknown>((o, key) => rec(o)[key], v);
const kindOf = (o: Rec): string => str(o['kind']) ?? '';
const nameOf = (o: Rec): string => str(at(o, 'metadata', 'name')) ?? '';

function walk(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? walk(join(dir, e.name)) : [join(dir, e.name)]))
    .sort();
}

const isDirectory = (path: string): boolean => existsSync(path) && statSync(path).isDirectory();
const read = (path: string): string => readFileSync(join(ROOT, path), 'utf8');

interface ParsedFile {
  readonly docs: readonly unknown[];
  readonly errors: readonly string[];
}

function parseYaml(text: string): ParsedFile {
  const documents = [...parseAllDocuments(text)];
  return {
    docs: documents.map((d): unknown => d.toJS()).filter((d) => d !== null && d !== undefined),
    errors: documents.flatMap((d) => d.errors.map((e) => e.message)),
  };
}

const YAML_FILES = walk(K8S).filter((f) => /\.ya?ml$/.test(f));
const PARSED = new Map(YAML_FILES.map((f) => [f, parseYaml(readFileSync(f, 'utf8'))]));
const docsOf = (file: string): readonly unknown[] =>
  PARSED.get(file)?.docs ?? parseYaml(readFileSync(file, 'utf8')).docs;

// ---- Kustomize, as far as these checks need it ------------------------------------------------------

interface Build {
  readonly namespace: string | undefined;
  /** Resources as written (patches not applied). */
  readonly objects: readonly Rec[];
  /** Patch documents of this kustomization and everything below it. */
  readonly patches: readonly Rec[];
  /** configMapGenerator literals by ConfigMap name, merges applied in kustomize's order. */
  readonly settings: ReadonlyMap<string, ReadonlyMap<string, string>>;
  /** configMapGenerator files by ConfigMap name: key → path. */
  readonly configFiles: ReadonlyMap<string, ReadonlyMap<string, string>>;
  readonly replicas: ReadonlyMap<string, number>;
  /** Image renames (`images: [{name, newName}]`). */
  readonly images: ReadonlyMap<string, string>;
}

const kustomizationOf = (dir: string): Rec => rec(docsOf(join(dir, 'kustomization.yaml'))[0]);

/** Every file or directory a kustomization refers to, resolved against its directory. */
function referencesOf(dir: string): string[] {
  const k = kustomizationOf(dir);
  const generatorFiles = recs(k['configMapGenerator']).flatMap((g) =>
    strs(g['files']).map((f) => f.slice(f.indexOf('=') + 1)),
  );
  const patchFiles = recs(k['patches']).flatMap((p) => (str(p['path']) ? [str(p['path']) ?? ''] : []));
  return [...strs(k['resources']), ...strs(k['components']), ...patchFiles, ...generatorFiles].map((r) => join(dir, r));
}

function build(dir: string): Build {
  const k = kustomizationOf(dir);
  const below = [...strs(k['resources']), ...strs(k['components'])]
    .map((r) => join(dir, r))
    .filter(isDirectory)
    .map(build);
  const settings = new Map(below.flatMap((b) => [...b.settings]).map(([n, m]) => [n, new Map(m)]));
  const configFiles = new Map(below.flatMap((b) => [...b.configFiles]));
  for (const g of recs(k['configMapGenerator'])) {
    const name = str(g['name']) ?? '';
    const literals = strs(g['literals']).map((l): [string, string] => [
      l.slice(0, l.indexOf('=')),
      l.slice(l.indexOf('=') + 1),
    ]);
    const merged =
      str(g['behavior']) === 'merge' ? new Map([...(settings.get(name) ?? []), ...literals]) : new Map(literals);
    settings.set(name, merged);
    const files = strs(g['files']).map((f): [string, string] => {
      const path = f.slice(f.indexOf('=') + 1);
      return [f.includes('=') ? f.slice(0, f.indexOf('=')) : basename(path), join(dir, path)];
    });
    if (files.length > 0) configFiles.set(name, new Map(files));
  }
  const ownFiles = strs(k['resources'])
    .map((r) => join(dir, r))
    .filter((r) => !isDirectory(r));
  const ownPatches = recs(k['patches']).flatMap((p) => (str(p['path']) ? docsOf(join(dir, str(p['path']) ?? '')) : []));
  return {
    namespace: str(k['namespace']) ?? below.map((b) => b.namespace).find((n) => n !== undefined),
    objects: [...below.flatMap((b) => b.objects), ...ownFiles.flatMap(docsOf).filter(isRec)],
    patches: [...below.flatMap((b) => b.patches), ...ownPatches.filter(isRec)],
    settings,
    configFiles,
    replicas: new Map([
      ...below.flatMap((b) => [...b.replicas]),
      ...recs(k['replicas']).map((r): [string, number] => [str(r['name']) ?? '', num(r['count']) ?? -1]),
    ]),
    images: new Map([
      ...below.flatMap((b) => [...b.images]),
      ...recs(k['images']).flatMap((i): [string, string][] =>
        str(i['newName']) ? [[str(i['name']) ?? '', str(i['newName']) ?? '']] : [],
      ),
    ]),
  };
}

const BUILDS = new Map<string, Build>([
  ['base', build(BASE)],
  ...OVERLAYS.map((o): [string, Build] => [o, build(join(K8S, 'overlays', o))]),
]);
const buildOf = (name: string): Build => {
  const b = BUILDS.get(name);
  if (!b) throw new Error(`no build ${name}`);
  return b;
};
const BASE_OBJECTS = buildOf('base').objects;

function objectOf(objects: readonly Rec[], kind: string, name: string): Rec {
  const found = objects.find((o) => kindOf(o) === kind && nameOf(o) === name);
  if (!found) throw new Error(`no ${kind} ${name}`);
  return found;
}

// ---- Pods, labels, ports ------------------------------------------------------------------------------

const WORKLOAD_KINDS = new Set(['Deployment', 'StatefulSet', 'Job']);
const workloadsOf = (objects: readonly Rec[]): readonly Rec[] => objects.filter((o) => WORKLOAD_KINDS.has(kindOf(o)));
const podLabels = (w: Rec): Rec => rec(at(w, 'spec', 'template', 'metadata', 'labels'));
const podSpec = (w: Rec): Rec => rec(at(w, 'spec', 'template', 'spec'));
const containersOf = (spec: Rec): readonly Rec[] => [...recs(spec['initContainers']), ...recs(spec['containers'])];
const containerNamed = (w: Rec, name: string): Rec => containersOf(podSpec(w)).find((c) => c['name'] === name) ?? {};

/** `selector` is a Service's plain map or a LabelSelector; only matchLabels is used in k8s/. */
function selects(selector: Rec, labels: Rec): boolean {
  if ('matchExpressions' in selector) throw new Error('matchExpressions: extend this test to evaluate them');
  const wanted = 'matchLabels' in selector ? rec(selector['matchLabels']) : selector;
  return Object.entries(wanted).every(([k, v]) => labels[k] === v);
}

const podsSelectedBy = (selector: Rec, objects: readonly Rec[] = BASE_OBJECTS): readonly Rec[] =>
  workloadsOf(objects).filter((w) => selects(selector, podLabels(w)));

/** A numeric port, or a port name, matches one of the containers' ports. */
function exposes(containers: readonly Rec[], port: unknown): boolean {
  const ports = containers.flatMap((c) => recs(c['ports']));
  return typeof port === 'number'
    ? ports.some((p) => p['containerPort'] === port)
    : ports.some((p) => p['name'] === port);
}

function probePorts(c: Rec): unknown[] {
  return ['startupProbe', 'livenessProbe', 'readinessProbe'].flatMap((p) => {
    const probe = rec(c[p]);
    return ['httpGet', 'tcpSocket', 'grpc'].filter((h) => h in probe).map((h) => at(probe, h, 'port'));
  });
}

// ---- Sources: what the services read, what the images run ----------------------------------------

const sourceFiles = (dir: string): string[] => (isDirectory(dir) ? walk(dir).filter((f) => f.endsWith('.ts')) : []);
const PACKAGE_SOURCES = readdirSync(join(ROOT, 'packages')).flatMap((p) =>
  sourceFiles(join(ROOT, 'packages', p, 'src')),
);

/** SWITCHYARD_* names read as env['…'] / env.… in these files, or listed in a flag → variable table (`ENV_OF`). */
function settingsReadIn(files: readonly string[]): Set<string> {
  const names = new Set<string>();
  for (const file of files) {
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(
      /\benv\s*(?:\[\s*['"`](SWITCHYARD_[A-Z0-9_]+)['"`]\s*\]|\.(SWITCHYARD_[A-Z0-9_]+))/g,
    )) {
      names.add(m[1] ?? m[2] ?? '');
    }
    const table = /\bconst ENV_OF = \{([\s\S]*?)\} as const/.exec(text)?.[1] ?? '';
    for (const m of table.matchAll(/['"](SWITCHYARD_[A-Z0-9_]+)['"]/g)) names.add(m[1] ?? '');
  }
  return names;
}

/**
 * What a service reads: its own sources and the packages' (packages read only the env object main.ts
 * hands them, e.g. telemetryOptionsFromEnv(process.env)).
 */
const settingsReadBy = (serviceDir: string): Set<string> =>
  settingsReadIn([...sourceFiles(join(ROOT, serviceDir, 'src')), ...PACKAGE_SOURCES]);

interface Instruction {
  readonly op: string;
  readonly args: string;
}
interface Stage {
  readonly name: string;
  readonly base: string;
  readonly instructions: readonly Instruction[];
}

function parseDockerfile(text: string): {
  readonly args: ReadonlyMap<string, string>;
  readonly stages: readonly Stage[];
} {
  // Logical lines: comments dropped, backslash continuations joined.
  const lines: string[] = [];
  let pending = '';
  for (const raw of text.split('\n')) {
    if (raw.trim().startsWith('#')) continue;
    pending += raw.trimEnd();
    if (pending.endsWith('\\')) {
      pending = pending.slice(0, -1);
      continue;
    }
    if (pending.trim() !== '') lines.push(pending.trim());
    pending = '';
  }
  const args = new Map<string, string>();
  const stages: { name: string; base: string; instructions: Instruction[] }[] = [];
  for (const line of lines) {
    const [op = '', ...rest] = line.split(/\s+/);
    const instruction = { op: op.toUpperCase(), args: line.slice(op.length).trim() };
    const current = stages[stages.length - 1];
    if (instruction.op === 'FROM') {
      const words = rest.filter((w) => !w.startsWith('--'));
      const base = (words[0] ?? '').replace(/\$\{(\w+)\}/g, (_, v: string) => args.get(v) ?? '');
      stages.push({ name: words[2] ?? base, base, instructions: [] });
    } else if (current) current.instructions.push(instruction);
    else if (instruction.op === 'ARG') {
      const [k = '', v = ''] = instruction.args.split('=');
      args.set(k, v);
    }
  }
  return { args, stages };
}

const DOCKERFILE = parseDockerfile(read('Dockerfile'));
const stageNamed = (name: string): Stage | undefined => DOCKERFILE.stages.find((s) => s.name === name);

/** The target and the stages it is built FROM, nearest first. */
function lineage(target: string): Stage[] {
  const chain: Stage[] = [];
  for (let s = stageNamed(target); s; s = stageNamed(s.base)) chain.push(s);
  return chain;
}

/** The instruction in force for a target (the last of its kind, the target's own before its parents'). */
const effective = (target: string, op: string): Instruction | undefined =>
  lineage(target)
    .map((s) => s.instructions.filter((i) => i.op === op).at(-1))
    .find((i) => i !== undefined);

function envOf(target: string): Map<string, string> {
  const env = new Map<string, string>();
  for (const stage of lineage(target).reverse()) {
    for (const i of stage.instructions.filter((x) => x.op === 'ENV')) {
      for (const m of i.args.matchAll(/(\w+)=("[^"]*"|\S+)/g)) env.set(m[1] ?? '', (m[2] ?? '').replace(/^"|"$/g, ''));
    }
  }
  return env;
}

/** The repository script an image target runs (from its JSON-form ENTRYPOINT or CMD). */
function entryScript(target: string): string | undefined {
  const words = [effective(target, 'ENTRYPOINT'), effective(target, 'CMD')].flatMap((i) =>
    i ? strs(JSON.parse(i.args)) : [],
  );
  return words.find((w) => /\.(ts|mjs|js)$/.test(w) && !w.startsWith('-'));
}

const TARGETS = ['gateway', 'worker', 'worker-cuda', 'kv-store', 'cli'] as const;
const IMAGE_PREFIX = 'switchyard/';
const imageName = (image: string): string => image.split('@')[0]?.replace(/:[^/]*$/, '') ?? image;

/** The service directory (services/<x>) whose main.ts an image of ours runs; undefined for others' images. */
function serviceOfImage(image: string): string | undefined {
  const name = imageName(image);
  if (!name.startsWith(IMAGE_PREFIX)) return undefined;
  const script = entryScript(name.slice(IMAGE_PREFIX.length));
  return script?.split('/').slice(0, 2).join('/');
}

/** Repository paths an image target copies in (COPY sources, following --from into our own stages). */
function copiedPaths(stage: string): string[] {
  return lineage(stage).flatMap((s) =>
    s.instructions
      .filter((i) => i.op === 'COPY')
      .flatMap((i) => {
        const words = i.args.split(/\s+/);
        const from = words.find((w) => w.startsWith('--from='))?.slice('--from='.length);
        if (from !== undefined) return stageNamed(from) ? copiedPaths(from) : [];
        return words
          .filter((w) => !w.startsWith('--'))
          .slice(0, -1)
          .map((w) => w.replace(/^\.\/|\/$/g, ''));
      }),
  );
}

/** The stages a target takes its node_modules from (`COPY --from=<stage> /app/node_modules`), with their parents. */
function depsStageOf(target: string): Stage[] {
  const from = lineage(target)
    .flatMap((s) => s.instructions)
    .find((i) => i.op === 'COPY' && /\/app\/node_modules /.test(i.args))
    ?.args.split(/\s+/)
    .find((w) => w.startsWith('--from='))
    ?.slice('--from='.length);
  return from ? lineage(from) : [];
}

/** Whether .dockerignore keeps a repository path (or a folder above it) out of the build context. */
function dockerIgnored(): (path: string) => boolean {
  const patterns = read('.dockerignore')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map(
      (g) =>
        new RegExp(
          `^${g
            .replace(/[.+^${}()|[\]\\]/g, '\\$&')
            .replace(/\*\*\//g, '(?:.*/)?')
            .replace(/\*/g, '[^/]*')}(?:/|$)`,
        ),
    );
  return (path) => patterns.some((re) => re.test(path));
}

const ROOT_PACKAGE = rec(JSON.parse(read('package.json')));
const WORKSPACE_DIRS = strs(ROOT_PACKAGE['workspaces'])
  .flatMap((glob) => readdirSync(join(ROOT, glob.replace(/\/\*$/, ''))).map((d) => `${glob.replace(/\*$/, '')}${d}`))
  .filter((dir) => existsSync(join(ROOT, dir, 'package.json')));
const WORKSPACE_MANIFESTS = WORKSPACE_DIRS.map((dir) => ({ dir, pkg: rec(JSON.parse(read(`${dir}/package.json`))) }));
/** Workspace package name → its entry file (`exports`). */
const WORKSPACE_ENTRIES = new Map(
  WORKSPACE_MANIFESTS.map(({ dir, pkg }) => [str(pkg['name']) ?? '', join(dir, str(pkg['exports']) ?? '')]),
);
/** What `npm ci --omit=dev -w <dir>` installs: that workspace's dependencies and its workspaces', transitively. */
function productionDependenciesOf(dir: string): Set<string> {
  const names = new Set<string>();
  const visit = (pkg: Rec): void => {
    for (const name of Object.keys(rec(pkg['dependencies']))) {
      if (names.has(name)) continue;
      names.add(name);
      const workspace = WORKSPACE_MANIFESTS.find((w) => str(w.pkg['name']) === name);
      if (workspace) visit(workspace.pkg);
    }
  };
  visit(WORKSPACE_MANIFESTS.find((w) => w.dir === dir)?.pkg ?? {});
  return names;
}

const packageNameOf = (specifier: string): string =>
  specifier
    .split('/')
    .slice(0, specifier.startsWith('@') ? 2 : 1)
    .join('/');

/**
 * The repository files (and folders reached through `new URL('…', import.meta.url)`) a script loads,
 * transitively, and the npm packages it imports at run time (type-only imports are erased).
 */
function importClosure(entry: string): { files: Set<string>; packages: Set<string> } {
  const files = new Set<string>();
  const packages = new Set<string>();
  const visit = (file: string): void => {
    // '' is the repository root itself (the image's WORKDIR), e.g. where the CLI finds scripts to spawn.
    if (file === '' || files.has(file)) return;
    files.add(file);
    if (!/\.(ts|mjs|js)$/.test(file)) return;
    const text = readFileSync(join(ROOT, file), 'utf8');
    const found = [
      ...[...text.matchAll(/^\s*(?:import|export)\s+(type\s+)?(?:[^'";]*?\sfrom\s+)?'([^']+)'/gm)].map((m) => ({
        spec: m[2] ?? '',
        typeOnly: m[1] !== undefined,
      })),
      ...[...text.matchAll(/\bimport\(\s*'([^']+)'\s*\)/g)].map((m) => ({ spec: m[1] ?? '', typeOnly: false })),
      ...[...text.matchAll(/new URL\(\s*'(\.{1,2}\/[^']*)'\s*,\s*import\.meta\.url/g)].map((m) => ({
        spec: m[1] ?? '',
        typeOnly: false,
      })),
    ];
    for (const { spec, typeOnly } of found) {
      if (spec.startsWith('.')) visit(relative(ROOT, join(ROOT, file, '..', spec)));
      else if (WORKSPACE_ENTRIES.has(spec)) visit(WORKSPACE_ENTRIES.get(spec) ?? '');
      else if (!isBuiltin(spec) && !typeOnly) packages.add(packageNameOf(spec));
    }
  };
  visit(entry);
  return { files, packages };
}

/** Every container of a build with the image it will run and the SWITCHYARD_* names it gets. */
function containerSettings(b: Build): { where: string; image: string; names: string[] }[] {
  return workloadsOf(b.objects).flatMap((w) => {
    const spec = podSpec(w);
    const patched = b.patches.filter((p) => kindOf(p) === kindOf(w) && nameOf(p) === nameOf(w));
    return containersOf(spec).map((c) => {
      const fromPatches = patched.flatMap((p) => recs(containerNamed(p, str(c['name']) ?? '')['env']));
      const envFrom = recs(c['envFrom']).flatMap((e) => [
        ...(b.settings.get(str(at(e, 'configMapRef', 'name')) ?? '')?.keys() ?? []),
      ]);
      const image = str(c['image']) ?? '';
      return {
        where: `${kindOf(w)} ${nameOf(w)}, container ${str(c['name'])}`,
        image: b.images.get(imageName(image)) ?? image,
        names: [...recs(c['env']), ...fromPatches]
          .map((e) => str(e['name']) ?? '')
          .concat(envFrom)
          .filter((n) => n.startsWith('SWITCHYARD_')),
      };
    });
  });
}

/** How long the gateway drains on SIGTERM, read from its main.ts. */
function gatewayDrainSeconds(): number {
  const m = /gateway\.stop\(\s*([\d_]+)\s*\)/.exec(read('services/gateway/src/main.ts'));
  if (!m?.[1])
    throw new Error('services/gateway/src/main.ts: cannot find gateway.stop(<deadline ms>); update this test');
  return Number(m[1].replaceAll('_', '')) / 1000;
}

// ---- The tests ---------------------------------------------------------------------------------------

describe('k8s/ files', () => {
  it('parses every YAML file, every document of it', () => {
    expect(YAML_FILES.length).toBeGreaterThan(10);
    for (const [file, parsed] of PARSED) expect(parsed.errors, relative(ROOT, file)).toEqual([]);
  });

  it('finds every resource, component, patch and generator file a kustomization names', () => {
    const dirs = YAML_FILES.filter((f) => basename(f) === 'kustomization.yaml').map((f) => join(f, '..'));
    expect(dirs.map((d) => relative(K8S, d)).sort()).toEqual([
      'base',
      'components/gateway-on-gpu-nodes',
      'components/monitoring',
      'overlays/cpu',
      'overlays/gpu',
    ]);
    for (const dir of dirs) {
      for (const ref of referencesOf(dir)) {
        expect(existsSync(ref), `${relative(ROOT, dir)} refers to ${relative(ROOT, ref)}`).toBe(true);
        if (isDirectory(ref)) expect(existsSync(join(ref, 'kustomization.yaml')), relative(ROOT, ref)).toBe(true);
      }
    }
  });

  it('gives every object an apiVersion, a kind and a name, and no namespace in the base', () => {
    expect(kustomizationOf(BASE)['namespace']).toBeUndefined();
    for (const o of BASE_OBJECTS) {
      expect(str(o['apiVersion']) && kindOf(o) && nameOf(o), JSON.stringify(o).slice(0, 80)).toBeTruthy();
      expect(at(o, 'metadata', 'namespace'), `${kindOf(o)} ${nameOf(o)}`).toBeUndefined();
    }
    for (const overlay of OVERLAYS) expect(buildOf(overlay).namespace, overlay).toBe('switchyard');
  });
});

describe('labels and ports', () => {
  it('selects each workload by labels its pod template carries', () => {
    for (const w of workloadsOf(BASE_OBJECTS).filter((x) => kindOf(x) !== 'Job')) {
      expect(selects(rec(at(w, 'spec', 'selector')), podLabels(w)), nameOf(w)).toBe(true);
    }
  });

  it('points every Service, PodDisruptionBudget, NetworkPolicy and spread constraint at existing pods', () => {
    const selectorAt: Readonly<Record<string, readonly string[]>> = {
      Service: ['spec', 'selector'],
      PodDisruptionBudget: ['spec', 'selector'],
      NetworkPolicy: ['spec', 'podSelector'],
    };
    for (const o of BASE_OBJECTS) {
      const path = selectorAt[kindOf(o)];
      // The NATS policy selects the chart's servers, which the base does not hold.
      if (kindOf(o) === 'NetworkPolicy' && nameOf(o) === 'switchyard-nats') continue;
      if (path) expect(podsSelectedBy(rec(at(o, ...path))), `${kindOf(o)} ${nameOf(o)}`).not.toHaveLength(0);
    }
    for (const w of workloadsOf(BASE_OBJECTS)) {
      for (const t of recs(podSpec(w)['topologySpreadConstraints']))
        expect(selects(rec(t['labelSelector']), podLabels(w)), nameOf(w)).toBe(true);
    }
  });

  it('sends every Service port and every probe to a port the container declares', () => {
    for (const svc of BASE_OBJECTS.filter((o) => kindOf(o) === 'Service')) {
      const pods = podsSelectedBy(rec(at(svc, 'spec', 'selector')));
      for (const p of recs(at(svc, 'spec', 'ports'))) {
        for (const pod of pods)
          expect(
            exposes(containersOf(podSpec(pod)), p['targetPort'] ?? p['port']),
            `Service ${nameOf(svc)} → ${String(p['targetPort'])}`,
          ).toBe(true);
      }
    }
    for (const w of workloadsOf(BASE_OBJECTS)) {
      for (const c of containersOf(podSpec(w))) {
        for (const port of probePorts(c))
          expect(exposes([c], port), `${nameOf(w)}/${str(c['name'])} probe → ${String(port)}`).toBe(true);
      }
    }
  });

  it('opens NetworkPolicy ingress only on ports the selected pods declare', () => {
    for (const np of BASE_OBJECTS.filter((o) => kindOf(o) === 'NetworkPolicy' && nameOf(o) !== 'switchyard-nats')) {
      const pods = podsSelectedBy(rec(at(np, 'spec', 'podSelector')));
      for (const rule of recs(at(np, 'spec', 'ingress'))) {
        for (const p of recs(rule['ports']))
          for (const pod of pods) expect(exposes(containersOf(podSpec(pod)), p['port']), nameOf(np)).toBe(true);
      }
    }
  });
});

describe('settings', () => {
  it.each(['base', ...OVERLAYS])('%s: gives each container only SWITCHYARD_* variables its service reads', (name) => {
    const containers = containerSettings(buildOf(name));
    expect(containers.filter((c) => c.names.length > 0).length).toBeGreaterThan(3);
    for (const c of containers) {
      const service = serviceOfImage(c.image);
      if (service === undefined) {
        expect(c.names, `${c.where}: ${c.image} is not a Switchyard image`).toEqual([]);
        continue;
      }
      const read = settingsReadBy(service);
      expect(
        c.names.filter((n) => !read.has(n)),
        `${c.where} (${service})`,
      ).toEqual([]);
    }
  });

  it('switches service links off wherever SWITCHYARD_* settings are passed (they would inject SWITCHYARD_<SERVICE>_PORT)', () => {
    for (const w of workloadsOf(BASE_OBJECTS)) expect(podSpec(w)['enableServiceLinks'], nameOf(w)).toBe(false);
  });

  it('writes the model where the services read it, on the volume every pod mounts', () => {
    const modelDir = buildOf('base').settings.get('switchyard-shared')?.get('SWITCHYARD_MODEL_DIR') ?? '';
    expect(modelDir).toMatch(/^\//);
    const job = objectOf(BASE_OBJECTS, 'Job', 'switchyard-model-init');
    const init = containerNamed(job, 'model-init');
    const source = recs(init['env']).find((e) => e['name'] === 'MODEL_DIR');
    expect(at(source, 'valueFrom', 'configMapKeyRef')).toEqual({
      name: 'switchyard-shared',
      key: 'SWITCHYARD_MODEL_DIR',
    });
    const script = strs(init['args']).join('\n');
    expect(script).toMatch(/model init .*--out "\$MODEL_DIR"/);
    expect(script).toContain('[ -f "$MODEL_DIR/config.json" ]');
    expect(objectOf(BASE_OBJECTS, 'PersistentVolumeClaim', 'switchyard-models')).toBeDefined();
    // The page store holds KV pages, not the model: it alone does without the volume.
    const ours = workloadsOf(BASE_OBJECTS).filter((w) =>
      containersOf(podSpec(w)).some((c) => {
        const service = serviceOfImage(str(c['image']) ?? '');
        return service !== undefined && service !== 'services/kv-store';
      }),
    );
    expect(ours.map(nameOf).sort()).toEqual(['switchyard-gateway', 'switchyard-model-init', 'switchyard-worker']);
    for (const w of ours) {
      const claim = recs(podSpec(w)['volumes']).find(
        (v) => at(v, 'persistentVolumeClaim', 'claimName') === 'switchyard-models',
      );
      expect(claim, nameOf(w)).toBeDefined();
      for (const c of containersOf(podSpec(w))) {
        const mount = recs(c['volumeMounts']).find((m) => m['name'] === claim?.['name']);
        expect(
          modelDir.startsWith(`${str(mount?.['mountPath'])}/`),
          `${nameOf(w)}/${str(c['name'])} mounts the models`,
        ).toBe(true);
      }
    }
  });

  it('runs the commands the manifests name from files in the repository', () => {
    const commands = workloadsOf(BASE_OBJECTS).flatMap((w) =>
      containersOf(podSpec(w)).flatMap((c) => [...strs(c['command']), ...strs(c['args'])]),
    );
    const scripts = commands.flatMap((c) =>
      [...c.matchAll(/\b((?:services|packages)\/[\w./-]+\.ts)\b/g)].map((m) => m[1] ?? ''),
    );
    expect(scripts).toContain('services/cli/src/main.ts');
    for (const s of scripts) expect(existsSync(join(ROOT, s)), s).toBe(true);
  });

  it('keeps the listening ports in the settings equal to the declared container ports', () => {
    const settings = buildOf('base').settings;
    const gateway = objectOf(BASE_OBJECTS, 'Deployment', 'switchyard-gateway');
    const worker = objectOf(BASE_OBJECTS, 'StatefulSet', 'switchyard-worker');
    expect(
      exposes([containerNamed(gateway, 'gateway')], num(settings.get('switchyard-gateway')?.get('SWITCHYARD_PORT'))),
    ).toBe(true);
    expect(
      exposes(
        [containerNamed(worker, 'expert-worker')],
        num(settings.get('switchyard-worker')?.get('SWITCHYARD_WORKER_PORT')),
      ),
    ).toBe(true);
    expect(settings.get('switchyard-gateway')?.get('SWITCHYARD_HOST')).toBe('0.0.0.0');
    expect(settings.get('switchyard-worker')?.get('SWITCHYARD_WORKER_HOST')).toBe('0.0.0.0');
  });

  it('sends OTLP to the collector Service on a port whose pipeline receives it', () => {
    const endpoint = new URL(
      buildOf('base').settings.get('switchyard-shared')?.get('OTEL_EXPORTER_OTLP_ENDPOINT') ?? '',
    );
    const svc = objectOf(BASE_OBJECTS, 'Service', endpoint.hostname);
    expect(recs(at(svc, 'spec', 'ports')).map((p) => p['port'])).toContain(Number(endpoint.port));
    const config = docsOf(buildOf('base').configFiles.get('switchyard-otel-collector')?.get('config.yaml') ?? '')[0];
    expect(at(config, 'receivers', 'otlp', 'protocols', 'http', 'endpoint')).toBe(`0.0.0.0:${endpoint.port}`);
    for (const [signal, pipeline] of Object.entries(rec(at(config, 'service', 'pipelines')))) {
      for (const part of ['receivers', 'processors', 'exporters']) {
        for (const id of strs(rec(pipeline)[part]))
          expect(at(config, part, id), `${signal} ${part} ${id}`).toBeDefined();
      }
    }
  });
});

describe('gateways and workers', () => {
  it('governs the worker StatefulSet by its headless Service', () => {
    const sts = objectOf(BASE_OBJECTS, 'StatefulSet', 'switchyard-worker');
    const svc = objectOf(BASE_OBJECTS, 'Service', str(at(sts, 'spec', 'serviceName')) ?? '');
    expect(at(svc, 'spec', 'clusterIP')).toBe('None');
    expect(selects(rec(at(svc, 'spec', 'selector')), podLabels(sts))).toBe(true);
  });

  it('names each worker and gateway process after its pod', () => {
    const fieldOf = (kind: string, name: string, container: string, variable: string): unknown =>
      at(
        recs(containerNamed(objectOf(BASE_OBJECTS, kind, name), container)['env']).find((e) => e['name'] === variable),
        'valueFrom',
        'fieldRef',
        'fieldPath',
      );
    expect(fieldOf('StatefulSet', 'switchyard-worker', 'expert-worker', 'SWITCHYARD_WORKER_ID')).toBe('metadata.name');
    expect(fieldOf('Deployment', 'switchyard-gateway', 'gateway', 'SWITCHYARD_INSTANCE')).toBe('metadata.name');
  });

  it.each(['base', ...OVERLAYS])('%s: SWITCHYARD_WORKERS lists exactly the workers, by stable DNS name', (name) => {
    const b = buildOf(name);
    const sts = objectOf(b.objects, 'StatefulSet', 'switchyard-worker');
    const count = b.replicas.get('switchyard-worker') ?? num(at(sts, 'spec', 'replicas')) ?? 1;
    const gateway = b.settings.get('switchyard-gateway');
    const port = num(b.settings.get('switchyard-worker')?.get('SWITCHYARD_WORKER_PORT'));
    const service = str(at(sts, 'spec', 'serviceName'));
    const expected = Array.from({ length: count }, (_, i) => `${nameOf(sts)}-${i}.${service}:${port}`);
    expect(gateway?.get('SWITCHYARD_WORKERS')?.split(',')).toEqual(expected);
    expect(num(gateway?.get('SWITCHYARD_REPLICATION')), 'replication ≤ workers').toBeLessThanOrEqual(count);
  });

  it('probes gateways on /ready and /health and workers over grpc.health.v1', () => {
    const gateway = containerNamed(objectOf(BASE_OBJECTS, 'Deployment', 'switchyard-gateway'), 'gateway');
    expect(at(gateway, 'readinessProbe', 'httpGet', 'path')).toBe('/ready');
    expect(at(gateway, 'livenessProbe', 'httpGet', 'path')).toBe('/health');
    const worker = containerNamed(objectOf(BASE_OBJECTS, 'StatefulSet', 'switchyard-worker'), 'expert-worker');
    for (const probe of ['startupProbe', 'readinessProbe', 'livenessProbe'])
      expect(at(worker, probe, 'grpc', 'port'), probe).toBe(50051);
  });

  it('lets a terminating gateway finish its preStop pause and its drain before it is killed', () => {
    const gateway = objectOf(BASE_OBJECTS, 'Deployment', 'switchyard-gateway');
    const preStopSeconds = num(at(containerNamed(gateway, 'gateway'), 'lifecycle', 'preStop', 'sleep', 'seconds')) ?? 0;
    expect(preStopSeconds).toBeGreaterThan(0);
    expect(num(podSpec(gateway)['terminationGracePeriodSeconds'])).toBeGreaterThan(
      preStopSeconds + gatewayDrainSeconds(),
    );
    const workerClose = /server\.close\(\s*([\d_]+)\s*\)/.exec(read('services/expert-worker/src/main.ts'))?.[1] ?? '';
    expect(workerClose, 'the worker close deadline in its main.ts').not.toBe('');
    expect(
      num(podSpec(objectOf(BASE_OBJECTS, 'StatefulSet', 'switchyard-worker'))['terminationGracePeriodSeconds']),
    ).toBeGreaterThan(Number(workerClose.replaceAll('_', '')) / 1000);
  });

  it('keeps a disruption budget of one pod for gateways and for workers', () => {
    for (const [kind, name] of [
      ['Deployment', 'switchyard-gateway'],
      ['StatefulSet', 'switchyard-worker'],
    ] as const) {
      const labels = podLabels(objectOf(BASE_OBJECTS, kind, name));
      const pdbs = BASE_OBJECTS.filter(
        (o) => kindOf(o) === 'PodDisruptionBudget' && selects(rec(at(o, 'spec', 'selector')), labels),
      );
      expect(
        pdbs.map((p) => at(p, 'spec', 'maxUnavailable')),
        name,
      ).toEqual([1]);
    }
  });
});

describe('network policies', () => {
  const policies = BASE_OBJECTS.filter((o) => kindOf(o) === 'NetworkPolicy');
  const labelsOf = (kind: string, name: string): Rec => podLabels(objectOf(BASE_OBJECTS, kind, name));
  const GATEWAY = labelsOf('Deployment', 'switchyard-gateway');
  const WORKER = labelsOf('StatefulSet', 'switchyard-worker');
  const COLLECTOR = labelsOf('Deployment', 'switchyard-otel-collector');
  const NATS = { 'app.kubernetes.io/name': 'nats' };
  const portNumber = (p: unknown, target: Rec): number | undefined =>
    typeof p === 'number'
      ? p
      : num(
          podsSelectedBy(target)
            .flatMap((w) => containersOf(podSpec(w)).flatMap((c) => recs(c['ports'])))
            .find((x) => x['name'] === p)?.['containerPort'],
        );

  /** Ports the policies selecting `from` let it send to pods labelled `to` (egress). */
  const egress = (from: Rec, to: Rec): number[] =>
    policies
      .filter((np) => selects(rec(at(np, 'spec', 'podSelector')), from))
      .flatMap((np) => recs(at(np, 'spec', 'egress')))
      .filter((r) =>
        recs(r['to']).some((peer) => !('namespaceSelector' in peer) && selects(rec(peer['podSelector']), to)),
      )
      .flatMap((r) => recs(r['ports']).map((p) => portNumber(p['port'], to) ?? -1));

  /** Ingress rules of the policies selecting pods labelled `to`, with their ports as numbers. */
  const ingress = (to: Rec) =>
    policies
      .filter((np) => selects(rec(at(np, 'spec', 'podSelector')), to))
      .flatMap((np) => recs(at(np, 'spec', 'ingress')))
      .map((r) => ({ from: recs(r['from']), ports: recs(r['ports']).map((p) => portNumber(p['port'], to) ?? -1) }));

  it('lets gateways, and only gateways, reach the workers on 50051', () => {
    expect(egress(GATEWAY, WORKER)).toContain(50051);
    const rules = ingress(WORKER);
    expect(rules.flatMap((r) => r.ports)).toEqual([50051]);
    for (const r of rules) {
      expect(r.from.length).toBeGreaterThan(0);
      for (const peer of r.from)
        expect(!('namespaceSelector' in peer) && selects(rec(peer['podSelector']), GATEWAY), JSON.stringify(peer)).toBe(
          true,
        );
    }
  });

  it("admits NATS clients only from Switchyard's pods, routes only between the servers, monitoring for KEDA", () => {
    const nats = objectOf(BASE_OBJECTS, 'NetworkPolicy', 'switchyard-nats');
    expect(at(nats, 'spec', 'podSelector')).toEqual({ matchLabels: NATS });
    const rules = recs(at(nats, 'spec', 'ingress')).map((r) => ({
      from: recs(r['from']),
      ports: recs(r['ports']).map((p) => p['port']),
    }));
    expect(rules.find((r) => r.ports.includes(4222))?.from).toEqual([
      { podSelector: { matchLabels: { 'app.kubernetes.io/name': 'switchyard' } } },
    ]);
    expect(rules.filter((r) => r.ports.includes(4222))).toHaveLength(1);
    expect(rules.find((r) => r.ports.includes(6222))?.from).toEqual([{ podSelector: { matchLabels: NATS } }]);
    expect(rules.flatMap((r) => r.ports).sort()).toEqual([4222, 6222, 8222, 8222]);
    // Every Switchyard pod that speaks NATS carries the label the rule admits.
    for (const pods of [GATEWAY, WORKER]) expect(pods['app.kubernetes.io/name']).toBe('switchyard');
  });

  it('lets gateways and workers reach NATS on 4222 and the collector on 4317 and 4318', () => {
    for (const pods of [GATEWAY, WORKER]) {
      expect(egress(pods, NATS)).toContain(4222);
      expect(egress(pods, COLLECTOR)).toEqual(expect.arrayContaining([4317, 4318]));
    }
  });

  it('opens the gateways on 8000 to their namespace and the ingress controller, and on the KV ports to gateways only', () => {
    const all = ingress(GATEWAY);
    expect(all.flatMap((r) => r.ports)).toEqual([8000, 50061, 50062]);
    const kv = all.filter((r) => r.ports.includes(50061));
    expect(kv.flatMap((r) => r.ports)).toEqual([50061, 50062]);
    expect(kv.flatMap((r) => r.from)).toEqual([
      {
        podSelector: {
          matchLabels: { 'app.kubernetes.io/name': 'switchyard', 'app.kubernetes.io/component': 'gateway' },
        },
      },
    ]);
    const rules = all.filter((r) => r.ports.includes(8000));
    const peers = rules.flatMap((r) => r.from);
    expect(peers.length).toBeGreaterThan(0);
    for (const peer of peers) {
      if ('namespaceSelector' in peer)
        expect(at(peer, 'namespaceSelector', 'matchLabels', 'kubernetes.io/metadata.name')).toBe('ingress-nginx');
      else expect(peer['podSelector']).toEqual({});
    }
  });
});

describe('autoscaling and NATS', () => {
  const cluster = read('packages/cluster/src/request-queue.ts');
  // The stream of the namespace the base gives every process (SWITCHYARD_NAMESPACE in switchyard-shared).
  const stream = new ClusterNames(
    buildOf('base').settings.get('switchyard-shared')?.get('SWITCHYARD_NAMESPACE') ?? DEFAULT_NAMESPACE,
  ).requestStream;
  const consumerPrefix = /function consumerName[\s\S]*?`([^`$]*)\$\{escapeToken\(model\)\}`/.exec(cluster)?.[1];
  // The model the Job writes by default (MODEL_SOURCE=preset:<name>), which names the consumer.
  const preset =
    /^preset:(\S+)$/.exec(buildOf('base').settings.get('switchyard-model')?.get('MODEL_SOURCE') ?? '')?.[1] ?? '';
  const natsValues = docsOf(join(K8S, 'nats', 'values.yaml'))[0];

  it.each(OVERLAYS)(
    '%s: scales the gateway Deployment on the backlog of the request stream consumer its model uses',
    (overlay) => {
      expect(stream).toBeDefined();
      expect(consumerPrefix).toBeDefined();
      expect(preset, 'a preset name is its own subject token').toMatch(/^[A-Za-z0-9-]+$/);
      const b = buildOf(overlay);
      const base = objectOf(b.objects, 'ScaledObject', 'switchyard-gateway');
      expect(at(base, 'spec', 'scaleTargetRef')).toMatchObject({ kind: 'Deployment', name: 'switchyard-gateway' });
      // A patch's trigger list replaces the base's (JSON merge semantics: kustomize knows no ScaledObject schema).
      const patches = b.patches.filter((p) => kindOf(p) === 'ScaledObject' && nameOf(p) === 'switchyard-gateway');
      const triggers = [base, ...patches]
        .map((o) => at(o, 'spec', 'triggers'))
        .filter(Array.isArray)
        .at(-1);
      expect(recs(triggers)).toHaveLength(1);
      const maxRunning = num(b.settings.get('switchyard-gateway')?.get('SWITCHYARD_MAX_RUNNING')) ?? 0;
      for (const t of recs(triggers)) {
        expect(t['type']).toBe('nats-jetstream');
        const m = rec(t['metadata']);
        expect(m['stream']).toBe(stream);
        expect(m['consumer']).toBe(`${consumerPrefix}${preset}`);
        expect(str(m['natsServerMonitoringEndpoint'])?.split('.')[1], 'the endpoint is in the overlay namespace').toBe(
          b.namespace,
        );
        expect(str(m['natsServerMonitoringEndpoint'])?.split(':')[1]).toBe(
          String(at(natsValues, 'config', 'monitor', 'port')),
        );
        expect(num(m['lagThreshold']), 'lag per gateway ≤ its running batch').toBeLessThanOrEqual(maxRunning);
      }
    },
  );

  it("gives each role's pods its NATS user, whose permissions in the chart's values are the layout's for that role", () => {
    const names = new ClusterNames(
      buildOf('base').settings.get('switchyard-shared')?.get('SWITCHYARD_NAMESPACE') ?? DEFAULT_NAMESPACE,
    );
    const users = recs(at(natsValues, 'config', 'merge', 'authorization', 'users'));
    const byRole: [string, string, string, NatsRole][] = [
      ['Deployment', 'switchyard-gateway', 'gateway', 'engine'],
      ['StatefulSet', 'switchyard-worker', 'expert-worker', 'worker'],
      ['StatefulSet', 'switchyard-kv-store', 'kv-store', 'kv-store'],
    ];
    expect(users).toHaveLength(byRole.length);
    const passwordVariables = rec(at(natsValues, 'container', 'env'));
    for (const [kind, name, container, role] of byRole) {
      const env = recs(containerNamed(objectOf(BASE_OBJECTS, kind, name), container)['env']);
      const user = env.find((e) => e['name'] === 'NATS_USER')?.['value'];
      const password = rec(at(env.find((e) => e['name'] === 'NATS_PASSWORD') ?? {}, 'valueFrom', 'secretKeyRef'));
      // Required: a pod without the Secret does not start (no `optional: true`), and no anonymous fallback.
      expect(password, name).toMatchObject({ name: 'switchyard-nats' });
      expect(password['optional'], name).toBeUndefined();
      expect(
        env.some((e) => e['name'] === 'NATS_TOKEN'),
        name,
      ).toBe(false);
      const entry = users.find((u) => u['user'] === user);
      expect(entry, `${name}: NATS user ${String(user)} in k8s/nats/values.yaml`).toBeDefined();
      expect(at(entry ?? {}, 'permissions')).toEqual(
        JSON.parse(JSON.stringify(natsPermissions(names, role, ANY_NAME))),
      );
      // The server reads the same Secret key for this user's password.
      const variable = /^<< \$(\w+) >>$/.exec(str(entry?.['password']) ?? '')?.[1] ?? '';
      expect(at(passwordVariables, variable, 'valueFrom', 'secretKeyRef'), name).toEqual({
        name: 'switchyard-nats',
        key: password['key'],
      });
    }
  });

  it('runs NATS as a 3-server JetStream cluster on file storage, for the URL the services use', () => {
    expect(at(natsValues, 'config', 'cluster')).toMatchObject({ enabled: true, replicas: 3 });
    expect(at(natsValues, 'config', 'jetstream', 'enabled')).toBe(true);
    expect(at(natsValues, 'config', 'jetstream', 'fileStore', 'enabled')).toBe(true);
    expect(at(natsValues, 'config', 'monitor', 'enabled')).toBe(true);
    expect(buildOf('base').settings.get('switchyard-shared')?.get('NATS_URL')).toBe('nats://nats:4222');
    expect(readFileSync(join(K8S, 'README.md'), 'utf8')).toContain('helm upgrade --install nats nats/nats');
  });
});

describe('gpu overlay', () => {
  const gpu = buildOf('gpu');
  const patch = gpu.patches.find((p) => kindOf(p) === 'StatefulSet' && nameOf(p) === 'switchyard-worker') ?? {};

  it('gives every worker one GPU, on GPU nodes, tolerating their taint', () => {
    const worker = containerNamed(patch, 'expert-worker');
    expect(at(worker, 'resources', 'limits', GPU)).toBe(1);
    expect(recs(podSpec(patch)['tolerations']).map((t) => [t['key'], t['operator'], t['effect']])).toContainEqual([
      GPU,
      'Exists',
      'NoSchedule',
    ]);
    expect(podSpec(patch)['nodeSelector']).toEqual({ 'nvidia.com/gpu.present': 'true' });
  });

  it('runs the workers on the CUDA image with the CUDA execution provider', () => {
    expect(gpu.images.get('switchyard/worker')).toBe('switchyard/worker-cuda');
    expect(gpu.settings.get('switchyard-worker')?.get('SWITCHYARD_EXECUTION_PROVIDER')).toBe('cuda');
    expect(buildOf('cpu').settings.get('switchyard-worker')?.get('SWITCHYARD_EXECUTION_PROVIDER')).toBe('cpu');
    expect(JSON.stringify(buildOf('cpu').patches)).not.toContain(GPU);
  });
});

describe('Dockerfile', () => {
  it('has the gateway, worker, worker-cuda and cli targets, each running a script of this repository', () => {
    for (const target of TARGETS) {
      const script = entryScript(target);
      expect(script, target).toBeDefined();
      expect(existsSync(join(ROOT, script ?? '')), `${target} runs ${script}`).toBe(true);
    }
    expect(serviceOfImage('switchyard/gateway')).toBe('services/gateway');
    expect(serviceOfImage('switchyard/worker-cuda')).toBe('services/expert-worker');
  });

  it('runs every target as a numeric non-root user, in production mode, with a health check where it serves', () => {
    for (const target of TARGETS) {
      const user = effective(target, 'USER')?.args ?? '0';
      expect(Number(user.split(':')[0]), `${target} USER ${user}`).toBeGreaterThan(0);
      expect(envOf(target).get('NODE_ENV'), target).toBe('production');
      const health = effective(target, 'HEALTHCHECK')?.args ?? 'NONE';
      expect(health === 'NONE', `${target} HEALTHCHECK`).toBe(target === 'cli');
    }
  });

  it('copies every workspace manifest, then installs each image’s own service’s production dependencies only', () => {
    const manifests = stageNamed('manifests');
    const copied = new Set(
      manifests?.instructions.filter((i) => i.op === 'COPY').flatMap((i) => i.args.split(/\s+/).slice(0, -1)),
    );
    expect(WORKSPACE_DIRS.length).toBeGreaterThan(5);
    for (const ws of WORKSPACE_DIRS) expect(copied.has(`${ws}/package.json`), ws).toBe(true);
    for (const target of TARGETS) {
      const install = depsStageOf(target)
        .flatMap((s) => s.instructions)
        .find((i) => i.op === 'RUN' && i.args.includes('npm ci'));
      const service = entryScript(target)?.split('/').slice(0, 2).join('/');
      expect(install?.args, target).toContain('--omit=dev');
      expect(install?.args, target).toContain(`-w ${service ?? ''}`);
      // onnxruntime-node's macOS, Windows and other-architecture binaries go in the same layer.
      expect(install?.args, target).toMatch(/npm ci [^&]*&& keep-own-onnxruntime$/);
    }
    // The CLI's extra libraries (charts, progress bars) are in its image only.
    for (const extra of ['vega', 'vega-lite', 'cli-progress']) {
      expect(productionDependenciesOf('services/cli').has(extra), extra).toBe(true);
      expect(productionDependenciesOf('services/gateway').has(extra), extra).toBe(false);
      expect(productionDependenciesOf('services/expert-worker').has(extra), extra).toBe(false);
    }
  });

  it('pins the Node of package.json and every base image by digest, and labels every image (OCI)', () => {
    expect(DOCKERFILE.args.get('NODE_VERSION')).toBe(at(ROOT_PACKAGE, 'devDependencies', 'node'));
    const bases = DOCKERFILE.stages.map((s) => s.base).filter((b) => b !== 'scratch' && !stageNamed(b));
    expect(bases.length).toBe(2);
    for (const base of bases) expect(base, base).toMatch(/^[^@]+:[^@]+@sha256:[0-9a-f]{64}$/);
    for (const target of TARGETS) {
      const labels = lineage(target)
        .flatMap((s) => s.instructions.filter((i) => i.op === 'LABEL'))
        .map((i) => i.args)
        .join(' ');
      for (const key of ['source', 'revision', 'version', 'title'])
        expect(labels, `${target} org.opencontainers.image.${key}`).toContain(`org.opencontainers.image.${key}=`);
    }
  });

  it('installs, verified, the CUDA 12 execution provider onnxruntime-node’s own install would, for the CUDA target', async () => {
    const metadata = (await import(join(ROOT, 'node_modules/onnxruntime-node/script/install-metadata.js'))) as {
      default: {
        manifests: Record<string, Record<string, { package: string; path: string }>>;
        packages: Record<string, { name: string; versions: { version: string }[] }>;
      };
    };
    const manifest = metadata.default.manifests['linux/x64:cuda12'] ?? {};
    const files = Object.keys(manifest).map((f) => basename(f));
    const pkg = metadata.default.packages[Object.values(manifest)[0]?.package ?? ''];
    const { CUDA_EP_FILES, CUDA_EP_PACKAGE } = await import('../docker/install-cuda-ep.ts');
    expect([...CUDA_EP_FILES].sort()).toEqual(files.sort());
    expect(pkg?.name).toBe(CUDA_EP_PACKAGE);
    // The same version as onnxruntime-node itself, which the script reads from its package.json.
    const ortVersion = str(rec(JSON.parse(read('node_modules/onnxruntime-node/package.json')))['version']);
    expect(pkg?.versions.map((v) => v.version)).toContain(ortVersion);
    const runs = depsStageOf('worker-cuda').flatMap((s) => s.instructions.filter((i) => i.op === 'RUN'));
    expect(runs.some((i) => i.args.startsWith('node docker/install-cuda-ep.ts'))).toBe(true);
    expect(stageNamed('worker-cuda')?.base).toMatch(/^nvidia\/cuda:12\.[\d.]+-cudnn-runtime-/);
  });

  it('builds every Switchyard image the manifests use', () => {
    const images = [...BUILDS.values()].flatMap((b) => containerSettings(b).map((c) => imageName(c.image)));
    const ours = [...new Set(images.filter((i) => i.startsWith(IMAGE_PREFIX)))];
    expect(ours.sort()).toEqual([
      'switchyard/cli',
      'switchyard/gateway',
      'switchyard/kv-store',
      'switchyard/worker',
      'switchyard/worker-cuda',
    ]);
    for (const image of ours) expect(stageNamed(image.slice(IMAGE_PREFIX.length)), image).toBeDefined();
  });

  it('keeps node_modules, models, bench output and .git out of the build context', () => {
    const ignored = read('.dockerignore')
      .split('\n')
      .map((l) => l.trim());
    for (const pattern of ['**/node_modules', 'models', '.git']) expect(ignored, pattern).toContain(pattern);
    expect(ignored.includes('bench') || ignored.includes('bench/out')).toBe(true);
  });

  it.each(TARGETS)('%s: holds every file its entry script imports, and only production dependencies', (target) => {
    const { files, packages } = importClosure(entryScript(target) ?? '');
    expect(files.size).toBeGreaterThan(5);
    const copied = copiedPaths(target);
    const ignored = dockerIgnored();
    for (const file of files) {
      expect(
        copied.some((c) => file === c || file.startsWith(`${c}/`)),
        `${target}: ${file} is copied`,
      ).toBe(true);
      expect(ignored(file), `${target}: ${file} is in the build context`).toBe(false);
    }
    const own = productionDependenciesOf(entryScript(target)?.split('/').slice(0, 2).join('/') ?? '');
    for (const name of packages)
      expect(own.has(name), `${target} imports ${name}, not a production dependency of its service`).toBe(true);
  });
});
