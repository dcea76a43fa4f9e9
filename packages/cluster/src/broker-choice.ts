import { checkNats, probeNats, type ClusterConnectOptions } from './connect.ts';
import { redactUrl } from './redact-url.ts';

export const LOCAL_NATS_URL = 'nats://127.0.0.1:4222';

export type BrokerChoice =
  | { readonly kind: 'nats'; readonly url: string; readonly source: 'NATS_URL' | 'local' }
  | { readonly kind: 'in-process'; readonly reason: string };

/**
 * Which request queue a single-command start-up (`switchyard up`) uses: the NATS server named by
 * NATS_URL when set — connected with `credentials`, and a failure there is the start-up error
 * (NatsConnectError), never a silent fallback — else a NATS server with JetStream answering at
 * 127.0.0.1:4222, else the in-process queue. The caller reads the environment and prints
 * `describeBrokerChoice(choice)`.
 */
export async function chooseBroker(
  natsUrl: string | undefined,
  options: {
    credentials?: Omit<ClusterConnectOptions, 'url' | 'name' | 'reconnect'>;
    localUrl?: string;
    probeTimeoutMs?: number;
  } = {},
): Promise<BrokerChoice> {
  const probeTimeoutMs = options.probeTimeoutMs ?? 500;
  if (natsUrl !== undefined && natsUrl !== '') {
    await checkNats({ ...options.credentials, url: natsUrl }, Math.max(probeTimeoutMs, 2_000));
    return { kind: 'nats', url: natsUrl, source: 'NATS_URL' };
  }
  const localUrl = options.localUrl ?? LOCAL_NATS_URL;
  if (await probeNats(localUrl, probeTimeoutMs)) return { kind: 'nats', url: localUrl, source: 'local' };
  return { kind: 'in-process', reason: `NATS_URL is not set and no NATS server with JetStream answers at ${localUrl}` };
}

/** One line for start-up output; never contains credentials. */
export function describeBrokerChoice(choice: BrokerChoice): string {
  if (choice.kind === 'in-process') return `request queue: in process (${choice.reason})`;
  return `request queue: NATS JetStream at ${redactUrl(choice.url)} (${choice.source === 'NATS_URL' ? 'from NATS_URL' : 'found locally'})`;
}
