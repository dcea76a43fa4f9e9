/**
 * Installs onnxruntime-node's CUDA 12 execution provider (the image build's `deps-cuda` stage), like
 * onnxruntime-node's own install script — the Microsoft.ML.OnnxRuntime.Gpu.Linux NuGet package of
 * onnxruntime-node's version, three libraries from runtimes/linux-x64/native — but verified: the
 * package's SHA-512 must equal the hash the NuGet registry recorded for it (its catalog entry's
 * `packageHash`), and the one pinned with `--sha512 <hex>` when given. Nothing is written unless it does.
 *
 *   node docker/install-cuda-ep.ts [--sha512 <hex>] [--nuget https://api.nuget.org/v3/index.json]
 *
 * NOTE: onnxruntime-node's install script (script/install.js) downloads the same package without any
 * check; this is why the image does not run it.
 */
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { parseArgs } from 'node:util';
import AdmZip from 'adm-zip';

export const CUDA_EP_PACKAGE = 'Microsoft.ML.OnnxRuntime.Gpu.Linux';
export const CUDA_EP_FILES = [
  'libonnxruntime_providers_cuda.so',
  'libonnxruntime_providers_shared.so',
  'libonnxruntime_providers_tensorrt.so',
] as const;

export interface CudaEpInstall {
  /** NuGet v3 service index. */
  readonly nugetIndexUrl: string;
  readonly version: string;
  /** Where the libraries go (onnxruntime-node's bin/napi-v6/linux/x64). */
  readonly destDir: string;
  /** Pinned SHA-512 of the .nupkg, hex; checked besides the registry's. */
  readonly sha512Hex?: string;
  readonly timeoutMs?: number;
}

export class CudaEpVerificationError extends Error {
  override readonly name = 'CudaEpVerificationError';
  readonly code = 'cuda_ep_checksum' as const;
}

/** Downloads, verifies and extracts; returns the verified SHA-512 (hex). */
export async function installCudaEp(options: CudaEpInstall): Promise<string> {
  const timeoutMs = options.timeoutMs ?? 600_000;
  const id = CUDA_EP_PACKAGE.toLowerCase();
  const version = options.version.toLowerCase();
  const index = (await getJson(options.nugetIndexUrl, timeoutMs)) as {
    resources?: { '@id': string; '@type': string }[];
  };
  const resource = (type: string) => {
    const found = index.resources?.find((r) => r['@type'].startsWith(type))?.['@id'];
    if (!found) throw new Error(`the NuGet index ${options.nugetIndexUrl} has no ${type}`);
    return found.endsWith('/') ? found : `${found}/`;
  };
  const leaf = (await getJson(`${resource('RegistrationsBaseUrl')}${id}/${version}.json`, timeoutMs)) as {
    catalogEntry?: string;
  };
  if (!leaf.catalogEntry) throw new Error(`${CUDA_EP_PACKAGE} ${version} has no catalog entry`);
  const entry = (await getJson(leaf.catalogEntry, timeoutMs)) as {
    packageHash?: string;
    packageHashAlgorithm?: string;
  };
  if (entry.packageHashAlgorithm !== 'SHA512' || !entry.packageHash)
    throw new Error(`${CUDA_EP_PACKAGE} ${version}: the registry records no SHA512 package hash`);
  const recorded = Buffer.from(entry.packageHash, 'base64').toString('hex');

  const dir = await mkdtemp(join(tmpdir(), 'cuda-ep-'));
  try {
    const file = join(dir, `${id}.${version}.nupkg`);
    const actual = await download(
      `${resource('PackageBaseAddress')}${id}/${version}/${id}.${version}.nupkg`,
      file,
      timeoutMs,
    );
    if (actual !== recorded)
      throw new CudaEpVerificationError(
        `${CUDA_EP_PACKAGE} ${version}: SHA-512 ${actual} ≠ the registry's ${recorded}`,
      );
    if (options.sha512Hex !== undefined && actual !== options.sha512Hex.toLowerCase())
      throw new CudaEpVerificationError(
        `${CUDA_EP_PACKAGE} ${version}: SHA-512 ${actual} ≠ the pinned ${options.sha512Hex}`,
      );
    const zip = new AdmZip(await readFile(file));
    const libraries = CUDA_EP_FILES.map((name) => {
      const data = zip.getEntry(`runtimes/linux-x64/native/${name}`)?.getData();
      if (!data) throw new Error(`${CUDA_EP_PACKAGE} ${version} lacks runtimes/linux-x64/native/${name}`);
      return { name, data };
    });
    await mkdir(options.destDir, { recursive: true });
    for (const { name, data } of libraries) await writeFile(join(options.destDir, name), data);
    return actual;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function getJson(url: string, timeoutMs: number): Promise<unknown> {
  const response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  if (!response.ok) throw new Error(`GET ${url}: HTTP ${response.status}`);
  return response.json();
}

/** Streams `url` into `file`, hashing on the way; returns the SHA-512 (hex). */
async function download(url: string, file: string, timeoutMs: number): Promise<string> {
  const response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  if (!response.ok || !response.body) throw new Error(`GET ${url}: HTTP ${response.status}`);
  const hash = createHash('sha512');
  const body = Readable.fromWeb(response.body);
  body.on('data', (chunk: Buffer) => hash.update(chunk));
  await pipeline(body, createWriteStream(file));
  return hash.digest('hex');
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      sha512: { type: 'string' },
      nuget: { type: 'string', default: 'https://api.nuget.org/v3/index.json' },
      dir: { type: 'string', default: 'node_modules/onnxruntime-node' },
    },
  });
  const ort = values.dir ?? 'node_modules/onnxruntime-node';
  const { version } = JSON.parse(await readFile(join(ort, 'package.json'), 'utf8')) as { version: string };
  const sha512 = await installCudaEp({
    nugetIndexUrl: values.nuget ?? '',
    version,
    destDir: join(ort, 'bin', 'napi-v6', 'linux', 'x64'),
    ...(values.sha512 ? { sha512Hex: values.sha512 } : {}),
  });
  process.stdout.write(`installed ${CUDA_EP_PACKAGE} ${version}, SHA-512 ${sha512}\n`);
}
