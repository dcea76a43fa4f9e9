import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Command } from 'commander';
import {
  ANY_NAME,
  ClusterNames,
  createNatsUserKey,
  natsServerAuthorization,
  type NatsRole,
  type NatsUser,
} from '@switchyard/cluster';
import { action, UsageError } from '../user-error.ts';

interface NatsConfigOptions {
  out: string;
  namespace: string;
  engines: string[];
  frontends: string[];
  workers: string[];
  kvStores: string[];
  perRole: boolean;
  force: boolean;
}

const list = (value: string): string[] =>
  value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);

/**
 * `switchyard nats-config`: one NKey user per process (or per role) with the permissions of its role
 * (packages/cluster/src/permissions.ts), written as a nats-server `authorization` block to include in the
 * server's configuration, and one seed file per user for the process (NATS_NKEY=<file>).
 */
export function natsConfigCommand(): Command {
  return new Command('nats-config')
    .description(
      'write NATS users with per-subject permissions for a cluster: an authorization block for nats-server ' +
        '(include it in the server config) and one NKey seed file per process, given to it as NATS_NKEY',
    )
    .requiredOption('--out <dir>', 'directory for auth.conf and the seed files (<name>.nk)')
    .option('--namespace <name>', 'the cluster namespace (--namespace of the services)', 'default')
    .option('--engines <names>', 'gateways that serve the queue (their --name), comma-separated', list, [])
    .option('--frontends <names>', 'gateways started with --no-engine (their --name)', list, [])
    .option('--workers <ids>', 'expert workers registering on NATS (their --worker-id)', list, [])
    .option('--kv-stores <names>', 'KV page stores (their --name)', list, [])
    .option(
      '--per-role',
      'one user per role instead of per process (for Deployments, whose pod names are not known in advance): ' +
        'roles stay apart, processes of one role do not',
      false,
    )
    .option('--force', 'overwrite files that exist', false)
    .action(action(async (options: NatsConfigOptions) => writeNatsConfig(options)));
}

async function writeNatsConfig(options: NatsConfigOptions): Promise<void> {
  const names = new ClusterNames(options.namespace);
  const processes: { role: NatsRole; name: string; file: string }[] = options.perRole
    ? (['engine', 'frontend', 'worker', 'kv-store'] as const).map((role) => ({ role, name: ANY_NAME, file: role }))
    : [
        ...options.engines.map((name) => ({ role: 'engine' as const, name, file: name })),
        ...options.frontends.map((name) => ({ role: 'frontend' as const, name, file: name })),
        // A worker's NATS client name is worker-<id>.
        ...options.workers.map((id) => ({ role: 'worker' as const, name: `worker-${id}`, file: `worker-${id}` })),
        ...options.kvStores.map((name) => ({ role: 'kv-store' as const, name, file: name })),
      ];
  if (processes.length === 0)
    throw new UsageError('name the processes (--engines, --frontends, --workers, --kv-stores) or give --per-role');
  const files = new Set(processes.map((p) => p.file));
  if (files.size !== processes.length) throw new UsageError('a name is given twice');
  for (const p of processes)
    if (!/^[A-Za-z0-9._-]+$/.test(p.file)) throw new UsageError(`"${p.file}" cannot be a file name`);
  const dir = resolve(options.out);
  const targets = ['auth.conf', ...processes.map((p) => `${p.file}.nk`)].map((f) => join(dir, f));
  const existing = targets.filter((f) => existsSync(f));
  if (existing.length > 0 && !options.force) throw new UsageError(`${existing[0]} exists (--force to overwrite)`);
  await mkdir(dir, { recursive: true });
  const users: NatsUser[] = [];
  for (const p of processes) {
    const key = createNatsUserKey();
    await writeFile(join(dir, `${p.file}.nk`), `${key.seed}\n`, { mode: 0o600 });
    users.push({ role: p.role, name: p.name, nkey: key.publicKey });
  }
  const header =
    `# Switchyard NATS users for namespace ${names.namespace} (switchyard nats-config).\n` +
    `# Include from the nats-server configuration: include ./auth.conf\n`;
  await writeFile(join(dir, 'auth.conf'), header + natsServerAuthorization(names, users), { mode: 0o600 });
  process.stdout.write(`wrote ${join(dir, 'auth.conf')} and ${processes.length} seed file(s):\n`);
  for (const p of processes)
    process.stdout.write(`  ${p.role.padEnd(8)} ${p.name.padEnd(16)} NATS_NKEY=${join(dir, `${p.file}.nk`)}\n`);
}
