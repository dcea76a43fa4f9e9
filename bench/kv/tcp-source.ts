/**
 * Raw loopback TCP reference for `bench:kv`: serves `--bytes` bytes to each connection as fast as the
 * socket takes them (64 KiB writes), then closes it. Prints "tcp-source listening on <port>".
 */
import { createServer } from 'node:net';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { bytes: { type: 'string' } } });
const total = Number(values.bytes);
if (!Number.isSafeInteger(total) || total < 1) {
  process.stderr.write('tcp-source: --bytes <n> is required\n');
  process.exit(2);
}
const chunk = Buffer.alloc(64 * 1024, 7);
const server = createServer((socket) => {
  let sent = 0;
  const pump = (): void => {
    while (sent < total) {
      const n = Math.min(chunk.length, total - sent);
      sent += n;
      if (!socket.write(n === chunk.length ? chunk : chunk.subarray(0, n))) {
        socket.once('drain', pump);
        return;
      }
    }
    socket.end();
  };
  pump();
});
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  process.stdout.write(`tcp-source listening on ${typeof address === 'object' && address ? address.port : 0}\n`);
});
process.on('SIGTERM', () => process.exit(0));
