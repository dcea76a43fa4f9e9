/**
 * TLS and mutual TLS for the gRPC links between gateways and expert workers, from PEM files that are
 * read again when they change (grpc-js's FileWatcherCertificateProvider), so a rotated certificate is
 * picked up without a restart. Plaintext is what you get only when no TLS files are given.
 * A local CA and certificates for trying it: docs/architecture.md, "gRPC TLS".
 */
import { access } from 'node:fs/promises';
import { credentials, experimental, ServerCredentials, type ChannelCredentials } from '@grpc/grpc-js';

/** A worker's side: its certificate and key, and (mutual TLS) the CA that signs gateways' certificates. */
export interface ServerTls {
  readonly certFile: string;
  readonly keyFile: string;
  /** With it, every client must present a certificate this CA signed (mutual TLS). */
  readonly clientCaFile?: string;
}

/** A gateway's side: the CA that signs workers' certificates, and (mutual TLS) its own certificate and key. */
export interface ClientTls {
  readonly caFile: string;
  readonly certFile?: string;
  readonly keyFile?: string;
}

/** How often the files are checked for changes. */
const REFRESH_MS = 60_000;

export class TlsConfigError extends Error {
  override readonly name = 'TlsConfigError';
}

/** Throws TlsConfigError naming the first file that cannot be read. */
export async function checkTlsFiles(files: Readonly<Record<string, string | undefined>>): Promise<void> {
  for (const [flag, file] of Object.entries(files)) {
    if (file === undefined) continue;
    try {
      await access(file);
    } catch {
      throw new TlsConfigError(`${flag}: cannot read ${file}`);
    }
  }
}

export function serverCredentialsOf(tls: ServerTls | undefined): ServerCredentials {
  if (tls === undefined) return ServerCredentials.createInsecure();
  const identity = new experimental.FileWatcherCertificateProvider({
    certificateFile: tls.certFile,
    privateKeyFile: tls.keyFile,
    refreshIntervalMs: REFRESH_MS,
  });
  const clientCa =
    tls.clientCaFile === undefined
      ? null
      : new experimental.FileWatcherCertificateProvider({
          caCertificateFile: tls.clientCaFile,
          refreshIntervalMs: REFRESH_MS,
        });
  // NOTE: grpc-js 1.14's createCertificateProviderServerCredentials(ca, identity, require) hands its
  // arguments on to a constructor that takes (identity, ca, require): the identity goes first here. A
  // null CA provider asks no client certificate. packages/rpc/test/tls.test.ts fails if this changes.
  return experimental.createCertificateProviderServerCredentials(identity, clientCa, clientCa !== null);
}

export function channelCredentialsOf(tls: ClientTls | undefined): ChannelCredentials {
  if (tls === undefined) return credentials.createInsecure();
  if ((tls.certFile === undefined) !== (tls.keyFile === undefined)) {
    throw new TlsConfigError('a client certificate needs its key, and a key its certificate');
  }
  const ca = new experimental.FileWatcherCertificateProvider({
    caCertificateFile: tls.caFile,
    refreshIntervalMs: REFRESH_MS,
  });
  const identity =
    tls.certFile === undefined || tls.keyFile === undefined
      ? null
      : new experimental.FileWatcherCertificateProvider({
          certificateFile: tls.certFile,
          privateKeyFile: tls.keyFile,
          refreshIntervalMs: REFRESH_MS,
        });
  return experimental.createCertificateProviderChannelCredentials(ca, identity);
}
