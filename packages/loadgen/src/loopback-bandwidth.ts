/**
 * Loopback TCP bandwidth, one of the figures of this machine for `switchyard plan --local` (the CLI
 * adds MatMul FLOP/s and read bandwidth, measured with onnxruntime).
 */

import { once } from 'node:events';
import { createServer, connect, type AddressInfo } from 'node:net';

export interface LocalFigures {
  readonly matMulFlopsPerS: number;
  readonly readBytesPerS: number;
  readonly loopbackBytesPerS: number;
}

/** Bytes per second of one TCP stream over 127.0.0.1 (send `sizeBytes`, the peer discards). */
export async function measureLoopbackBandwidth(sizeBytes = 256 << 20, chunkBytes = 1 << 20): Promise<number> {
  let received = 0;
  let resolveDone: () => void = () => {};
  const done = new Promise<void>((resolve) => (resolveDone = resolve));
  const server = createServer((socket) => {
    socket.on('data', (d: Buffer) => {
      received += d.length;
      if (received >= sizeBytes) resolveDone();
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  const client = connect(port, '127.0.0.1');
  await once(client, 'connect');
  const chunk = Buffer.alloc(chunkBytes, 7);
  const t0 = performance.now();
  try {
    for (let sent = 0; sent < sizeBytes; sent += chunkBytes) {
      if (!client.write(chunk)) await once(client, 'drain');
    }
    await done;
    return sizeBytes / ((performance.now() - t0) / 1000);
  } finally {
    client.destroy();
    server.close();
  }
}
