import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { ModelDirError } from './errors.ts';

/** A Hugging Face checkpoint found on disk, and the hub repository it came from when the layout says. */
export interface CheckpointLocation {
  /** The directory with config.json and the safetensors (or symlinks to them). */
  readonly dir: string;
  /** `org/name` for a directory in the hub cache layout. */
  readonly repo?: string;
  /** The snapshot's commit, for a directory in the hub cache layout. */
  readonly revision?: string;
}

const REPO_FOLDER = /^models--(.+)$/;
const COMMIT = /^[0-9a-f]{40}$/;

/**
 * Where the checkpoint of `path` is. `path` may be a plain checkpoint directory, a snapshot of the hub
 * cache (`…/models--org--name/snapshots/<commit>`, whose files are symlinks into `blobs/`), or the
 * repository folder itself (`…/models--org--name`), whose snapshot is `revision` — a ref under `refs/`
 * or a commit — or else `refs/main`, or else its only snapshot.
 */
export async function resolveCheckpointDir(path: string, revision?: string): Promise<CheckpointLocation> {
  const repoFolder = REPO_FOLDER.exec(basename(path));
  if (repoFolder && !(await isFile(join(path, 'config.json')))) {
    const commit = await snapshotCommit(path, revision);
    return { dir: join(path, 'snapshots', commit), repo: repoNameOf(repoFolder[1] ?? ''), revision: commit };
  }
  const snapshots = dirname(path);
  const repoOfSnapshot = REPO_FOLDER.exec(basename(dirname(snapshots)));
  if (basename(snapshots) === 'snapshots' && repoOfSnapshot)
    return { dir: path, repo: repoNameOf(repoOfSnapshot[1] ?? ''), revision: basename(path) };
  return { dir: path };
}

/** `org--name` (the cache folder's spelling) → `org/name`. */
function repoNameOf(folder: string): string {
  return folder.split('--').join('/');
}

async function snapshotCommit(repoFolder: string, revision: string | undefined): Promise<string> {
  if (revision !== undefined && COMMIT.test(revision)) return revision;
  const ref = join(repoFolder, 'refs', revision ?? 'main');
  const fromRef = await readFile(ref, 'utf8').then(
    (text) => text.trim(),
    () => undefined,
  );
  if (fromRef !== undefined) return fromRef;
  if (revision !== undefined) throw new ModelDirError(repoFolder, `has no ref ${revision} (refs/${revision})`);
  const snapshots = await readdir(join(repoFolder, 'snapshots')).catch(() => []);
  if (snapshots.length === 1 && snapshots[0] !== undefined) return snapshots[0];
  throw new ModelDirError(
    repoFolder,
    snapshots.length === 0 ? 'has no snapshot' : 'has several snapshots and no refs/main: name one with --revision',
  );
}

async function isFile(path: string): Promise<boolean> {
  return stat(path).then(
    (s) => s.isFile(),
    () => false,
  );
}
