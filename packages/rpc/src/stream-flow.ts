/**
 * Writing to a gRPC stream with back-pressure: when write() says the buffer is full, wait for
 * 'drain' — or give up as soon as `until` settles (the call ended, failed or was cancelled), so a
 * writer never waits on a stream nobody will drain.
 */
import { once } from 'node:events';
import type { Writable } from 'node:stream';

/** Resolves true once drained, false if `until` settled first. Never rejects. */
export async function waitForDrain(stream: Writable, until: Promise<unknown>): Promise<boolean> {
  const stop = new AbortController();
  const drained = once(stream, 'drain', { signal: stop.signal }).then(
    () => true,
    () => false,
  );
  const ended = until.then(
    () => false,
    () => false,
  );
  try {
    return await Promise.race([drained, ended]);
  } finally {
    stop.abort();
  }
}
