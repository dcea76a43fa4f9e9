/** One completion chunk of an OpenAI-style SSE stream, as the process tests read it. */
export interface CompletionChunk {
  readonly id?: string;
  readonly choices?: readonly { readonly text: string; readonly finish_reason?: string | null }[];
  readonly error?: { readonly message: string };
}

/**
 * A streamed completion's body, read: the `data:` payloads in order (`[DONE]` included), the chunks
 * before `[DONE]` parsed, their text joined, and the first error event's message.
 */
export function readSse(raw: string): {
  events: string[];
  chunks: CompletionChunk[];
  text: string;
  error: string | undefined;
} {
  const events = raw
    .split('\n\n')
    .filter((s) => s.startsWith('data: '))
    .map((s) => s.slice(6));
  const chunks = events.filter((e) => e !== '[DONE]').map((e) => JSON.parse(e) as CompletionChunk);
  return {
    events,
    chunks,
    text: chunks.map((c) => c.choices?.[0]?.text ?? '').join(''),
    error: chunks.find((c) => c.error !== undefined)?.error?.message,
  };
}
