/**
 * `hf://org/name@revision`: a checkpoint downloaded from the Hugging Face hub with the official client
 * (`@huggingface/hub`) into the hub's cache layout (`models--org--name/{refs,blobs,snapshots}`), as
 * `huggingface-cli download` lays it out, so the Python tools share the cache.
 *
 * Only what an import reads is fetched: the top-level JSON files (config, safetensors index, tokenizer)
 * and the safetensors shards — not PyTorch `.bin` copies, READMEs or images. A file already in the cache
 * is not fetched again, so an interrupted download resumes at the file it was on.
 */
import { listFiles, modelInfo, downloadFileToCacheDir } from '@huggingface/hub';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { UsageError } from './user-error.ts';

/** The hub refused or could not be reached: the user's to fix (token, name, network), reported in one line. */
export class HubDownloadError extends Error {
  override readonly name = 'HubDownloadError';
  readonly code = 'hub_download' as const;
}

export interface HubReference {
  /** `org/name`. */
  readonly repo: string;
  /** A branch, tag or commit; default `main`. */
  readonly revision: string;
}

export interface HubDownloadOptions {
  /** The hub's address (default https://huggingface.co; HF_ENDPOINT). */
  readonly hubUrl?: string;
  /** HF_TOKEN: for gated and private repositories. */
  readonly accessToken?: string;
  /** The hub cache (default: the client's, HF_HUB_CACHE or ~/.cache/huggingface/hub). */
  readonly cacheDir?: string;
  readonly onProgress?: (doneBytes: number, totalBytes: number) => void;
}

const HUB_REFERENCE = /^hf:\/\/([A-Za-z0-9][\w.-]*\/[\w.-]+)(?:@([\w./-]+))?$/;

/** `hf://org/name[@revision]`, or undefined when `source` is not a hub reference. */
export function parseHubReference(source: string): HubReference | undefined {
  if (!source.startsWith('hf://')) return undefined;
  const match = HUB_REFERENCE.exec(source);
  if (!match?.[1])
    throw new UsageError(`${source} is not a hub reference: write hf://org/name or hf://org/name@revision`);
  return { repo: match[1], revision: match[2] ?? 'main' };
}

/** Whether an import needs the file (top-level configuration and tokenizer JSON, safetensors). */
export function isCheckpointFile(path: string): boolean {
  return !path.includes('/') && (path.endsWith('.json') || path.endsWith('.safetensors'));
}

/**
 * Downloads the checkpoint files of `ref` into the cache and returns its snapshot directory
 * (`…/models--org--name/snapshots/<commit>`). The revision is resolved to its commit first, so every
 * file lands in one snapshot, and `refs/<revision>` records it.
 */
export async function downloadHubSnapshot(ref: HubReference, options: HubDownloadOptions = {}): Promise<string> {
  try {
    return await download(ref, options);
  } catch (error) {
    if (error instanceof UsageError) throw error;
    const status = (error as { statusCode?: unknown }).statusCode;
    const where = `hf://${ref.repo}@${ref.revision}`;
    if (typeof status === 'number') {
      const hint = status === 401 || status === 403 ? ' (set HF_TOKEN for a gated or private repository)' : '';
      throw new HubDownloadError(`${where}: the hub answered HTTP ${status}${hint}`, { cause: error });
    }
    if (error instanceof TypeError)
      throw new HubDownloadError(`${where}: cannot reach ${options.hubUrl ?? 'the hub'}: ${error.message}`, {
        cause: error,
      });
    throw error;
  }
}

async function download(ref: HubReference, options: HubDownloadOptions): Promise<string> {
  const common = {
    ...(options.hubUrl ? { hubUrl: options.hubUrl.replace(/\/$/, '') } : {}),
    ...(options.accessToken ? { accessToken: options.accessToken } : {}),
  };
  const repo = { type: 'model' as const, name: ref.repo };
  const info = await modelInfo({ ...common, name: ref.repo, revision: ref.revision, additionalFields: ['sha'] });
  const commit = info.sha;
  if (typeof commit !== 'string') throw new Error(`the hub gave no commit for ${ref.repo}@${ref.revision}`);
  const files = [];
  for await (const entry of listFiles({ ...common, repo, revision: commit, recursive: true })) {
    if (entry.type === 'file' && isCheckpointFile(entry.path)) files.push(entry);
  }
  if (!files.some((f) => f.path === 'config.json'))
    throw new UsageError(`hf://${ref.repo}@${ref.revision} has no config.json: not a model checkpoint`);
  const totalBytes = files.reduce((n, f) => n + (f.lfs?.size ?? f.size), 0);
  let doneBytes = 0;
  const counted = countingFetch((n) => {
    doneBytes += n;
    options.onProgress?.(doneBytes, totalBytes);
  });
  let snapshot = '';
  for (const file of files) {
    const pointer = await downloadFileToCacheDir({
      ...common,
      repo,
      path: file.path,
      revision: commit,
      fetch: counted,
      ...(options.cacheDir ? { cacheDir: options.cacheDir } : {}),
    });
    snapshot = dirname(pointer);
  }
  if (ref.revision !== commit) {
    const refFile = join(dirname(dirname(snapshot)), 'refs', ref.revision);
    await mkdir(dirname(refFile), { recursive: true });
    await writeFile(refFile, commit);
  }
  options.onProgress?.(totalBytes, totalBytes);
  return snapshot;
}

/**
 * `fetch` that reports the bytes of file bodies as they arrive (not of API calls, nor of the client's
 * one-byte `Range: bytes=0-0` probes).
 */
function countingFetch(onBytes: (n: number) => void): typeof fetch {
  return async (input, init) => {
    const response = await fetch(input, init);
    const range = new Headers(init?.headers).get('range');
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    if (!response.body || range === 'bytes=0-0' || !url.includes('/resolve/')) return response;
    const counter = new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        onBytes(chunk.byteLength);
        controller.enqueue(chunk);
      },
    });
    return new Response(response.body.pipeThrough(counter), {
      status: response.status,
      statusText: response.statusText,
      headers: response.headers,
    });
  };
}
