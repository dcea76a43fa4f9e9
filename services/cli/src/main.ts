import { Command } from 'commander';
import { generateCommand } from './commands/generate.ts';
import { modelCommand } from './commands/model.ts';
import { upCommand } from './commands/up.ts';
import { reportCommand } from './commands/report.ts';
import { economicsCommand } from './commands/economics.ts';
import { benchCommand } from './commands/bench.ts';
import { planCommand } from './commands/plan.ts';

const program = new Command('switchyard')
  .description('Switchyard: a distributed Mixture-of-Experts inference orchestrator')
  .showHelpAfterError('(add --help for usage)')
  .addCommand(modelCommand())
  .addCommand(generateCommand())
  .addCommand(upCommand())
  .addCommand(reportCommand())
  .addCommand(economicsCommand())
  .addCommand(benchCommand())
  .addCommand(planCommand());

await program.parseAsync(process.argv);
