/**
 * Errors that are the user's to fix (bad flag, bad model dir, prompt too long) print one line and exit
 * with status 2; anything else is a bug and keeps its stack trace.
 */
export class UsageError extends Error {
  override readonly name = 'UsageError';
  readonly code = 'usage' as const;
}

/** Errors from our packages carry a literal string `code`; those are user-facing by construction. */
export function isUserFacing(error: unknown): error is Error & { code: string } {
  return error instanceof Error && typeof (error as { code?: unknown }).code === 'string' && !('errno' in error);
}

/** Wraps a command action so user mistakes end with a clear message and no stack trace. */
export function action<A extends unknown[]>(fn: (...args: A) => Promise<void>): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      await fn(...args);
    } catch (error) {
      if (isUserFacing(error)) {
        process.stderr.write(`switchyard: ${error.message}\n`);
        process.exitCode = 2;
        return;
      }
      if (error instanceof Error && 'code' in error && (error as { code?: unknown }).code === 'ENOENT') {
        process.stderr.write(`switchyard: ${error.message}\n`);
        process.exitCode = 2;
        return;
      }
      throw error;
    }
  };
}
