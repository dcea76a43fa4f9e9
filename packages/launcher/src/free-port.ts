import { createServer } from 'node:net';

/**
 * A free TCP port on `host` (bound and released; the caller's process binds it right after).
 * NOTE: another process can take the port in between; callers start one child per port and fail
 * start-up loudly if the bind fails, which is rare enough on loopback.
 */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, host, () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}
