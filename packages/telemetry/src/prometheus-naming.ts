/**
 * OpenTelemetry → Prometheus names, by the OpenTelemetry compatibility specification
 * (`compatibility/prometheus_and_openmetrics.md`) as the Collector's Prometheus exporter applies it by
 * default (Prometheus' otlptranslator, strategy `UnderscoreEscapingWithSuffixes`).
 *
 * Both of our paths use these rules: the gateway's and worker's direct `/metrics` (see
 * prometheus-exposition.ts) and — in the Collector — the OTLP path. So one metric has one name whichever
 * way Prometheus reads it.
 *
 * NOTE: the OpenTelemetry JS Prometheus exporter does not follow these rules (it adds no unit suffix and
 * turns `:` into `_`), which is why the direct scrape has its own serialiser.
 */

/** How Prometheus sees an OpenTelemetry metric: a monotonic sum is a counter, a non-monotonic one a gauge. */
export type PrometheusKind = 'counter' | 'gauge' | 'histogram' | 'updown';

/** UCUM units the specification names (others pass through as written). */
const UNIT_WORDS: Readonly<Record<string, string>> = {
  d: 'days',
  h: 'hours',
  min: 'minutes',
  s: 'seconds',
  ms: 'milliseconds',
  us: 'microseconds',
  ns: 'nanoseconds',
  By: 'bytes',
  KiBy: 'kibibytes',
  MiBy: 'mebibytes',
  GiBy: 'gibibytes',
  TiBy: 'tibibytes',
  KBy: 'kilobytes',
  MBy: 'megabytes',
  GBy: 'gigabytes',
  TBy: 'terabytes',
  m: 'meters',
  V: 'volts',
  A: 'amperes',
  J: 'joules',
  W: 'watts',
  g: 'grams',
  Cel: 'celsius',
  Hz: 'hertz',
  '1': '',
  '%': 'percent',
};
const PER_UNIT_WORDS: Readonly<Record<string, string>> = {
  s: 'second',
  m: 'minute',
  h: 'hour',
  d: 'day',
  w: 'week',
  mo: 'month',
  y: 'year',
};

/** Characters outside the legacy metric-name alphabet become separators (`:` is kept). */
const NAME_SEPARATOR = /[^a-zA-Z0-9:]+/;

/**
 * The Prometheus name of an OpenTelemetry metric: split on characters outside `[a-zA-Z0-9:]`, add the
 * unit's word unless the name has it already (`{…}` annotations and `1` add none), `total` last for a
 * counter, `ratio` last for a gauge of unit `1`; a leading digit gets `_`.
 *
 *   gen_ai.server.time_to_first_token, s, histogram → gen_ai_server_time_to_first_token_seconds
 *   vllm:prompt_tokens, {token}, counter           → vllm:prompt_tokens_total
 */
export function prometheusMetricName(name: string, unit: string, kind: PrometheusKind): string {
  let tokens = name.split(NAME_SEPARATOR).filter((t) => t !== '');
  const [mainWord, perWord] = unitWords(unit);
  const main = cleanUnit(mainWord);
  let per = cleanUnit(perWord);
  per = per === 'per_' ? '' : per.replace(/_$/, '');
  if (per !== '' && tokens.includes(per)) per = '';
  if (main !== '' && !tokens.includes(main)) tokens.push(per !== '' ? main.replace(/_$/, '') : main);
  if (per !== '') tokens.push(per);
  if (kind === 'counter') tokens = [...tokens.filter((t) => t !== 'total'), 'total'];
  if (unit === '1' && kind === 'gauge') tokens = [...tokens.filter((t) => t !== 'ratio'), 'ratio'];
  const joined = tokens.join('_');
  return /^[0-9]/.test(joined) ? `_${joined}` : joined;
}

/** A label name: characters outside `[a-zA-Z0-9_]` become `_`, runs of `_` collapse, a leading digit gets `key_`. */
export function prometheusLabelName(attribute: string): string {
  const name = attribute.replace(/[^a-zA-Z0-9_]/g, '_').replace(/_{2,}/g, '_');
  return /^[0-9]/.test(name) ? `key_${name}` : name;
}

function unitWords(unit: string): [string, string] {
  const [mainUnit = '', perUnit = ''] = unit.split(/\/(.*)/s, 2);
  const main = mainUnit.trim();
  const per = perUnit.trim();
  const mainWord = main !== '' && !/[{}]/.test(main) ? (UNIT_WORDS[main] ?? main) : '';
  const perWord = per !== '' && !/[{}]/.test(per) ? `per_${PER_UNIT_WORDS[per] ?? per}` : '';
  return [mainWord, perWord];
}

function cleanUnit(word: string): string {
  return word
    .replace(/[^a-zA-Z0-9:]/g, '_')
    .replace(/_{2,}/g, '_')
    .replace(/^_/, '');
}
