/**
 * `SpanRecord`: one line of a Switchyard trace file (JSON lines, `SWITCHYARD_TRACE_FILE`). Plain data
 * shared by the file exporter that writes it and the report that reads it.
 */

export type SpanAttributeValue = string | number | boolean | readonly (string | number | boolean | null)[];
export type SpanAttributes = Readonly<Record<string, SpanAttributeValue>>;

export type SpanKindName = 'internal' | 'server' | 'client' | 'producer' | 'consumer';

export interface SpanEventRecord {
  readonly name: string;
  readonly timeUnixMs: number;
  readonly attributes: SpanAttributes;
}

export interface SpanRecord {
  readonly name: string;
  readonly kind: SpanKindName;
  /** 32 hex digits. */
  readonly traceId: string;
  /** 16 hex digits. */
  readonly spanId: string;
  /** Absent on a root span. */
  readonly parentSpanId?: string;
  /** The emitting service's `service.name`: one file may hold a gateway's and its workers' spans. */
  readonly service?: string;
  /** Milliseconds since the Unix epoch (fractional: microsecond resolution). */
  readonly startTimeUnixMs: number;
  readonly endTimeUnixMs: number;
  readonly durationMs: number;
  readonly status: { readonly code: 'unset' | 'ok' | 'error'; readonly message?: string };
  readonly attributes: SpanAttributes;
  readonly events: readonly SpanEventRecord[];
}

export class TraceFileError extends Error {
  override readonly name = 'TraceFileError';
  readonly code = 'invalid_trace_file' as const;
}

/** A record's numeric attribute, or `fallback` when absent or not a number. */
export function numberAttribute(attributes: SpanAttributes, name: string, fallback = 0): number {
  const value = attributes[name];
  return typeof value === 'number' ? value : fallback;
}

export function stringAttribute(attributes: SpanAttributes, name: string): string | undefined {
  const value = attributes[name];
  return typeof value === 'string' ? value : undefined;
}

/** Parses one trace-file line; throws TraceFileError naming `where` when it is not a span record. */
export function parseSpanRecord(line: string, where: string): SpanRecord {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (error) {
    throw new TraceFileError(`${where}: not JSON (${error instanceof Error ? error.message : String(error)})`);
  }
  if (!isSpanRecord(value))
    throw new TraceFileError(`${where}: not a span record (needs name, traceId, spanId, times, attributes, events)`);
  return value;
}

function isSpanRecord(value: unknown): value is SpanRecord {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return (
    typeof v['name'] === 'string' &&
    typeof v['traceId'] === 'string' &&
    typeof v['spanId'] === 'string' &&
    typeof v['startTimeUnixMs'] === 'number' &&
    typeof v['endTimeUnixMs'] === 'number' &&
    typeof v['attributes'] === 'object' &&
    v['attributes'] !== null &&
    Array.isArray(v['events'])
  );
}
