import { Command } from 'commander';
import { generateCommand } from './commands/generate.ts';
import { modelCommand } from './commands/model.ts';

const program = new Command('switchyard')
  .description('Switchyard: a distributed Mixture-of-Experts inference orchestrator')
  .showHelpAfterError('(add --help for usage)')
  .addCommand(modelCommand())
  .addCommand(generateCommand());

await program.parseAsync(process.argv);
