import { InvalidArgumentError } from 'commander';

export function parseInteger(flag: string): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!Number.isInteger(n)) throw new InvalidArgumentError(`${flag} takes an integer, got "${value}"`);
    return n;
  };
}

export function parseNumber(flag: string): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!Number.isFinite(n)) throw new InvalidArgumentError(`${flag} takes a number, got "${value}"`);
    return n;
  };
}

/** "1,2,3" → [1, 2, 3]; every id a non-negative integer. */
export function parseIdList(value: string): number[] {
  const ids = value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .map(Number);
  if (ids.length === 0 || ids.some((n) => !Number.isInteger(n) || n < 0)) {
    throw new InvalidArgumentError(`--prompt-ids takes comma-separated non-negative integers, got "${value}"`);
  }
  return ids;
}
