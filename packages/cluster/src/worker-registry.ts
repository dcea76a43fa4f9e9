import type { KV, KvEntry } from '@nats-io/kv';
import type { ClusterConnection } from './connect.ts';
import { ClusterStoreError, InvalidMessageError } from './errors.ts';
import { asObject, parseJsonObject, readNumber, readOptionalString, readString } from './json-shape.ts';
import { Snapshots, type Watch } from './snapshots.ts';
import { escapeToken } from './subjects.ts';

export interface WorkerLoad {
  /** Expert batches (or requests) in progress on the worker. */
  readonly numInFlight: number;
  /** Recent throughput, if the worker measures it. */
  readonly tokensPerSecond?: number;
}

/** What an expert worker tells the cluster about itself. Plain data; the KV value is its JSON. */
export interface WorkerRecord {
  readonly id: string;
  /** host:port of its gRPC ExpertService. */
  readonly address: string;
  readonly model: string;
  /** SHA-256 (hex) of its model's weights, when it knows it. */
  readonly weightsDigest?: string;
  /** (layer, expert) pairs it has loaded. */
  readonly experts: readonly (readonly [number, number])[];
  /** onnxruntime execution provider, e.g. `cpu` or `cuda`. */
  readonly executionProvider: string;
  readonly load: WorkerLoad;
}

export type LiveWorkers = ReadonlyMap<string, WorkerRecord>;

/**
 * Registered expert workers in the KV bucket `switchyard_workers_<namespace>`. The bucket has a TTL (max age): a
 * worker that stops heartbeating is gone from the bucket within the TTL. nats-server 2.9 writes no
 * delete marker when a value ages out, so `watch` also expires entries itself, `ttlMs` after it last
 * heard from each worker.
 */
export class WorkerRegistry {
  /** The bucket's TTL (that of whoever created it first). */
  readonly ttlMs: number;
  readonly #kv: KV;

  private constructor(kv: KV, ttlMs: number) {
    this.#kv = kv;
    this.ttlMs = ttlMs;
  }

  static async open(conn: ClusterConnection, options: { ttlMs?: number } = {}): Promise<WorkerRegistry> {
    try {
      const kv = await conn.kvm.create(conn.names.workersBucket, { ttl: options.ttlMs ?? 15_000, history: 1 });
      const status = await kv.status();
      return new WorkerRegistry(kv, status.ttl);
    } catch (error) {
      throw new ClusterStoreError(
        `could not open KV bucket ${conn.names.workersBucket} on NATS at ${conn.url}: ${String(error)}`,
        { cause: error },
      );
    }
  }

  /** Adds or refreshes a worker (heartbeat is the same put: it restarts the TTL). */
  async register(worker: WorkerRecord): Promise<void> {
    await this.#kv.put(escapeToken(worker.id), JSON.stringify(worker));
  }

  heartbeat(worker: WorkerRecord): Promise<void> {
    return this.register(worker);
  }

  /** Removes a worker at once (a clean shutdown), rather than after the TTL. */
  async deregister(workerId: string): Promise<void> {
    await this.#kv.delete(escapeToken(workerId));
  }

  /** The workers registered now. */
  async list(): Promise<WorkerRecord[]> {
    const workers: WorkerRecord[] = [];
    for await (const key of await this.#kv.keys()) {
      const entry = await this.#kv.get(key);
      const worker = entry && entry.operation === 'PUT' ? parseWorker(entry) : undefined;
      if (worker) workers.push(worker);
    }
    return workers;
  }

  /**
   * Re-registers `worker()` every intervalMs (default a third of the TTL) until `stop`, which
   * deregisters. A failed heartbeat is reported and retried on the next tick.
   */
  keepAlive(
    worker: () => WorkerRecord,
    options: { intervalMs?: number; onError?: (error: Error) => void } = {},
  ): { stop(): Promise<void> } {
    const intervalMs = options.intervalMs ?? Math.max(1, Math.floor(this.ttlMs / 3));
    let id = worker().id;
    const beat = (): void => {
      const record = worker();
      id = record.id;
      this.heartbeat(record).catch((error: unknown) =>
        options.onError?.(error instanceof Error ? error : new Error(String(error))),
      );
    };
    const timer = setInterval(beat, intervalMs);
    return {
      stop: async () => {
        clearInterval(timer);
        await this.deregister(id);
      },
    };
  }

  /** The live set of workers, as it changes (a worker silent for the TTL leaves it). */
  async watch(): Promise<Watch<LiveWorkers>> {
    const live = new Map<string, { worker: WorkerRecord; expiresAtMs: number }>();
    const snapshots = new Snapshots<LiveWorkers>();
    const publish = (): void => snapshots.push(new Map([...live].map(([key, v]) => [key, v.worker])));
    const entries = await this.#kv.watch();
    let initialised = false;
    const expire = setInterval(
      () => {
        const nowMs = Date.now();
        let changed = false;
        for (const [key, v] of live) {
          if (v.expiresAtMs > nowMs) continue;
          live.delete(key);
          changed = true;
        }
        if (changed) publish();
      },
      Math.max(50, Math.min(1_000, Math.floor(this.ttlMs / 4))),
    ).unref();
    const follow = async (): Promise<void> => {
      for await (const entry of entries) {
        const worker = entry.operation === 'PUT' ? parseWorker(entry) : undefined;
        if (worker) {
          // NOTE: the server's write time, not the arrival: a watch started late must not extend a
          // dead worker's life. A server clock ahead of ours is capped at now.
          const heardMs = Math.min(Date.now(), entry.created.getTime());
          live.set(entry.key, { worker, expiresAtMs: heardMs + this.ttlMs });
        } else {
          live.delete(entry.key);
        }
        if (entry.isUpdate) initialised = true;
        if (initialised || entry.delta === 0) publish();
      }
    };
    const following = follow().finally(() => {
      clearInterval(expire);
      snapshots.close();
    });
    // An empty bucket yields no initial entry: start from the empty set.
    if ((await this.#kv.status()).values === 0) publish();
    return {
      get current() {
        return snapshots.current;
      },
      [Symbol.asyncIterator]: () => snapshots[Symbol.asyncIterator](),
      stop: async () => {
        entries.stop();
        await following;
      },
    };
  }
}

function parseWorker(entry: KvEntry): WorkerRecord | undefined {
  try {
    return decodeWorker(entry.value);
  } catch {
    return undefined; // NOTE: a malformed registration is ignored, as if the worker were absent.
  }
}

export function decodeWorker(data: Uint8Array | string): WorkerRecord {
  const o = parseJsonObject(data, 'the worker record');
  const experts = o['experts'];
  if (
    !Array.isArray(experts) ||
    !experts.every(
      (p) => Array.isArray(p) && p.length === 2 && p.every((x) => Number.isInteger(x) && (x as number) >= 0),
    )
  ) {
    throw new InvalidMessageError('experts must be an array of [layer, expert] integer pairs');
  }
  const load = asObject(o['load'], 'load');
  const weightsDigest = readOptionalString(o, 'weightsDigest');
  const tokensPerSecond =
    load['tokensPerSecond'] === undefined ? undefined : readNumber(load, 'tokensPerSecond', { min: 0 });
  return Object.freeze({
    id: readString(o, 'id', { nonEmpty: true }),
    address: readString(o, 'address', { nonEmpty: true }),
    model: readString(o, 'model', { nonEmpty: true }),
    ...(weightsDigest !== undefined ? { weightsDigest } : {}),
    experts: Object.freeze(experts.map((p) => Object.freeze([p[0], p[1]] as const))),
    executionProvider: readString(o, 'executionProvider', { nonEmpty: true }),
    load: Object.freeze({
      numInFlight: readNumber(load, 'numInFlight', { integer: true, min: 0 }),
      ...(tokensPerSecond !== undefined ? { tokensPerSecond } : {}),
    }),
  });
}
