import { InvalidMessageError } from './errors.ts';

/**
 * Tiny readers for validating JSON from the wire: each returns the typed value or throws
 * InvalidMessageError naming the field. Hand-written because the schemas are small and a schema
 * library would be one more dependency for four messages.
 */

export type JsonObject = Readonly<Record<string, unknown>>;

export function parseJsonObject(data: Uint8Array | string, what: string): JsonObject {
  let value: unknown;
  try {
    value = JSON.parse(typeof data === 'string' ? data : new TextDecoder().decode(data));
  } catch (error) {
    throw new InvalidMessageError(`${what} is not JSON: ${error instanceof Error ? error.message : String(error)}`);
  }
  return asObject(value, what);
}

export function asObject(value: unknown, field: string): JsonObject {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new InvalidMessageError(`${field} must be an object`);
  return value as JsonObject;
}

export function readString(o: JsonObject, field: string, options: { nonEmpty?: boolean } = {}): string {
  const v = o[field];
  if (typeof v !== 'string' || (options.nonEmpty === true && v.length === 0)) {
    throw new InvalidMessageError(`${field} must be a${options.nonEmpty === true ? ' non-empty' : ''} string`);
  }
  return v;
}

export function readOptionalString(o: JsonObject, field: string): string | undefined {
  return o[field] === undefined ? undefined : readString(o, field);
}

export function readNumber(o: JsonObject, field: string, options: { integer?: boolean; min?: number } = {}): number {
  const v = o[field];
  const ok =
    typeof v === 'number' &&
    Number.isFinite(v) &&
    (options.integer !== true || Number.isInteger(v)) &&
    (options.min === undefined || v >= options.min);
  if (!ok)
    throw new InvalidMessageError(
      `${field} must be a${options.integer === true ? 'n integer' : ' number'}${options.min === undefined ? '' : ` ≥ ${options.min}`}`,
    );
  return v;
}

export function readBoolean(o: JsonObject, field: string): boolean {
  const v = o[field];
  if (typeof v !== 'boolean') throw new InvalidMessageError(`${field} must be a boolean`);
  return v;
}

export function readIntArray(o: JsonObject, field: string, min = Number.MIN_SAFE_INTEGER): number[] {
  const v = o[field];
  if (!Array.isArray(v) || !v.every((x) => Number.isInteger(x) && (x as number) >= min)) {
    throw new InvalidMessageError(
      `${field} must be an array of integers${min > Number.MIN_SAFE_INTEGER ? ` ≥ ${min}` : ''}`,
    );
  }
  return v as number[];
}

export function readStringArray(o: JsonObject, field: string): string[] {
  const v = o[field];
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string'))
    throw new InvalidMessageError(`${field} must be an array of strings`);
  return v as string[];
}
