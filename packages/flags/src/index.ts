/**
 * @switchyard/flags — the command-line manners the service entry points share with the `switchyard`
 * CLI: one argument library (commander), each flag with its environment variable listed in `--help`,
 * `--version`, and a mistake (an unknown flag, a missing value) reported in one line with exit code 2.
 */
export { parseServiceFlags, type FlagSpec, type ParsedFlags, type ServiceFlagsOptions } from './service-flags.ts';
export { stopWithParent } from './parent-watch.ts';
