import { JetStreamApiCodes, JetStreamApiError } from '@nats-io/jetstream';
import type { KV, KvEntry } from '@nats-io/kv';
import type { Placement } from '@switchyard/routing';
import type { ClusterConnection } from './connect.ts';
import { ClusterStoreError, InvalidMessageError, StalePlacementError } from './errors.ts';
import { parseJsonObject, readNumber, readStringArray } from './json-shape.ts';
import { Snapshots, type Watch } from './snapshots.ts';
import { escapeToken } from './subjects.ts';

/** A placement as stored: the KV revision is the compare-and-set token for the next update. */
export interface StoredPlacement {
  readonly model: string;
  readonly placement: Placement;
  readonly kvRevision: number;
}

export type PlacementWrite =
  | { readonly ok: true; readonly stored: StoredPlacement }
  | { readonly ok: false; readonly reason: 'conflict'; readonly current: StoredPlacement | undefined };

/**
 * The current expert placement per model, in the KV bucket `switchyard_placement_<namespace>` (key = escaped model
 * name, value = Placement JSON). Writes are compare-and-set: `proposeInitial` creates the key only if it
 * is absent, `update` replaces it only if it is still at the revision the caller read — so when several
 * gateways compute a placement at once, exactly one wins and the others get `{ ok: false }` with the
 * winner's placement. A placement's own `revision` must grow with every update.
 */
export class PlacementStore {
  readonly #kv: KV;

  private constructor(kv: KV) {
    this.#kv = kv;
  }

  static async open(conn: ClusterConnection, options: { history?: number } = {}): Promise<PlacementStore> {
    try {
      return new PlacementStore(await conn.kvm.create(conn.names.placementBucket, { history: options.history ?? 5 }));
    } catch (error) {
      throw new ClusterStoreError(
        `could not open KV bucket ${conn.names.placementBucket} on NATS at ${conn.url}: ${String(error)}`,
        { cause: error },
      );
    }
  }

  async get(model: string): Promise<StoredPlacement | undefined> {
    const entry = await this.#kv.get(escapeToken(model));
    return entry && entry.operation === 'PUT' ? toStored(model, entry) : undefined;
  }

  /** Stores the first placement of `model`; loses (ok: false) when one exists already. */
  async proposeInitial(model: string, placement: Placement): Promise<PlacementWrite> {
    try {
      const kvRevision = await this.#kv.create(escapeToken(model), JSON.stringify(placement));
      return { ok: true, stored: { model, placement, kvRevision } };
    } catch (error) {
      if (!isConflict(error)) throw storeError(`create the placement of ${model}`, error);
      return { ok: false, reason: 'conflict', current: await this.get(model) };
    }
  }

  /** Replaces `expected` by `next`; loses (ok: false) when someone else updated it since `expected` was read. */
  async update(next: Placement, expected: StoredPlacement): Promise<PlacementWrite> {
    const { model } = expected;
    if (next.revision <= expected.placement.revision) {
      throw new StalePlacementError(
        `a new placement of ${model} needs a revision above ${expected.placement.revision}, got ${next.revision}`,
      );
    }
    try {
      const kvRevision = await this.#kv.update(escapeToken(model), JSON.stringify(next), expected.kvRevision);
      return { ok: true, stored: { model, placement: next, kvRevision } };
    } catch (error) {
      if (!isConflict(error)) throw storeError(`update the placement of ${model}`, error);
      return { ok: false, reason: 'conflict', current: await this.get(model) };
    }
  }

  /** The placement of `model` as it changes (the first value is the current one, if any). */
  async watch(model: string): Promise<Watch<StoredPlacement>> {
    const snapshots = new Snapshots<StoredPlacement>();
    const entries = await this.#kv.watch({ key: escapeToken(model) });
    const following = (async () => {
      for await (const entry of entries) {
        if (entry.operation !== 'PUT') continue;
        try {
          snapshots.push(toStored(model, entry));
        } catch {
          // NOTE: a malformed placement is skipped; gateways keep the last valid one.
        }
      }
    })().finally(() => snapshots.close());
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

function toStored(model: string, entry: KvEntry): StoredPlacement {
  return { model, placement: decodePlacement(entry.value), kvRevision: entry.revision };
}

export function decodePlacement(data: Uint8Array | string): Placement {
  const o = parseJsonObject(data, 'the placement');
  const numLayers = readNumber(o, 'numLayers', { integer: true, min: 1 });
  const numExperts = readNumber(o, 'numExperts', { integer: true, min: 1 });
  const workers = readStringArray(o, 'workers');
  const replicas = o['replicas'];
  const isIndexList = (x: unknown): boolean =>
    Array.isArray(x) && x.every((w) => Number.isInteger(w) && (w as number) >= 0 && (w as number) < workers.length);
  const isLayer = (x: unknown): boolean => Array.isArray(x) && x.length === numExperts && x.every(isIndexList);
  if (!Array.isArray(replicas) || replicas.length !== numLayers || !replicas.every(isLayer)) {
    throw new InvalidMessageError(
      `replicas must be [${numLayers} layers][${numExperts} experts][worker indices < ${workers.length}]`,
    );
  }
  return Object.freeze({
    revision: readNumber(o, 'revision', { integer: true, min: 0 }),
    numLayers,
    numExperts,
    workers: Object.freeze(workers),
    replicas: replicas as Placement['replicas'],
  });
}

/** JetStream's "wrong last sequence": the compare-and-set lost. */
function isConflict(error: unknown): boolean {
  if (!(error instanceof JetStreamApiError)) return false;
  return (
    error.code === JetStreamApiCodes.StreamWrongLastSequence ||
    error.code === JetStreamApiCodes.StreamWrongLastSequenceUnknown
  );
}

function storeError(what: string, error: unknown): ClusterStoreError {
  return new ClusterStoreError(`could not ${what}: ${error instanceof Error ? error.message : String(error)}`, {
    cause: error,
  });
}
