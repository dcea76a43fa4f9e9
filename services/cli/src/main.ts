import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { generateCommand } from './commands/generate.ts';
import { modelCommand } from './commands/model.ts';
import { upCommand } from './commands/up.ts';
import { reportCommand } from './commands/report.ts';
import { economicsCommand } from './commands/economics.ts';
import { benchCommand } from './commands/bench.ts';
import { planCommand } from './commands/plan.ts';
import { natsConfigCommand } from './commands/nats-config.ts';
import { rebalanceCommand } from './commands/rebalance.ts';

const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
  version: string;
};

const program = new Command('switchyard')
  .description('Switchyard: a distributed Mixture-of-Experts inference orchestrator')
  .version(version, '-V, --version', 'print the version and exit')
  .addCommand(modelCommand())
  .addCommand(generateCommand())
  .addCommand(upCommand())
  .addCommand(reportCommand())
  .addCommand(economicsCommand())
  .addCommand(benchCommand())
  .addCommand(planCommand())
  .addCommand(natsConfigCommand())
  .addCommand(rebalanceCommand());

/** A usage mistake (unknown flag, missing value) is one line and exit code 2, as in the services. */
function mannered(command: Command): void {
  command.exitOverride().configureOutput({ outputError: () => undefined });
  for (const sub of command.commands) mannered(sub);
}
mannered(program);

try {
  await program.parseAsync(process.argv);
} catch (error) {
  if (!(error instanceof CommanderError)) throw error;
  // Help asked for (exit 0), or shown because no command was given (commander's exit code 1).
  if (error.exitCode === 0 || error.code === 'commander.help') process.exit(error.exitCode);
  process.stderr.write(`switchyard: ${error.message.replace(/^error: /, '')}\n`);
  process.exit(2);
}
