/**
 * `values[i]` where `i` out of range is a bug — a lost row, token or expert — so it throws instead of
 * reading as 0 (which would silently add a row's numbers into row 0). One bounds check per call; use it
 * per row, not per element.
 */
export function at(values: ArrayLike<number>, i: number): number {
  const v = values[i];
  if (v === undefined) throw new RangeError(`index ${i} is out of range (length ${values.length})`);
  return v;
}
