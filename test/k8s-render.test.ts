/**
 * `kubectl kustomize` renders every overlay, and every component on an overlay, and each rendered object
 * is valid against the Kubernetes, Prometheus-operator and KEDA schemas (kubernetes-models and its
 * CRD model packages). Then what the monitoring component is for: Prometheus reaches the gateways'
 * /metrics, from the monitoring namespace an overlay names, and Grafana gets the dashboards.
 *
 * Needs kubectl (with its built-in kustomize ≥ 5): `KUBECTL` or `kubectl` on the PATH; `.ci/run` provides
 * one when the machine has none.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const KUBECTL = process.env['KUBECTL'] ?? 'kubectl';

type Rec = Readonly<Record<string, unknown>>;
const isRec = (v: unknown): v is Rec => typeof v === 'object' && v !== null && !Array.isArray(v);
const rec = (v: unknown): Rec => (isRec(v) ? v : {});
const at = (v: unknown, ...path: readonly string[]): unknown => path.reduce<unknown>((o, key) => rec(o)[key], v);
const list = (v: unknown): Rec[] => (Array.isArray(v) ? v.filter(isRec) : []);
const idOf = (o: Rec) => `${String(o['kind'])}/${String(at(o, 'metadata', 'name'))}`;

/**
 * Kustomizations made for this test, removed at the end: a component is rendered on an overlay, with the
 * overlay's namespace, as an overlay of one's own that lists it would.
 */
const scratch = mkdtempSync(join(ROOT, 'test', '.kustomize-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function kustomization(name: string, body: string): string {
  const dir = join(scratch, name);
  spawnSync('mkdir', ['-p', dir]);
  const up = relative(dir, ROOT);
  writeFileSync(
    join(dir, 'kustomization.yaml'),
    `apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n${body.replaceAll('<root>', up)}`,
  );
  return dir;
}

function render(dir: string): Rec[] {
  const run = spawnSync(KUBECTL, ['kustomize', dir], { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (run.error)
    throw new Error(`cannot run ${KUBECTL} (set KUBECTL, or see .ci/run for how CI gets one): ${run.error.message}`);
  if (run.status !== 0) throw new Error(`kubectl kustomize ${relative(ROOT, dir)} failed:\n${run.stderr}`);
  return parseAllDocuments(run.stdout)
    .map((d): unknown => d.toJS())
    .filter(isRec);
}

/** The model class of an object's apiVersion and kind, from the package that holds its schema. */
async function modelOf(
  apiVersion: string,
  kind: string,
): Promise<(new (data: unknown) => { validate(): void }) | undefined> {
  const [group, version] = apiVersion.includes('/') ? apiVersion.split('/') : ['', apiVersion];
  const pkg =
    group === 'monitoring.coreos.com'
      ? '@kubernetes-models/prometheus-operator'
      : group === 'keda.sh'
        ? '@kubernetes-models/keda'
        : 'kubernetes-models';
  const path = group ? `${pkg}/${group}/${version}/${kind}` : `${pkg}/${version}/${kind}`;
  try {
    const module = (await import(path)) as Record<string, unknown>;
    return module[kind] as (new (data: unknown) => { validate(): void }) | undefined;
  } catch {
    return undefined;
  }
}

const TARGETS = {
  'overlays/cpu': kustomization('cpu', 'resources: [<root>/k8s/overlays/cpu]\n'),
  'overlays/gpu': kustomization('gpu', 'resources: [<root>/k8s/overlays/gpu]\n'),
  'gpu + components/gateway-on-gpu-nodes': kustomization(
    'gpu-gateways',
    'namespace: switchyard\nresources: [<root>/k8s/overlays/gpu]\ncomponents: [<root>/k8s/components/gateway-on-gpu-nodes]\n',
  ),
  'cpu + components/monitoring': kustomization(
    'cpu-monitoring',
    'namespace: switchyard\nresources: [<root>/k8s/overlays/cpu]\ncomponents: [<root>/k8s/components/monitoring]\n',
  ),
} as const;

describe('rendered manifests', () => {
  const rendered = new Map(Object.entries(TARGETS).map(([name, dir]) => [name, render(dir)]));

  it.each(Object.keys(TARGETS))('%s renders and every object is valid against its schema', async (name) => {
    const objects = rendered.get(name) ?? [];
    expect(objects.length).toBeGreaterThan(10);
    for (const object of objects) {
      const Model = await modelOf(String(object['apiVersion']), String(object['kind']));
      expect(Model, `no schema for ${String(object['apiVersion'])} ${idOf(object)}`).toBeDefined();
      if (!Model) continue;
      expect(() => new Model(object).validate(), idOf(object)).not.toThrow();
    }
  });

  it('rejects an object its schema does not allow (the validation is real)', async () => {
    const Model = await modelOf('monitoring.coreos.com/v1', 'ServiceMonitor');
    expect(Model).toBeDefined();
    const bad = { metadata: { name: 'x' }, spec: { endpoints: [{ port: 8000 }], selector: {} } };
    expect(() => Model && new Model(bad).validate()).toThrow(/port/);
  });
});

describe('the monitoring component', () => {
  const objects = render(TARGETS['cpu + components/monitoring']);
  const find = (kind: string, name: string) => objects.find((o) => idOf(o) === `${kind}/${name}`);

  it('has Prometheus scrape /metrics on the port of the gateway Service it selects', () => {
    const monitor = find('ServiceMonitor', 'switchyard-gateway');
    const service = find('Service', 'switchyard-gateway');
    expect(at(monitor, 'metadata', 'namespace')).toBe(at(service, 'metadata', 'namespace'));
    const selector = rec(at(monitor, 'spec', 'selector', 'matchLabels'));
    const labels = rec(at(service, 'metadata', 'labels'));
    expect(Object.entries(selector).every(([k, v]) => labels[k] === v)).toBe(true);
    const endpoint = list(at(monitor, 'spec', 'endpoints'))[0];
    expect(list(at(service, 'spec', 'ports')).map((p) => p['name'])).toContain(endpoint?.['port']);
    expect(endpoint?.['path']).toBe('/metrics');
  });

  it('admits the monitoring namespace to the gateways’ HTTP port, `monitoring` unless an overlay names another', () => {
    const admitted = (objs: Rec[]) => {
      const policy = objs.find((o) => idOf(o) === 'NetworkPolicy/switchyard-gateway-metrics');
      const rule = list(at(policy, 'spec', 'ingress'))[0];
      return {
        namespace: at(list(rule?.['from'])[0], 'namespaceSelector', 'matchLabels', 'kubernetes.io/metadata.name'),
        ports: list(rule?.['ports']).map((p) => p['port']),
        pods: at(policy, 'spec', 'podSelector', 'matchLabels'),
      };
    };
    const gatewayPods = at(find('Deployment', 'switchyard-gateway'), 'spec', 'template', 'metadata', 'labels');
    const standard = admitted(objects);
    expect(standard).toMatchObject({ namespace: 'monitoring', ports: ['http'] });
    expect(Object.entries(rec(standard.pods)).every(([k, v]) => rec(gatewayPods)[k] === v)).toBe(true);
    // The patch the component's kustomization.yaml shows, in an overlay of one's own.
    const own = kustomization(
      'cpu-monitoring-observability',
      `namespace: switchyard
resources: [<root>/k8s/overlays/cpu]
components: [<root>/k8s/components/monitoring]
patches:
  - target: { kind: NetworkPolicy, name: switchyard-gateway-metrics }
    patch: |-
      - op: replace
        path: /spec/ingress/0/from/0/namespaceSelector/matchLabels/kubernetes.io~1metadata.name
        value: observability
`,
    );
    expect(admitted(render(own)).namespace).toBe('observability');
  });

  it('gives Grafana’s dashboard sidecar the three dashboards, as written in the repository', () => {
    const configMap = objects.find((o) => o['kind'] === 'ConfigMap' && idOf(o).includes('switchyard-dashboards'));
    expect(at(configMap, 'metadata', 'labels', 'grafana_dashboard')).toBe('1');
    const data = rec(configMap?.['data']);
    const dir = join(ROOT, 'k8s', 'components', 'monitoring', 'dashboards');
    expect(Object.keys(data).sort()).toEqual([
      'switchyard-cluster-overview.json',
      'switchyard-expert-parallelism.json',
      'switchyard-token-economics.json',
    ]);
    for (const [file, text] of Object.entries(data)) expect(text).toBe(readFileSync(join(dir, file), 'utf8'));
  });
});
