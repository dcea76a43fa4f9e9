/**
 * The KV page store process. Reads its configuration once (each flag, or else its environment variable,
 * or else the default), serves, and stops on SIGTERM/SIGINT.
 *
 *   node services/kv-store/src/main.ts --nats-url nats://127.0.0.1:4222 --port 50070 --capacity-bytes 4GiB
 */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { redactUrl } from '@switchyard/cluster';
import { parseServiceFlags, stopWithParent } from '@switchyard/flags';
import { KvStoreService, type KvStoreConfig } from './kv-store.ts';

/** Each flag and the environment variable it falls back to (flags win over variables, variables over defaults). */
const ENV_OF = {
  host: 'SWITCHYARD_HOST',
  port: 'SWITCHYARD_KV_STORE_PORT',
  'kv-data-port': 'SWITCHYARD_KV_DATA_PORT',
  'advertise-host': 'SWITCHYARD_KV_ADVERTISE_HOST',
  'capacity-bytes': 'SWITCHYARD_KV_STORE_CAPACITY_BYTES',
  name: 'SWITCHYARD_INSTANCE',
  'nats-url': 'SWITCHYARD_NATS_URL',
  namespace: 'SWITCHYARD_NAMESPACE',
  'stats-interval-ms': 'SWITCHYARD_KV_STORE_STATS_INTERVAL_MS',
} as const;
const FLAG_HELP: { readonly [F in keyof typeof ENV_OF]: readonly [value: string, description: string] } = {
  host: ['host', 'address to listen on (default 127.0.0.1)'],
  port: ['n', 'KvPageService port (default 50070; 0 picks a free one)'],
  'kv-data-port': [
    'n',
    'port of the KV bulk data plane, page fetches over plain TCP (default: the KvPageService port + 1; a free one when that is 0)',
  ],
  'advertise-host': [
    'host',
    'host engines reach this store at (default: the listening host, or the host name when that is 0.0.0.0)',
  ],
  'capacity-bytes': ['size', 'memory for pages, e.g. 4GiB or 536870912 (default 1GiB); least recently used out first'],
  name: ['id', 'its id in KV events and load reports (default kv-store-<pid>)'],
  'nats-url': ['url', 'NATS server (required): the store announces its pages there'],
  namespace: [
    'name',
    'the cluster’s namespace on NATS: its subjects, streams and buckets (a-z, 0-9, -; default default)',
  ],
  'stats-interval-ms': ['n', 'log a line of counters and RSS this often (default 0: never)'],
};

const values = parseServiceFlags({
  name: 'kv-store',
  version: (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string })
    .version,
  summary:
    'A shared KV page store: engines push the pages they evict and fetch them back (KvPageService), and every frontend learns what it holds from its KV events.',
  flags: Object.entries(ENV_OF).map(([name, variable]) => {
    const [value, description] = FLAG_HELP[name as keyof typeof ENV_OF];
    return { name, env: variable, value, description, ...(name === 'nats-url' ? { alsoEnv: 'NATS_URL' } : {}) };
  }),
  epilogue: 'Flags win over environment variables, which win over the defaults. Sizes take a KiB, MiB or GiB suffix.',
  argv: process.argv.slice(2),
  env: process.env,
}) as { readonly [F in keyof typeof ENV_OF]?: string };

function fail(message: string): never {
  process.stderr.write(`kv-store: ${message}\n`);
  process.exit(2);
}

const str = (flag: keyof typeof ENV_OF): string | undefined => {
  const v = values[flag];
  return v !== undefined && v !== '' ? v : undefined;
};

function int(flag: keyof typeof ENV_OF, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const value = str(flag);
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max)
    fail(`--${flag} must be an integer in [${min}, ${max}], got "${value}"`);
  return n;
}

/** "4GiB", "512MiB", "1048576" → bytes. */
function parseBytes(value: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)\s*(B|KiB|MiB|GiB|TiB)?$/.exec(value.trim());
  if (!m) return undefined;
  const scale = { B: 1, KiB: 2 ** 10, MiB: 2 ** 20, GiB: 2 ** 30, TiB: 2 ** 40 }[m[2] ?? 'B'] ?? 1;
  const n = Math.floor(Number(m[1]) * scale);
  return Number.isSafeInteger(n) && n > 0 ? n : undefined;
}

const natsUrl = str('nats-url');
if (natsUrl === undefined) fail('--nats-url (or NATS_URL) is required: the store announces its pages on NATS');
const host = str('host') ?? '127.0.0.1';
const capacityText = str('capacity-bytes') ?? '1GiB';
const capacityBytes = parseBytes(capacityText);
if (capacityBytes === undefined)
  fail(`--capacity-bytes must be a size such as 1GiB or 536870912, got "${capacityText}"`);
const port = int('port', 50070, 0, 65535);
if (port === 65535 && str('kv-data-port') === undefined) fail('--kv-data-port is required when --port is 65535');
const config: KvStoreConfig = Object.freeze({
  host,
  port,
  dataPort: int('kv-data-port', port === 0 ? 0 : port + 1, 0, 65535),
  advertiseHost: str('advertise-host') ?? (host === '0.0.0.0' || host === '::' ? hostname() : host),
  capacityBytes,
  name: str('name') ?? `kv-store-${process.pid}`,
  natsUrl,
  ...namespaceOption(str('namespace')),
});

function namespaceOption(namespace: string | undefined): { namespace?: string } {
  return namespace === undefined ? {} : { namespace };
}
const statsIntervalMs = int('stats-interval-ms', 0, 0);

const log = (line: string) => process.stdout.write(`kv-store ${config.name}: ${line}\n`);
let service: KvStoreService;
try {
  service = await KvStoreService.start(config, log);
} catch (error) {
  const e = error as { code?: unknown; message?: string };
  if (typeof e.code === 'string') fail(`${e.message ?? String(error)} (NATS at ${redactUrl(natsUrl)})`);
  throw error;
}
process.stdout.write(
  `kv-store serving ${config.name} at ${service.address}, pages over TCP at ${service.dataAddress} (capacity ${capacityBytes} bytes, NATS at ${redactUrl(natsUrl)})\n`,
);
if (statsIntervalMs > 0) {
  setInterval(
    () => log(JSON.stringify({ ...service.stats(), rssBytes: process.memoryUsage().rss })),
    statsIntervalMs,
  ).unref();
}

async function shutdown(signal: string): Promise<void> {
  log(`${signal}, stopping`);
  await service.stop(2_000);
  process.exit(0);
}
process.on('SIGTERM', () => void shutdown('SIGTERM'));
stopWithParent();
process.on('SIGINT', () => void shutdown('SIGINT'));
