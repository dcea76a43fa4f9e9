import { appendFile, readFile } from 'node:fs/promises';
import { SpanKind, SpanStatusCode, type Attributes, type HrTime } from '@opentelemetry/api';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace';
import { ATTR_SERVICE_NAME } from './names.ts';
import { parseSpanRecord, type SpanAttributes, type SpanKindName, type SpanRecord } from './span-record.ts';

const KIND_NAMES: Readonly<Record<SpanKind, SpanKindName>> = {
  [SpanKind.INTERNAL]: 'internal',
  [SpanKind.SERVER]: 'server',
  [SpanKind.CLIENT]: 'client',
  [SpanKind.PRODUCER]: 'producer',
  [SpanKind.CONSUMER]: 'consumer',
};

/**
 * Writes finished spans to a file, one JSON `SpanRecord` per line. Each export appends its whole
 * batch in one `write` on a file opened for appending, so a gateway and its workers may share one
 * file: on a local filesystem an O_APPEND write is never interleaved with another process's.
 *
 * Invariant: `#writing` is the tail of a chain of appends, so batches land in export order and
 * `forceFlush`/`shutdown` resolve only once everything exported before them is on disk.
 */
export class JsonLinesSpanExporter implements SpanExporter {
  readonly #path: string;
  #writing: Promise<void> = Promise.resolve();
  #closed = false;

  constructor(path: string) {
    this.#path = path;
  }

  get path(): string {
    return this.#path;
  }

  export(spans: ReadableSpan[], resultCallback: (result: ExportResult) => void): void {
    if (this.#closed) {
      resultCallback({ code: ExportResultCode.FAILED, error: new Error('the span file exporter is shut down') });
      return;
    }
    const text = spans.map((span) => `${JSON.stringify(toSpanRecord(span))}\n`).join('');
    this.#writing = this.#writing.then(() =>
      appendFile(this.#path, text).then(
        () => resultCallback({ code: ExportResultCode.SUCCESS }),
        (error: unknown) =>
          resultCallback({
            code: ExportResultCode.FAILED,
            error: error instanceof Error ? error : new Error(String(error)),
          }),
      ),
    );
  }

  forceFlush(): Promise<void> {
    return this.#writing;
  }

  async shutdown(): Promise<void> {
    this.#closed = true;
    await this.#writing;
  }
}

export function toSpanRecord(span: ReadableSpan): SpanRecord {
  const context = span.spanContext();
  const parent = span.parentSpanContext?.spanId;
  const service = span.resource.attributes[ATTR_SERVICE_NAME];
  const start = hrTimeToUnixMs(span.startTime);
  const end = hrTimeToUnixMs(span.endTime);
  return {
    name: span.name,
    kind: KIND_NAMES[span.kind],
    traceId: context.traceId,
    spanId: context.spanId,
    ...(parent ? { parentSpanId: parent } : {}),
    ...(typeof service === 'string' ? { service } : {}),
    startTimeUnixMs: start,
    endTimeUnixMs: end,
    durationMs: end - start,
    status: {
      code:
        span.status.code === SpanStatusCode.ERROR ? 'error' : span.status.code === SpanStatusCode.OK ? 'ok' : 'unset',
      ...(span.status.message ? { message: span.status.message } : {}),
    },
    attributes: plainAttributes(span.attributes),
    events: span.events.map((e) => ({
      name: e.name,
      timeUnixMs: hrTimeToUnixMs(e.time),
      attributes: plainAttributes(e.attributes ?? {}),
    })),
  };
}

function hrTimeToUnixMs([seconds, nanos]: HrTime): number {
  return seconds * 1e3 + nanos / 1e6;
}

function plainAttributes(attributes: Attributes): SpanAttributes {
  const out: Record<string, SpanAttributes[string]> = {};
  for (const [key, value] of Object.entries(attributes)) {
    if (value === undefined) continue;
    out[key] = Array.isArray(value) ? value.map((v) => v ?? null) : (value as string | number | boolean);
  }
  return out;
}

/** Every span record of a trace file (blank lines skipped); throws TraceFileError on a bad line. */
export async function readTraceFile(path: string): Promise<SpanRecord[]> {
  const text = await readFile(path, 'utf8');
  const records: SpanRecord[] = [];
  text.split('\n').forEach((line, i) => {
    if (line.trim() !== '') records.push(parseSpanRecord(line, `${path}:${i + 1}`));
  });
  return records;
}
