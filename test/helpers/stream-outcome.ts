import { readSse } from './sse.ts';

/**
 * One streaming completion read to its end or its deadline, classified the way the chaos cases count
 * outcomes: exact (the expected text, then `[DONE]`), wrong (finished with other text), error (an error
 * event or a non-2xx answer — a clear error — or a broken connection, marked `client:`), hung.
 */
export interface StreamOutcome {
  readonly kind: 'exact' | 'wrong' | 'error' | 'hung';
  readonly ms: number;
  readonly error?: string;
  /** The completion id the server gave (from the first event), to find the request in logs. */
  readonly requestId?: string;
  /** What the client read, when it was not the expected text. */
  readonly text?: string;
}

export async function streamOutcome(
  url: string,
  body: Readonly<Record<string, unknown>>,
  expectedText: string | undefined,
  deadlineMs: number,
  onChunk: () => void = () => {},
): Promise<StreamOutcome> {
  const started = performance.now();
  const abort = AbortSignal.timeout(deadlineMs);
  let raw = '';
  try {
    const res = await fetch(`${url}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ...body, stream: true }),
      signal: abort,
    });
    if (!res.ok) {
      const text = await res.text();
      const message = (JSON.parse(text) as { error?: { message?: string } }).error?.message ?? text;
      return { kind: 'error', ms: performance.now() - started, error: `HTTP ${res.status}: ${message}` };
    }
    const reader = res.body?.getReader();
    const decoder = new TextDecoder();
    for (;;) {
      const chunk = await reader?.read();
      if (!chunk || chunk.done) break;
      raw += decoder.decode(chunk.value, { stream: true });
      onChunk();
    }
  } catch (err) {
    const ms = performance.now() - started;
    if (abort.aborted) return { kind: 'hung', ms };
    return { kind: 'error', ms, error: `client: ${(err as Error).message}` };
  }
  const ms = performance.now() - started;
  const { events, chunks: parsed, text, error } = readSse(raw);
  const requestId = parsed.find((e) => e.id !== undefined)?.id;
  const id = requestId !== undefined ? { requestId } : {};
  if (error !== undefined) return { kind: 'error', ms, error, ...id };
  if (events.at(-1) === '[DONE]' && text === expectedText) return { kind: 'exact', ms, ...id };
  return { kind: 'wrong', ms, text, ...id };
}
