import { JetStreamApiError, type StreamConfig } from '@nats-io/jetstream';
import type { ClusterConnection } from './connect.ts';
import { ClusterStoreError } from './errors.ts';

/**
 * Creates the stream, or brings an existing one to this configuration (first creator's settings otherwise
 * win). A user NATS permissions do not let create streams (a frontend: engines own them) uses the
 * stream as it is, and fails clearly while it does not exist yet.
 */
export async function ensureStream(conn: ClusterConnection, config: StreamConfig): Promise<void> {
  try {
    await conn.jsm.streams.add(config);
  } catch (error) {
    if (isPermissionError(error)) {
      try {
        await conn.jsm.streams.info(config.name);
        return;
      } catch (infoError) {
        throw storeError(
          `find stream ${config.name} (this NATS user may not create it; an engine does)`,
          conn,
          infoError,
        );
      }
    }
    if (!(error instanceof JetStreamApiError)) throw storeError(`create stream ${config.name}`, conn, error);
    try {
      const { name, ...rest } = config;
      await conn.jsm.streams.update(name, rest);
    } catch (updateError) {
      throw storeError(`update stream ${config.name}`, conn, updateError);
    }
  }
}

export function storeError(what: string, conn: ClusterConnection, error: unknown): ClusterStoreError {
  const detail = error instanceof Error ? error.message : String(error);
  return new ClusterStoreError(`could not ${what} on NATS at ${conn.url}: ${detail}`, { cause: error });
}

/** True for the error of a request the server refused under the user's NATS permissions. */
export function isPermissionError(error: unknown): boolean {
  return error instanceof Error && /permissions violation/i.test(error.message);
}
