/**
 * Command-line manners shared by the benches: `--help` (`-h`) prints the usage on stdout and exits 0; an
 * unknown flag or a flag without its value is one line on stderr naming the bench, and exit code 2 — never
 * a stack trace.
 */

/** Writes `<name>: <message> (--help for usage)` to stderr and exits with code 2. */
export function benchFail(name: string, message: string): never {
  process.stderr.write(`${name}: ${message} (--help for usage)\n`);
  process.exit(2);
}

/**
 * Runs a bench's `parseArgs` (whose options must include `help: { type: 'boolean', short: 'h' }`) with
 * the manners above and returns its values.
 */
export function benchArgs<V extends { readonly help?: boolean | undefined }>(
  name: string,
  usage: string,
  parse: () => { values: V },
): V {
  let values: V;
  try {
    ({ values } = parse());
  } catch (error) {
    benchFail(name, error instanceof Error ? error.message : String(error));
  }
  if (values.help === true) {
    process.stdout.write(usage.endsWith('\n') ? usage : `${usage}\n`);
    process.exit(0);
  }
  return values;
}

/** `raw` as an integer ≥ 1, or a one-line failure naming the flag. */
export function positiveIntArg(name: string, flag: string, raw: string): number {
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1)
    benchFail(name, `${flag} must be an integer ≥ 1, got ${JSON.stringify(raw)}`);
  return value;
}
