import { Command, CommanderError, Option } from 'commander';

/** One flag of a service: `--<name> <value>` (or a switch), falling back to its environment variable. */
export interface FlagSpec {
  /** The flag without dashes, e.g. `max-running`. */
  readonly name: string;
  /** The variable read when the flag is absent, e.g. `SWITCHYARD_MAX_RUNNING`. */
  readonly env: string;
  /** A conventional variable read after `env` (e.g. NATS_URL, which the NATS tools read too). */
  readonly alsoEnv?: string;
  readonly description: string;
  /** Placeholder shown in `--help` (`n`, `dir`, …); absent for a switch. */
  readonly value?: string;
}

export interface ServiceFlagsOptions {
  /** The program name, also the prefix of error lines (`gateway: unknown option '--x'`). */
  readonly name: string;
  readonly version: string;
  readonly summary: string;
  /** Printed after the options in `--help`. */
  readonly epilogue?: string;
  readonly flags: readonly FlagSpec[];
  readonly argv: readonly string[];
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Where help, the version and errors go (tests); default the process's stdout and stderr. */
  readonly out?: (text: string) => void;
  readonly err?: (text: string) => void;
}

/** Flag name → value: a string for a valued flag, true for a switch that is on; absent when unset. */
export type ParsedFlags = Readonly<Record<string, string | true | undefined>>;

/**
 * Parses a service's flags with commander: each flag wins over its variable, an empty variable counts as
 * unset. `--help` and `--version` print and exit 0; a mistake prints one line naming it and exits 2 (no
 * stack trace: it is the user's to fix).
 *
 * NOTE: variables are resolved here rather than with commander's `Option.env()` so that a switch's
 * variable means "on" only when set to a true-looking value (`1`, `true`, `yes`), not whenever it is set.
 */
export function parseServiceFlags(options: ServiceFlagsOptions): ParsedFlags {
  const out = options.out ?? ((text: string) => process.stdout.write(text));
  const err = options.err ?? ((text: string) => process.stderr.write(text));
  const program = new Command(options.name)
    .description(options.summary)
    .version(options.version, '-V, --version', 'print the version and exit')
    .helpOption('-h, --help', 'print this help and exit')
    .allowExcessArguments(false)
    .exitOverride()
    .configureOutput({ writeOut: out, writeErr: err, outputError: () => undefined });
  for (const flag of options.flags) {
    const spelled = flag.value === undefined ? `--${flag.name}` : `--${flag.name} <${flag.value}>`;
    const variables = flag.alsoEnv ? `${flag.env}, ${flag.alsoEnv}` : flag.env;
    program.addOption(new Option(spelled, `${flag.description} (env: ${variables})`));
  }
  if (options.epilogue) program.addHelpText('after', `\n${options.epilogue}`);
  try {
    program.parse([...options.argv], { from: 'user' });
  } catch (error) {
    if (error instanceof CommanderError) {
      if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version') process.exit(0);
      err(`${options.name}: ${error.message.replace(/^error: /, '')}\n`);
      process.exit(2);
    }
    throw error;
  }
  const given = program.opts<Record<string, string | boolean | undefined>>();
  const parsed: Record<string, string | true | undefined> = {};
  for (const flag of options.flags) {
    // commander reads `--no-x` as x = false (its negatable form).
    const value = flag.name.startsWith('no-')
      ? given[camelCase(flag.name.slice(3))] === false || undefined
      : given[camelCase(flag.name)];
    const fromEnv = nonEmpty(options.env[flag.env]) ?? (flag.alsoEnv ? nonEmpty(options.env[flag.alsoEnv]) : undefined);
    if (flag.value === undefined) {
      parsed[flag.name] = value === true || isOn(fromEnv) ? true : undefined;
    } else {
      parsed[flag.name] = typeof value === 'string' ? value : fromEnv;
    }
  }
  return Object.freeze(parsed);
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}

function isOn(value: string | undefined): boolean {
  return value !== undefined && ['1', 'true', 'yes'].includes(value.trim().toLowerCase());
}

/** commander's attribute name of a flag: `max-running` → `maxRunning`. */
function camelCase(name: string): string {
  return name.replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}
