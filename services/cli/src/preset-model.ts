import { join } from 'node:path';
import { initModelDir, pathExists, type PresetName } from '@switchyard/model';
import { byteProgress } from './progress.ts';

/** `<modelsDir>/<preset>`, created with seed 7 (and a progress bar) the first time it is asked for. */
export async function ensurePresetModel(
  modelsDir: string,
  preset: PresetName,
  log: (line: string) => void,
): Promise<string> {
  const modelDir = join(modelsDir, preset);
  if (!(await pathExists(join(modelDir, 'config.json')))) {
    log(`creating the ${preset} model in ${modelDir} (first run)`);
    const bar = byteProgress(`writing ${preset}`);
    await initModelDir(modelDir, preset, 7, bar.update).finally(bar.stop);
  }
  return modelDir;
}
