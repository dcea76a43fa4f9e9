import { Command } from 'commander';
import { action, UsageError } from '../user-error.ts';

interface RebalanceOptions {
  url: string;
  force: boolean;
  apiKey?: string;
  json: boolean;
}

interface RebalanceResult {
  readonly switched: boolean;
  readonly revision: number;
  readonly before: number;
  readonly after: number;
  readonly reason?: string;
}

/**
 * `switchyard rebalance`: asks a gateway started with `--placement eplb` over `--workers` to re-place its
 * experts now, from the loads it routed over its window (`POST /v1/switchyard/rebalance`); the other
 * gateways of the cluster follow through the placement store.
 */
export function rebalanceCommand(): Command {
  return new Command('rebalance')
    .description(
      'ask a gateway (--placement eplb over --workers) to re-place its experts now from the loads it routed; ' +
        'the others follow through the placement store',
    )
    .option('--url <url>', 'the gateway', 'http://127.0.0.1:8000')
    .option('--force', 'put the new placement in force whatever it gains (default: only past the threshold)', false)
    .option('--api-key <key>', 'the gateway’s API key (default: SWITCHYARD_API_KEY)')
    .option('--json', 'print the result as JSON', false)
    .action(action(async (options: RebalanceOptions) => rebalance(options)));
}

async function rebalance(options: RebalanceOptions): Promise<void> {
  let base: URL;
  try {
    base = new URL(options.url);
  } catch {
    throw new UsageError(`--url ${options.url} is not a URL`);
  }
  const key = options.apiKey ?? process.env['SWITCHYARD_API_KEY'];
  const url = new URL(`/v1/switchyard/rebalance?force=${options.force}`, base);
  let res: Response;
  try {
    res = await fetch(url, { method: 'POST', headers: key ? { authorization: `Bearer ${key}` } : {} });
  } catch (error) {
    throw new UsageError(`no gateway answered at ${base.origin}: ${(error as Error).message}`);
  }
  const body = (await res.json().catch(() => ({}))) as RebalanceResult & { error?: { message?: string } };
  if (!res.ok) throw new UsageError(`${base.origin} answered ${res.status}: ${body.error?.message ?? 'no message'}`);
  if (options.json) {
    process.stdout.write(`${JSON.stringify(body)}\n`);
    return;
  }
  const balance = `predicted balancedness ${body.before.toFixed(3)} → ${body.after.toFixed(3)}`;
  process.stdout.write(
    body.switched
      ? `re-placed: revision ${body.revision} in force, ${balance}\n`
      : `not re-placed (revision ${body.revision} stays): ${body.reason ?? 'no reason given'}; ${balance}\n`,
  );
}
