import type { Subscription } from '@nats-io/transport-node';
import type { ClusterConnection } from './connect.ts';
import { InvalidMessageError } from './errors.ts';
import { parseJsonObject, readBoolean, readNumber, readOptionalString, readString } from './json-shape.ts';

/**
 * What a KV holder does: `both` (the default) takes requests and prefills them; `decode` takes requests
 * but has their prompts prefilled by a `prefill` engine; `prefill` only computes prompts for decode
 * engines; `store` is a page store (no engine: it only serves pages).
 */
export type EngineRole = 'both' | 'prefill' | 'decode' | 'store';
export const ENGINE_ROLES: readonly EngineRole[] = ['both', 'prefill', 'decode', 'store'];

/** A page store reports this model name: it serves pages of every model (the hashes name the model). */
export const ANY_MODEL = '*';

/** What an engine reports of itself a few times a second: that it is alive, and how busy it is. */
export interface EngineLoad {
  readonly engineId: string;
  readonly model: string;
  readonly numRunning: number;
  readonly numWaiting: number;
  readonly maxRunning: number;
  /** Fraction of KV blocks in use, 0–1. */
  readonly kvUsage: number;
  /** Prompt tokens waiting for prefill (absent in reports of older releases). */
  readonly numPrefillTokens?: number;
  /** True in the last report of an engine that is stopping. */
  readonly leaving: boolean;
  /** Absent in reports of older releases: `both`. */
  readonly role?: EngineRole;
  /** host:port of its KvPageService, when it serves pages to peers. */
  readonly kvAddress?: string;
  /** host:port of its KV bulk data plane (page fetches over plain TCP), when it serves one. */
  readonly kvDataAddress?: string;
}

/** The role of a report (`both` when it says none). */
export function roleOf(load: EngineLoad): EngineRole {
  return load.role ?? 'both';
}

/** True for an engine a frontend may send a new request to. */
export function takesRequests(load: EngineLoad): boolean {
  const role = roleOf(load);
  return role === 'both' || role === 'decode';
}

export function encodeEngineLoad(load: EngineLoad): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(load));
}

export function decodeEngineLoad(data: Uint8Array | string): EngineLoad {
  const o = parseJsonObject(data, 'the engine load report');
  return {
    engineId: readString(o, 'engineId', { nonEmpty: true }),
    model: readString(o, 'model', { nonEmpty: true }),
    numRunning: readNumber(o, 'numRunning', { integer: true, min: 0 }),
    numWaiting: readNumber(o, 'numWaiting', { integer: true, min: 0 }),
    maxRunning: readNumber(o, 'maxRunning', { integer: true, min: 1 }),
    kvUsage: readNumber(o, 'kvUsage', { min: 0 }),
    ...(o['numPrefillTokens'] !== undefined
      ? { numPrefillTokens: readNumber(o, 'numPrefillTokens', { integer: true, min: 0 }) }
      : {}),
    leaving: readBoolean(o, 'leaving'),
    ...roleField(readOptionalString(o, 'role')),
    ...addressField('kvAddress', readOptionalString(o, 'kvAddress')),
    ...addressField('kvDataAddress', readOptionalString(o, 'kvDataAddress')),
  };
}

function roleField(role: string | undefined): { role?: EngineRole } {
  if (role === undefined) return {};
  const known = ENGINE_ROLES.find((r) => r === role);
  if (known === undefined) throw new InvalidMessageError(`role must be one of ${ENGINE_ROLES.join(', ')}`);
  return { role: known };
}

/** An optional host:port field (absent when empty). */
function addressField<K extends 'kvAddress' | 'kvDataAddress'>(
  key: K,
  address: string | undefined,
): { [P in K]?: string } {
  if (address === undefined || address === '') return {};
  if (!/^[\w.-]+:\d{1,5}$|^\[[0-9a-fA-F:]+\]:\d{1,5}$/.test(address))
    throw new InvalidMessageError(`${key} must be host:port`);
  return { [key]: address } as { [P in K]?: string };
}

/** Publishes an engine's load every `intervalMs` on a core subject (not kept: a report is stale in a second). */
export class EngineLoadReporter {
  readonly #conn: ClusterConnection;
  readonly #load: () => Omit<EngineLoad, 'leaving'>;
  readonly #timer: NodeJS.Timeout;

  constructor(conn: ClusterConnection, load: () => Omit<EngineLoad, 'leaving'>, intervalMs: number) {
    this.#conn = conn;
    this.#load = load;
    this.#timer = setInterval(() => this.#publish(false), intervalMs);
    this.#publish(false);
  }

  /** Stops reporting; the last report says the engine is leaving, so frontends stop routing to it at once. */
  stop(): void {
    clearInterval(this.#timer);
    this.#publish(true);
  }

  #publish(leaving: boolean): void {
    const load = this.#load();
    if (!this.#conn.isConnected) return;
    this.#conn.nc.publish(this.#conn.names.engineLoadSubject(load.engineId), encodeEngineLoad({ ...load, leaving }));
  }
}

export interface EngineLoadsOptions {
  readonly model: string;
  /** An engine not heard from for this long is taken as gone. */
  readonly ttlMs: number;
  /** Told once when an engine is taken as gone (silent past the TTL, or said it is leaving). */
  readonly onGone?: (engineId: string) => void;
  readonly now?: () => number;
}

/**
 * A frontend's view of the engines of its model: the last load report of each, and which are alive.
 * Invariant: `#seen` holds only engines heard from within the TTL that have not said they are leaving;
 * `onGone` is called once for each engine that leaves it.
 */
export class EngineLoads {
  readonly #opts: EngineLoadsOptions;
  readonly #seen = new Map<string, { load: EngineLoad; atMs: number }>();
  readonly #subscription: Subscription;
  readonly #sweep: NodeJS.Timeout;

  constructor(conn: ClusterConnection, options: EngineLoadsOptions) {
    this.#opts = options;
    this.#subscription = conn.nc.subscribe(conn.names.engineLoadSubjects, {
      callback: (error, msg) => {
        if (error) return;
        try {
          this.observe(decodeEngineLoad(msg.data));
        } catch {
          // A malformed report is ignored: the engine's next report (or its silence) decides.
        }
      },
    });
    this.#sweep = setInterval(() => this.#expire(), Math.max(50, Math.floor(options.ttlMs / 4)));
    this.#sweep.unref();
  }

  /** Records a report (the subscription calls this; tests may too). */
  observe(load: EngineLoad): void {
    if (load.model !== this.#opts.model && !(load.model === ANY_MODEL && roleOf(load) === 'store')) return;
    if (load.leaving) {
      if (this.#seen.delete(load.engineId)) this.#opts.onGone?.(load.engineId);
      return;
    }
    this.#seen.set(load.engineId, { load, atMs: this.#now() });
  }

  /** The engines alive now that take new requests (roles `both` and `decode`), in engine id order. */
  routable(): EngineLoad[] {
    return this.live().filter(takesRequests);
  }

  /** The last report of a live holder (engine or page store), if any. */
  get(engineId: string): EngineLoad | undefined {
    this.#expire();
    return this.#seen.get(engineId)?.load;
  }

  /** When (this process's clock, ms) the last report of a live holder arrived. */
  reportedAtMs(engineId: string): number | undefined {
    return this.#seen.get(engineId)?.atMs;
  }

  /** Every holder alive now (engines of any role, and page stores), with their last reports, in id order. */
  live(): EngineLoad[] {
    this.#expire();
    return [...this.#seen.values()].map((s) => s.load).sort((a, b) => a.engineId.localeCompare(b.engineId));
  }

  stop(): void {
    clearInterval(this.#sweep);
    this.#subscription.unsubscribe();
  }

  #expire(): void {
    const now = this.#now();
    for (const [engineId, seen] of this.#seen) {
      if (now - seen.atMs <= this.#opts.ttlMs) continue;
      this.#seen.delete(engineId);
      this.#opts.onGone?.(engineId);
    }
  }

  #now(): number {
    return (this.#opts.now ?? Date.now)();
  }
}
