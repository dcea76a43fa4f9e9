import { access } from 'node:fs/promises';

/** Whether something exists at `path` (any access error counts as absent). */
export async function pathExists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}
