/**
 * The image build's CUDA execution provider install (docker/install-cuda-ep.ts) against a local
 * stand-in NuGet registry: it installs a package whose SHA-512 matches the registry's record (and the
 * pinned hash), and writes nothing for a package that does not.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import AdmZip from 'adm-zip';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CUDA_EP_FILES, CUDA_EP_PACKAGE, CudaEpVerificationError, installCudaEp } from '../docker/install-cuda-ep.ts';

const VERSION = '1.30.0';
const id = CUDA_EP_PACKAGE.toLowerCase();

function nupkg(marker: string): Buffer {
  const zip = new AdmZip();
  for (const name of CUDA_EP_FILES) zip.addFile(`runtimes/linux-x64/native/${name}`, Buffer.from(`${name} ${marker}`));
  zip.addFile(`${id}.nuspec`, Buffer.from('<package/>'));
  return zip.toBuffer();
}

/** What the stand-in registry serves; `recorded` is the hash its catalog entry states. */
const registry = { served: nupkg('genuine'), recorded: '' };
let server: Server;
let base = '';
let dir = '';

beforeAll(async () => {
  registry.recorded = createHash('sha512').update(registry.served).digest('base64');
  server = createServer((request, response) => {
    const url = request.url ?? '';
    const json = (body: unknown) =>
      response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    if (url === '/v3/index.json')
      json({
        resources: [
          { '@id': `${base}/flat/`, '@type': 'PackageBaseAddress/3.0.0' },
          { '@id': `${base}/registration/`, '@type': 'RegistrationsBaseUrl/3.6.0' },
        ],
      });
    else if (url === `/registration/${id}/${VERSION}.json`)
      json({ catalogEntry: `${base}/catalog/${id}.${VERSION}.json` });
    else if (url === `/catalog/${id}.${VERSION}.json`)
      json({ packageHash: registry.recorded, packageHashAlgorithm: 'SHA512' });
    else if (url === `/flat/${id}/${VERSION}/${id}.${VERSION}.nupkg`) response.writeHead(200).end(registry.served);
    else response.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  base = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  dir = await mkdtemp(join(tmpdir(), 'cuda-ep-test-'));
});
afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await rm(dir, { recursive: true, force: true });
});

const install = (destDir: string, sha512Hex?: string) =>
  installCudaEp({
    nugetIndexUrl: `${base}/v3/index.json`,
    version: VERSION,
    destDir,
    ...(sha512Hex ? { sha512Hex } : {}),
  });

describe('installing the CUDA execution provider', () => {
  it('installs the three libraries of a package whose SHA-512 is the registry’s and the pinned one', async () => {
    const hex = createHash('sha512').update(registry.served).digest('hex');
    const dest = join(dir, 'ok');
    await expect(install(dest, hex)).resolves.toBe(hex);
    expect((await readdir(dest)).sort()).toEqual([...CUDA_EP_FILES].sort());
    expect(await readFile(join(dest, 'libonnxruntime_providers_cuda.so'), 'utf8')).toBe(
      'libonnxruntime_providers_cuda.so genuine',
    );
  });

  it('refuses a package that differs from the pinned hash, writing nothing', async () => {
    const dest = join(dir, 'pinned-mismatch');
    await expect(install(dest, 'ab'.repeat(64))).rejects.toBeInstanceOf(CudaEpVerificationError);
    expect(existsSync(dest)).toBe(false);
  });

  it('refuses a package whose bytes are not the ones the registry recorded (altered on the way)', async () => {
    const genuine = registry.served;
    registry.served = nupkg('tampered');
    try {
      const dest = join(dir, 'tampered');
      await expect(install(dest)).rejects.toThrow(/≠ the registry's/);
      expect(existsSync(dest)).toBe(false);
    } finally {
      registry.served = genuine;
    }
  });
});
