import { InvalidSubjectTokenError } from './errors.ts';

/**
 * Every subject Switchyard uses, built in one place. Names that come from outside (model names such as
 * `org/model.v2`, request ids, node ids) are escaped into a single safe token, so a '.' in a model name
 * never adds a subject level and '*' or '>' never become wildcards.
 */

const ROOT = 'switchyard.v1';

/** Characters kept as they are; everything else (including '_', the escape mark) becomes `_XX` per UTF-8 byte. */
const SAFE = /^[A-Za-z0-9-]$/;

/** Escapes `raw` into one subject token (also a valid KV key and consumer name): [A-Za-z0-9_-]+. Injective. */
export function escapeToken(raw: string): string {
  if (raw.length === 0) throw new InvalidSubjectTokenError('a subject token cannot be empty');
  let out = '';
  for (const ch of raw) {
    if (SAFE.test(ch)) {
      out += ch;
      continue;
    }
    for (const byte of new TextEncoder().encode(ch)) out += `_${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** Inverse of `escapeToken`; throws InvalidSubjectTokenError for a token it could not have produced. */
export function unescapeToken(token: string): string {
  if (!/^(?:[A-Za-z0-9-]|_[0-9A-F]{2})+$/.test(token))
    throw new InvalidSubjectTokenError(`"${token}" is not an escaped subject token`);
  const bytes: number[] = [];
  for (let i = 0; i < token.length;) {
    if (token[i] === '_') {
      bytes.push(Number.parseInt(token.slice(i + 1, i + 3), 16));
      i += 3;
    } else {
      bytes.push(token.charCodeAt(i));
      i += 1;
    }
  }
  return new TextDecoder().decode(new Uint8Array(bytes));
}

/** The subject token of a frontend: its escaped id, or `_` for none (never the output of escapeToken). */
function frontendToken(frontendId: string | undefined): string {
  return frontendId === undefined ? '_' : escapeToken(frontendId);
}

/** The namespace of a cluster that names none: `default`. */
export const DEFAULT_NAMESPACE = 'default';

/** A namespace: 1–32 of a-z, 0-9 and '-', starting with a letter or digit (it becomes part of stream and bucket names). */
const NAMESPACE = /^[a-z0-9][a-z0-9-]{0,31}$/;

/** Checks a namespace; throws InvalidSubjectTokenError naming the rule. */
export function validateNamespace(namespace: string): string {
  if (!NAMESPACE.test(namespace)) {
    throw new InvalidSubjectTokenError(
      `namespace ${JSON.stringify(namespace)} must be 1–32 characters of a-z, 0-9 and '-', starting with a letter or digit`,
    );
  }
  return namespace;
}

/** A fresh namespace for one run of a local cluster (`up`): `run-` and 8 hex digits. */
export function freshNamespace(): string {
  return `run-${Math.floor(Math.random() * 2 ** 32)
    .toString(16)
    .padStart(8, '0')}`;
}

/**
 * Every subject, stream, bucket and consumer name of one cluster namespace. Two clusters on one broker
 * with different namespaces share nothing: their subjects are `switchyard.v1.<namespace>.…`, their streams
 * `SWITCHYARD_REQUESTS_<namespace>` and `SWITCHYARD_KV_EVENTS_<namespace>`, their buckets
 * `switchyard_workers_<namespace>` and `switchyard_placement_<namespace>`. Consumers live inside the
 * namespace's stream, so their names (`engines-<model>`) need no namespace.
 */
export class ClusterNames {
  readonly namespace: string;
  readonly #root: string;
  readonly requestStream: string;
  readonly kvEventStream: string;
  readonly workersBucket: string;
  readonly placementBucket: string;

  constructor(namespace: string = DEFAULT_NAMESPACE) {
    this.namespace = validateNamespace(namespace);
    this.#root = `${ROOT}.${namespace}`;
    this.requestStream = `SWITCHYARD_REQUESTS_${namespace}`;
    this.kvEventStream = `SWITCHYARD_KV_EVENTS_${namespace}`;
    this.workersBucket = `switchyard_workers_${namespace}`;
    this.placementBucket = `switchyard_placement_${namespace}`;
  }

  /** `switchyard.v1.<namespace>`: the prefix of every subject of this cluster. */
  get root(): string {
    return this.#root;
  }

  /**
   * The inbox prefix of the process named `name` (`_INBOX.<namespace>.<name>`): its JetStream answers
   * and pulled messages arrive under it, and NATS permissions let its user subscribe to nothing else there.
   */
  inboxPrefix(name: string): string {
    return `_INBOX.${this.namespace}.${escapeToken(name)}`;
  }

  /** Every request subject (what the request stream captures). */
  get requestSubjects(): string {
    return `${this.#root}.requests.>`;
  }

  /** Core subjects on which every frontend says it is alive, four times a second (`frontend-liveness.ts`). */
  get frontendSubjects(): string {
    return `${this.#root}.frontends.*`;
  }

  /** Where frontend `frontendId` says it is alive. */
  frontendSubject(frontendId: string): string {
    return `${this.#root}.frontends.${escapeToken(frontendId)}`;
  }

  /** The frontend id of a heartbeat subject, or undefined for a subject of another shape. */
  frontendIdOf(subject: string): string | undefined {
    return this.#tail(subject, `${this.#root}.frontends.`);
  }

  /** Every cancel subject (an engine listens to all; a frontend may publish only on its own). */
  get cancelSubjects(): string {
    return `${this.#root}.cancel.*.*`;
  }

  /** Every resend subject (an engine listens to all; a frontend may publish only on its own). */
  get resendSubjects(): string {
    return `${this.#root}.resend.*.*`;
  }

  /** Where a request for `model` is published for any engine (the work queue stream captures it). */
  requestSubject(model: string): string {
    return `${this.#root}.requests.${escapeToken(model)}`;
  }

  /** Where a request for `model` is published for one engine (KV-aware routing chose it). */
  routedRequestSubject(model: string, engineId: string): string {
    return `${this.#root}.requests.${escapeToken(model)}.${escapeToken(engineId)}`;
  }

  /** Core subject on which each engine reports its load (and that it is alive), a few times a second. */
  engineLoadSubject(engineId: string): string {
    return `${this.#root}.engines.load.${escapeToken(engineId)}`;
  }

  get engineLoadSubjects(): string {
    return `${this.#root}.engines.load.*`;
  }

  /** Core subject on which each engine reports its expert load window (`ExpertLoadExchange`), every few seconds. */
  expertLoadSubject(engineId: string): string {
    return `${this.#root}.engines.expert-load.${escapeToken(engineId)}`;
  }

  get expertLoadSubjects(): string {
    return `${this.#root}.engines.expert-load.*`;
  }

  /**
   * Core subject carrying one request's token events, under the frontend that queued it, so that
   * NATS permissions can let a frontend read only its own requests' tokens (`tokens.<frontend>.>`).
   * A request queued by no named frontend uses `_`, which no escaped name can be.
   */
  tokenSubject(frontendId: string | undefined, requestId: string): string {
    return `${this.#root}.tokens.${frontendToken(frontendId)}.${escapeToken(requestId)}`;
  }

  /** Every token subject of one frontend (what its NATS user may subscribe to). */
  frontendTokenSubjects(frontendId: string | undefined): string {
    return `${this.#root}.tokens.${frontendToken(frontendId)}.*`;
  }

  /** Core subject on which frontend `frontendId` asks the serving engine to stop one of its requests. */
  cancelSubject(frontendId: string | undefined, requestId: string): string {
    return `${this.#root}.cancel.${frontendToken(frontendId)}.${escapeToken(requestId)}`;
  }

  /** Core subject on which a frontend asks the serving engine to send a request's events again from an index. */
  resendSubject(frontendId: string | undefined, requestId: string): string {
    return `${this.#root}.resend.${frontendToken(frontendId)}.${escapeToken(requestId)}`;
  }

  /**
   * The frontend (undefined for `_`) and request a cancel or resend subject names, or undefined for a
   * subject of another shape. An engine acts on it only for a request that frontend queued.
   */
  controlOf(subject: string): { frontendId: string | undefined; requestId: string } | undefined {
    for (const kind of ['cancel', 'resend']) {
      const prefix = `${this.#root}.${kind}.`;
      if (!subject.startsWith(prefix)) continue;
      const [frontend, request, ...rest] = subject.slice(prefix.length).split('.');
      if (frontend === undefined || request === undefined || rest.length > 0) return undefined;
      try {
        return {
          frontendId: frontend === '_' ? undefined : unescapeToken(frontend),
          requestId: unescapeToken(request),
        };
      } catch {
        return undefined;
      }
    }
    return undefined;
  }

  /** KV cache events (stored / removed blocks, snapshots) of one engine, kept in the KV event stream. */
  kvEventSubject(engineId: string): string {
    return `${this.#root}.kv.events.${escapeToken(engineId)}`;
  }

  get kvEventSubjects(): string {
    return `${this.#root}.kv.events.>`;
  }

  /** Core subject on which a frontend asks an engine for a snapshot of its KV blocks (after a gap). */
  kvSnapshotSubject(engineId: string): string {
    return `${this.#root}.kv.snapshot.${escapeToken(engineId)}`;
  }

  #tail(subject: string, prefix: string): string | undefined {
    if (!subject.startsWith(prefix)) return undefined;
    try {
      return unescapeToken(subject.slice(prefix.length));
    } catch {
      return undefined;
    }
  }
}
