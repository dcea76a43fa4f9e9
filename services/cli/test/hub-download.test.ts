import { describe, expect, it } from 'vitest';
import { isCheckpointFile, parseHubReference } from '../src/hub-download.ts';

describe('hub references', () => {
  it('reads hf://org/name[@revision], main by default, and leaves other sources alone', () => {
    expect(parseHubReference('hf://allenai/OLMoE-1B-7B-0924@v1.0')).toEqual({
      repo: 'allenai/OLMoE-1B-7B-0924',
      revision: 'v1.0',
    });
    expect(parseHubReference('hf://org/name')).toEqual({ repo: 'org/name', revision: 'main' });
    expect(parseHubReference('/models/org/name')).toBeUndefined();
    expect(() => parseHubReference('hf://no-org')).toThrow(/hf:\/\/org\/name/);
  });

  it('fetches the top-level JSON and safetensors only', () => {
    expect(['config.json', 'model-00001-of-00002.safetensors', 'tokenizer.json'].every(isCheckpointFile)).toBe(true);
    expect(
      ['pytorch_model.bin', 'README.md', 'onnx/model.json', 'original/consolidated.safetensors'].some(isCheckpointFile),
    ).toBe(false);
  });
});
