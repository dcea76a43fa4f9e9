import { readFileSync } from 'node:fs';
import {
  connect,
  credsAuthenticator,
  nkeyAuthenticator,
  type Authenticator,
  type NatsConnection,
  type NodeConnectionOptions,
} from '@nats-io/transport-node';
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { ClusterConfigError, NatsConnectError, type NatsConnectFailure } from './errors.ts';
import { redactSecrets, redactUrl, splitUrlCredentials } from './redact-url.ts';
import { ClusterNames } from './subjects.ts';

export interface ClusterTlsOptions {
  readonly caFile?: string;
  readonly certFile?: string;
  readonly keyFile?: string;
}

export interface ClusterConnectOptions {
  /** One server URL or a comma-separated list; may carry `user:pass@` (never printed). */
  readonly url: string;
  /** Client name shown by the server (`gateway-1`, `worker-3`); the namespace is prefixed to it. */
  readonly name: string;
  /**
   * The cluster's namespace (default `default`): every subject, stream and bucket this connection uses
   * carries it, so clusters with different namespaces on one broker never see each other's messages.
   */
  readonly namespace?: string;
  readonly user?: string;
  readonly pass?: string;
  readonly token?: string;
  /** A `.creds` file (user JWT and NKey seed, from `nsc`): operator-mode authentication. */
  readonly credsFile?: string;
  /** A file holding a user NKey seed (`SU…`): NKey authentication against a server listing the public key. */
  readonly nkeySeedFile?: string;
  readonly tls?: ClusterTlsOptions;
  /** Deadline of the first connection (default 5 s). */
  readonly connectTimeoutMs?: number;
  /**
   * After a lost connection: up to `maxAttempts` attempts, `waitMs` apart, then the connection closes
   * for good and `closed()` resolves (default 120 × 1 s: a broker restart is survived, a dead one is not).
   */
  readonly reconnect?: { readonly maxAttempts: number; readonly waitMs: number };
  /** Deadline of each JetStream API call (default 5 s). */
  readonly requestTimeoutMs?: number;
}

export type ConnectionState = 'connected' | 'reconnecting' | 'closed';

/**
 * One NATS connection with its JetStream and KV handles. Built by `ClusterConnection.open`, so none
 * exists before the server accepted it; `close` drains (flushes pending publishes and acks) within a
 * deadline. `state` follows the connection: reconnecting while the broker is away, closed after the
 * reconnect attempts run out or `close`.
 */
export class ClusterConnection {
  readonly nc: NatsConnection;
  readonly js: JetStreamClient;
  readonly jsm: JetStreamManager;
  readonly kvm: Kvm;
  /** Subject, stream and bucket names of this connection's namespace. */
  readonly names: ClusterNames;
  /** The server URL without credentials. */
  readonly url: string;
  readonly requestTimeoutMs: number;
  #state: ConnectionState = 'connected';
  readonly #listeners = new Set<(state: ConnectionState) => void>();
  readonly #closed: Promise<Error | undefined>;

  private constructor(
    nc: NatsConnection,
    jsm: JetStreamManager,
    url: string,
    requestTimeoutMs: number,
    names: ClusterNames,
  ) {
    this.nc = nc;
    this.names = names;
    this.jsm = jsm;
    this.js = jetstream(nc, { timeout: requestTimeoutMs });
    this.kvm = new Kvm(this.js);
    this.url = url;
    this.requestTimeoutMs = requestTimeoutMs;
    this.#closed = nc.closed().then((error) => {
      this.#setState('closed');
      return error ?? undefined;
    });
    void this.#followStatus();
  }

  static async open(options: ClusterConnectOptions): Promise<ClusterConnection> {
    const url = redactUrl(options.url);
    let names: ClusterNames;
    try {
      names = new ClusterNames(options.namespace);
    } catch (error) {
      throw new ClusterConfigError(error instanceof Error ? error.message : String(error));
    }
    const requestTimeoutMs = options.requestTimeoutMs ?? 5_000;
    const reconnect = options.reconnect ?? { maxAttempts: 120, waitMs: 1_000 };
    if (!Number.isInteger(reconnect.maxAttempts) || reconnect.maxAttempts < 0) {
      throw new ClusterConfigError(
        `reconnect.maxAttempts must be a non-negative integer, got ${reconnect.maxAttempts}`,
      );
    }
    const fromUrl = splitUrlCredentials(options.url);
    const user = options.user ?? fromUrl.user;
    const pass = options.pass ?? fromUrl.pass;
    const token = options.token ?? fromUrl.token;
    const authenticator = authenticatorOf(options);
    const natsOptions: NodeConnectionOptions = {
      servers: [...fromUrl.servers],
      name: `${names.namespace}/${options.name}`,
      // Replies (JetStream API answers, pulled messages) come to this process's own inbox subjects, so
      // NATS permissions can let each user read only its own (docs/architecture.md, "NATS permissions").
      inboxPrefix: names.inboxPrefix(options.name),
      ...(authenticator ? { authenticator } : {}),
      timeout: options.connectTimeoutMs ?? 5_000,
      reconnect: reconnect.maxAttempts > 0,
      maxReconnectAttempts: reconnect.maxAttempts,
      reconnectTimeWait: reconnect.waitMs,
      ...(user !== undefined ? { user } : {}),
      ...(pass !== undefined ? { pass } : {}),
      ...(token !== undefined ? { token } : {}),
      ...(options.tls ? { tls: { ...options.tls } } : {}),
    };
    const secrets = [pass, token, options.pass, options.token];
    let nc: NatsConnection;
    try {
      nc = await connect(natsOptions);
    } catch (error) {
      throw toConnectError(error, url, secrets);
    }
    try {
      const jsm = await jetstreamManager(nc, { timeout: requestTimeoutMs });
      return new ClusterConnection(nc, jsm, url, requestTimeoutMs, names);
    } catch (error) {
      await nc.close();
      const detail = redactSecrets(error instanceof Error ? error.message : String(error), secrets);
      throw new NatsConnectError(
        'no_jetstream',
        url,
        `NATS at ${url} has no usable JetStream (start nats-server with -js): ${detail}`,
      );
    }
  }

  get state(): ConnectionState {
    return this.#state;
  }

  get isConnected(): boolean {
    return this.#state === 'connected';
  }

  /** Calls `listener` on every state change; returns the function that removes it. */
  onStateChange(listener: (state: ConnectionState) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Resolves when the connection has closed for good (with the error that closed it, if any). */
  closed(): Promise<Error | undefined> {
    return this.#closed;
  }

  /** Drains (flushing pending publishes and acks) within deadlineMs, then closes regardless. */
  async close(deadlineMs = 5_000): Promise<void> {
    if (this.nc.isClosed()) return;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), deadlineMs)));
    try {
      const drained = this.nc.isDraining() ? this.nc.closed() : this.nc.drain();
      await Promise.race([drained.catch(() => undefined), timeout]);
    } finally {
      clearTimeout(timer);
      if (!this.nc.isClosed()) await this.nc.close();
    }
  }

  async #followStatus(): Promise<void> {
    for await (const status of this.nc.status()) {
      if (status.type === 'disconnect' || status.type === 'reconnecting') this.#setState('reconnecting');
      else if (status.type === 'reconnect') this.#setState('connected');
    }
  }

  #setState(state: ConnectionState): void {
    if (this.#state === state || this.#state === 'closed') return;
    this.#state = state;
    for (const listener of this.#listeners) listener(state);
  }
}

/**
 * Connects and closes again: resolves when a NATS server with JetStream accepts `options` within
 * timeoutMs, rejects with the NatsConnectError otherwise (auth, unreachable, no JetStream).
 */
export async function checkNats(
  options: Omit<ClusterConnectOptions, 'name' | 'reconnect'>,
  timeoutMs = 1_000,
): Promise<void> {
  const conn = await ClusterConnection.open({
    ...options,
    name: 'switchyard-probe',
    connectTimeoutMs: timeoutMs,
    reconnect: { maxAttempts: 0, waitMs: 0 },
    requestTimeoutMs: timeoutMs,
  });
  await conn.close(timeoutMs);
}

/** True when a NATS server with JetStream accepts a connection at `url` within timeoutMs. */
export async function probeNats(url: string, timeoutMs = 1_000): Promise<boolean> {
  try {
    await checkNats({ url }, timeoutMs);
    return true;
  } catch {
    return false;
  }
}

function toConnectError(error: unknown, url: string, secrets: readonly (string | undefined)[]): NatsConnectError {
  const e = error instanceof Error ? error : new Error(String(error));
  const detail = redactSecrets(e.message, secrets);
  const reason = classify(e);
  const text: Record<NatsConnectFailure, string> = {
    auth: `NATS at ${url} rejected the credentials (${detail}); check the user/password or token`,
    unreachable: `cannot reach NATS at ${url} (${detail}); is nats-server running there?`,
    tls: `TLS handshake with NATS at ${url} failed (${detail}); check the CA, certificate and key files`,
    no_jetstream: `NATS at ${url} has no JetStream (${detail})`,
    other: `cannot connect to NATS at ${url}: ${detail}`,
  };
  // NOTE: the nats.js error is not kept as `cause`: it may hold the connection options, secrets included.
  return new NatsConnectError(reason, url, text[reason]);
}

function classify(error: Error): NatsConnectFailure {
  const code = (error.cause as { code?: unknown } | undefined)?.code ?? (error as { code?: unknown }).code;
  if (error.name === 'AuthorizationError' || /authori[sz]ation|authentication/i.test(error.message)) return 'auth';
  if (/tls|ssl|certificate/i.test(error.message) || (typeof code === 'string' && /CERT|TLS|SSL/.test(code)))
    return 'tls';
  if (
    error.name === 'ConnectionError' ||
    error.name === 'TimeoutError' ||
    code === 'ECONNREFUSED' ||
    code === 'ENOTFOUND' ||
    code === 'EHOSTUNREACH'
  ) {
    return 'unreachable';
  }
  return 'other';
}

/** The authenticator of a `.creds` file or an NKey seed file, read now; a file that cannot be read is a config error. */
function authenticatorOf(options: ClusterConnectOptions): Authenticator | undefined {
  const read = (file: string, what: string): Uint8Array => {
    try {
      return readFileSync(file);
    } catch (error) {
      throw new ClusterConfigError(`cannot read the NATS ${what} file ${file}: ${(error as Error).message}`);
    }
  };
  if (options.credsFile !== undefined && options.nkeySeedFile !== undefined)
    throw new ClusterConfigError('give NATS a .creds file or an NKey seed file, not both');
  if (options.credsFile !== undefined) return credsAuthenticator(read(options.credsFile, '.creds'));
  if (options.nkeySeedFile !== undefined) {
    const seed = new TextDecoder().decode(read(options.nkeySeedFile, 'NKey seed')).trim();
    if (!/^SU[A-Z2-7]{56}$/.test(seed))
      throw new ClusterConfigError(`the NATS NKey seed file ${options.nkeySeedFile} does not hold a user seed (SU…)`);
    return nkeyAuthenticator(new TextEncoder().encode(seed));
  }
  return undefined;
}

/**
 * NATS authentication and TLS from the environment, the same for every process: NATS_CREDS (a .creds
 * file), NATS_NKEY (a file holding a user NKey seed), NATS_USER + NATS_PASSWORD, NATS_TOKEN; TLS files
 * NATS_TLS_CA, NATS_TLS_CERT, NATS_TLS_KEY.
 */
export function natsAuthFromEnv(
  env: Readonly<Record<string, string | undefined>>,
): Pick<ClusterConnectOptions, 'user' | 'pass' | 'token' | 'credsFile' | 'nkeySeedFile' | 'tls'> {
  const out: {
    user?: string;
    pass?: string;
    token?: string;
    credsFile?: string;
    nkeySeedFile?: string;
    tls?: ClusterTlsOptions;
  } = {};
  const tls: { caFile?: string; certFile?: string; keyFile?: string } = {};
  const take = (name: string, put: (value: string) => void) => {
    const value = env[name];
    if (value !== undefined && value !== '') put(value);
  };
  take('NATS_USER', (v) => (out.user = v));
  take('NATS_PASSWORD', (v) => (out.pass = v));
  take('NATS_TOKEN', (v) => (out.token = v));
  take('NATS_CREDS', (v) => (out.credsFile = v));
  take('NATS_NKEY', (v) => (out.nkeySeedFile = v));
  take('NATS_TLS_CA', (v) => (tls.caFile = v));
  take('NATS_TLS_CERT', (v) => (tls.certFile = v));
  take('NATS_TLS_KEY', (v) => (tls.keyFile = v));
  if (Object.keys(tls).length > 0) out.tls = tls;
  return out;
}
