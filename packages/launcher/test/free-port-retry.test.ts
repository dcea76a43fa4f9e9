import { describe, expect, it } from 'vitest';
import { onFreePort } from '../src/services.ts';

describe('onFreePort', () => {
  it('starts again on another free port when the child could not listen, up to three tries', async () => {
    const ports: number[] = [];
    const started = await onFreePort(async (port) => {
      ports.push(port);
      if (ports.length < 3) throw new Error(`gateway exited (code 2): listen EADDRINUSE 127.0.0.1:${port}`);
      return port;
    });
    expect(ports).toHaveLength(3);
    expect(started).toBe(ports[2]);
    await expect(
      onFreePort(async (port) => {
        throw new Error(`listen EADDRINUSE 127.0.0.1:${port}`);
      }),
    ).rejects.toThrow(/EADDRINUSE/);
  });

  it('does not retry any other failure', async () => {
    let tries = 0;
    await expect(
      onFreePort(async () => {
        tries++;
        throw new Error('the model directory is missing');
      }),
    ).rejects.toThrow(/model directory/);
    expect(tries).toBe(1);
  });
});
