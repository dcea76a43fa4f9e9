import { Command } from 'commander';
import { generateCommand } from './commands/generate.ts';
import { modelCommand } from './commands/model.ts';
import { upCommand } from './commands/up.ts';

const program = new Command('switchyard')
  .description('Switchyard: a distributed Mixture-of-Experts inference orchestrator')
  .showHelpAfterError('(add --help for usage)')
  .addCommand(modelCommand())
  .addCommand(generateCommand())
  .addCommand(upCommand());

await program.parseAsync(process.argv);
