/**
 * The Grafana dashboards (k8s/components/monitoring/dashboards) read only what Switchyard exports: every
 * PromQL query in them — panel targets and template variables — names metrics of the catalog
 * (packages/telemetry/src/metric-catalog.ts, itself checked against the services' scrape).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { METRIC_CATALOG } from '@switchyard/telemetry';

const DIR = fileURLToPath(new URL('../k8s/components/monitoring/dashboards/', import.meta.url));
const FILES = readdirSync(DIR).filter((f) => f.endsWith('.json'));

interface Query {
  readonly where: string;
  readonly expr: string;
}

type Json = Readonly<Record<string, unknown>>;
const isJson = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const records = (v: unknown): Json[] => (Array.isArray(v) ? v.filter(isJson) : []);

/** Every query of a dashboard: targets of panels (rows' nested panels too) and query variables. */
function queriesOf(dashboard: Json): Query[] {
  const panels = records(dashboard['panels']).flatMap((p) => [p, ...records(p['panels'])]);
  const targets = panels.flatMap((p) =>
    records(p['targets']).map((t) => ({ where: `panel "${String(p['title'])}"`, expr: String(t['expr'] ?? '') })),
  );
  const variables = records((dashboard['templating'] as Json | undefined)?.['list'])
    .filter((v) => v['type'] === 'query')
    .map((v) => {
      const query = v['query'];
      return { where: `variable ${String(v['name'])}`, expr: isJson(query) ? String(query['query']) : String(query) };
    });
  return [...targets, ...variables];
}

const FUNCTION_OR_KEYWORD = new Set([
  'and',
  'or',
  'unless',
  'bool',
  'offset',
  'group_left',
  'group_right',
  'inf',
  'nan',
  'Inf',
  'NaN',
]);

/**
 * The metric names a PromQL expression selects: what is left after removing strings, label matchers,
 * ranges, `by (…)`-style label lists, numbers and dashboard variables, that is not a function call or a
 * keyword. `label_values(metric, label)` names its metric.
 */
function metricNamesOf(expr: string): string[] {
  const stripped = expr
    .replace(/label_values\(\s*([^,()]+?)\s*,\s*[a-zA-Z_]\w*\s*\)/g, ' $1 ')
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
    .replace(/\$\{?\w+\}?/g, ' ')
    .replace(/(^|[^\w:])\d+(\.\d+)?(e[+-]?\d+)?/gi, '$1 ');
  const names: string[] = [];
  for (const match of stripped.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)) {
    const after = stripped.slice((match.index ?? 0) + match[0].length).trimStart();
    if (after.startsWith('(') || FUNCTION_OR_KEYWORD.has(match[0])) continue;
    names.push(match[0]);
  }
  return names;
}

/** The catalog family a selected series belongs to (a histogram's `_bucket`, `_sum`, `_count` too). */
function familyOf(name: string): string | undefined {
  const exact = METRIC_CATALOG.find((m) => m.name === name);
  if (exact) return exact.name;
  const base = name.replace(/_(bucket|sum|count)$/, '');
  return METRIC_CATALOG.find((m) => m.name === base && m.type === 'histogram')?.name;
}

describe('Grafana dashboards', () => {
  it('has the cluster overview, expert parallelism and token economics dashboards', () => {
    expect(FILES.sort()).toEqual([
      'switchyard-cluster-overview.json',
      'switchyard-expert-parallelism.json',
      'switchyard-token-economics.json',
    ]);
  });

  it.each(FILES)('%s: every query names only metrics the services export', (file) => {
    const dashboard = JSON.parse(readFileSync(join(DIR, file), 'utf8')) as Json;
    const queries = queriesOf(dashboard);
    expect(queries.length).toBeGreaterThan(5);
    for (const { where, expr } of queries) {
      const names = metricNamesOf(expr);
      expect(names.length, `${where} names no metric: ${expr}`).toBeGreaterThan(0);
      for (const name of names) expect(familyOf(name), `${where}: ${name} is not exported`).toBeDefined();
    }
  });

  it('reads a PromQL expression’s metric names, and not its functions, labels, numbers or variables', () => {
    expect(
      metricNamesOf(
        'histogram_quantile(0.99, sum by (le, switchyard_worker) (rate(x_seconds_bucket{error_type!="a b"}[$__rate_interval])))',
      ),
    ).toEqual(['x_seconds_bucket']);
    expect(metricNamesOf('$device_hour_usd * 2 / (sum(rate(vllm:prompt_tokens_total[5m])) * 3600) * 1e6')).toEqual([
      'vllm:prompt_tokens_total',
    ]);
    expect(metricNamesOf('label_values(vllm:num_requests_running, model_name)')).toEqual(['vllm:num_requests_running']);
    expect(metricNamesOf('a / on (pod) group_left b')).toEqual(['a', 'b']);
  });

  it('takes a histogram’s series to its family, and nothing else', () => {
    expect(familyOf('vllm:e2e_request_latency_seconds_bucket')).toBe('vllm:e2e_request_latency_seconds');
    expect(familyOf('vllm:num_requests_running')).toBe('vllm:num_requests_running');
    expect(familyOf('vllm:num_requests_running_count')).toBeUndefined(); // a gauge has no _count
    expect(familyOf('vllm:gpu_cache_usage_perc')).toBeUndefined(); // vLLM's, not exported here
  });
});
