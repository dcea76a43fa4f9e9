/**
 * Splits a server-sent-events byte stream into the `data:` payloads of its events, in order, as they
 * complete. Comments (`:` lines, often pings) and other fields are dropped; multi-line data is joined
 * with newlines, as the SSE spec says.
 */
export class SseReader {
  readonly #decoder = new TextDecoder();
  #buffer = '';

  /** Feeds bytes; returns the payloads of the events they completed. */
  push(bytes: Uint8Array): string[] {
    this.#buffer += this.#decoder.decode(bytes, { stream: true }).replaceAll('\r\n', '\n');
    const payloads: string[] = [];
    let end = this.#buffer.indexOf('\n\n');
    while (end >= 0) {
      const payload = dataOf(this.#buffer.slice(0, end));
      if (payload !== undefined) payloads.push(payload);
      this.#buffer = this.#buffer.slice(end + 2);
      end = this.#buffer.indexOf('\n\n');
    }
    return payloads;
  }

  /** The payload of a last event the stream ended without a blank line after, if any. */
  finish(): string[] {
    const payload = dataOf(this.#buffer + this.#decoder.decode());
    this.#buffer = '';
    return payload === undefined ? [] : [payload];
  }
}

function dataOf(event: string): string | undefined {
  const data = event
    .split('\n')
    .filter((line) => line.startsWith('data:'))
    .map((line) => line.slice(5).replace(/^ /, ''));
  return data.length === 0 ? undefined : data.join('\n');
}
