import { readSse } from './sse.ts';

/**
 * The client side of the kill-mid-stream tests: POSTs a streaming completion, calls `kill` once a few
 * SSE events have arrived (it kills whichever process it chooses and returns its name, or '' if it
 * found none), reads the stream to its end, and reports what the client saw.
 */
export interface KilledStream {
  /** What `kill` returned ('' when it killed nothing). */
  readonly killed: string;
  /** The longest wait for the next chunk from the kill on (ms): the client's stall. */
  readonly stallMs: number;
  /** The `data:` payloads in order, `[DONE]` included. */
  readonly events: readonly string[];
  /** The completion text of every event but `[DONE]`, joined. */
  readonly text: string;
  /** The message of the first error event, if the stream carried one. */
  readonly error?: string;
}

export async function streamThroughKill(
  url: string,
  body: Readonly<Record<string, unknown>>,
  kill: () => Promise<string>,
  afterEvents = 4,
): Promise<KilledStream> {
  const res = await fetch(`${url}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ ...body, stream: true }),
  });
  const reader = res.body?.getReader();
  const decoder = new TextDecoder();
  let raw = '';
  let killed = '';
  let killedAt = 0;
  /** Arrival times of the chunks read after the kill (the first ones may have been on the way already). */
  const after: number[] = [];
  for (;;) {
    const chunk = await reader?.read();
    if (!chunk || chunk.done) break;
    const now = performance.now();
    raw += decoder.decode(chunk.value, { stream: true });
    if (killedAt > 0) after.push(now);
    if (killedAt === 0 && raw.split('data: ').length > afterEvents) {
      killed = await kill();
      killedAt = performance.now();
    }
  }
  const stallMs = Math.max(...after.map((t, i) => t - (i === 0 ? killedAt : (after[i - 1] ?? t))));
  const { events, text, error } = readSse(raw);
  return { killed, stallMs, events, text, ...(error !== undefined ? { error } : {}) };
}
