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

export const REQUEST_SUBJECTS = `${ROOT}.requests.>`;
/** Core subjects on which every frontend says it is alive, twice a second (`frontend-liveness.ts`). */
export const FRONTEND_SUBJECTS = `${ROOT}.frontends.*`;

/** Where frontend `frontendId` says it is alive. */
export function frontendSubject(frontendId: string): string {
  return `${ROOT}.frontends.${escapeToken(frontendId)}`;
}
export const CANCEL_SUBJECTS = `${ROOT}.cancel.*`;
export const RESEND_SUBJECTS = `${ROOT}.resend.*`;

/** Where a request for `model` is published for any engine (the work queue stream captures it). */
export function requestSubject(model: string): string {
  return `${ROOT}.requests.${escapeToken(model)}`;
}

/** Where a request for `model` is published for one engine (KV-aware routing chose it). */
export function routedRequestSubject(model: string, engineId: string): string {
  return `${ROOT}.requests.${escapeToken(model)}.${escapeToken(engineId)}`;
}

/** Core subject on which each engine reports its load (and that it is alive), a few times a second. */
export function engineLoadSubject(engineId: string): string {
  return `${ROOT}.engines.load.${escapeToken(engineId)}`;
}

export const ENGINE_LOAD_SUBJECTS = `${ROOT}.engines.load.*`;

/** Core subject carrying one request's token events. */
export function tokenSubject(requestId: string): string {
  return `${ROOT}.tokens.${escapeToken(requestId)}`;
}

/** Core subject on which a frontend asks the serving engine to stop a request. */
export function cancelSubject(requestId: string): string {
  return `${ROOT}.cancel.${escapeToken(requestId)}`;
}

/** Core subject on which a frontend asks the serving engine to send a request's events again from an index. */
export function resendSubject(requestId: string): string {
  return `${ROOT}.resend.${escapeToken(requestId)}`;
}

/** The request id a cancel or resend subject names, or undefined for a subject of another shape. */
export function requestIdOfControl(subject: string): string | undefined {
  const prefix = [`${ROOT}.cancel.`, `${ROOT}.resend.`].find((p) => subject.startsWith(p));
  if (prefix === undefined) return undefined;
  try {
    return unescapeToken(subject.slice(prefix.length));
  } catch {
    return undefined;
  }
}

/** KV cache events (stored / removed blocks, snapshots) of one engine, kept in stream SWITCHYARD_KV_EVENTS. */
export function kvEventSubject(engineId: string): string {
  return `${ROOT}.kv.events.${escapeToken(engineId)}`;
}

export const KV_EVENT_SUBJECTS = `${ROOT}.kv.events.>`;

/** Core subject on which a frontend asks an engine for a snapshot of its KV blocks (after a gap). */
export function kvSnapshotSubject(engineId: string): string {
  return `${ROOT}.kv.snapshot.${escapeToken(engineId)}`;
}
