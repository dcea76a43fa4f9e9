/**
 * A parser for the Prometheus text exposition format (0.0.4, and the OpenMetrics lines a Prometheus
 * exporter may add: `# EOF`, `# UNIT`): samples with their labels and values, and each family's type.
 *
 * Grammar per line: `# HELP name text`, `# TYPE name type`, other `#` comments, blank lines, or
 * `name{label="value",…} value [timestamp]` where label values escape `\\`, `\"` and `\n`, and the
 * value may be `NaN`, `+Inf` or `-Inf`.
 */

export interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

export type MetricType =
  'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped' | 'unknown' | 'info' | 'stateset' | 'gaugehistogram';

export interface Exposition {
  readonly samples: readonly Sample[];
  /** Family name → declared type. */
  readonly types: ReadonlyMap<string, MetricType>;
}

export class PrometheusParseError extends Error {
  override readonly name = 'PrometheusParseError';
  readonly code = 'bad_exposition' as const;
  readonly line: number;

  constructor(line: number, message: string) {
    super(`/metrics line ${line}: ${message}`);
    this.line = line;
  }
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*/;

function parseValue(token: string | undefined, line: number): number {
  if (token === undefined) throw new PrometheusParseError(line, 'a sample has no value');
  if (token === 'NaN') return NaN;
  if (token === '+Inf' || token === 'Inf') return Infinity;
  if (token === '-Inf') return -Infinity;
  const value = Number(token);
  if (token.trim() === '' || Number.isNaN(value)) throw new PrometheusParseError(line, `bad value "${token}"`);
  return value;
}

/** Reads `{a="1",b="x\"y"}` from the start of `rest`; returns the labels and what follows. */
function parseLabels(rest: string, line: number): { labels: Record<string, string>; after: string } {
  const labels: Record<string, string> = {};
  let i = 1;
  for (;;) {
    while (rest[i] === ' ' || rest[i] === ',') i++;
    if (rest[i] === '}') return { labels, after: rest.slice(i + 1) };
    const name = LABEL_NAME.exec(rest.slice(i))?.[0];
    if (name === undefined) throw new PrometheusParseError(line, 'bad label name');
    i += name.length;
    while (rest[i] === ' ') i++;
    if (rest[i] !== '=' || rest[i + 1] !== '"') throw new PrometheusParseError(line, `label ${name} has no ="value"`);
    i += 2;
    let value = '';
    for (;;) {
      const c = rest[i];
      if (c === undefined) throw new PrometheusParseError(line, `unterminated value of label ${name}`);
      if (c === '"') break;
      if (c === '\\') {
        const next = rest[i + 1];
        value += next === 'n' ? '\n' : (next ?? '');
        i += 2;
      } else {
        value += c;
        i++;
      }
    }
    labels[name] = value;
    i++;
  }
}

function parseSample(text: string, line: number): Sample {
  const name = NAME.exec(text)?.[0];
  if (name === undefined) throw new PrometheusParseError(line, 'a sample does not start with a metric name');
  let rest = text.slice(name.length);
  let labels: Record<string, string> = {};
  if (rest.startsWith('{')) ({ labels, after: rest } = parseLabels(rest, line));
  const [valueToken] = rest.trim().split(/\s+/);
  return { name, labels, value: parseValue(valueToken, line) };
}

export function parseExposition(text: string): Exposition {
  const samples: Sample[] = [];
  const types = new Map<string, MetricType>();
  text.split('\n').forEach((raw, index) => {
    const line = raw.trim();
    if (line === '') return;
    if (line.startsWith('#')) {
      const typed = /^#\s*TYPE\s+(\S+)\s+(\S+)/.exec(line);
      if (typed?.[1] !== undefined && typed[2] !== undefined) types.set(typed[1], typed[2] as MetricType);
      return;
    }
    samples.push(parseSample(line, index + 1));
  });
  return { samples, types };
}
