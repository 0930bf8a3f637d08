/** The `switchboard` command line. */
import { Command } from 'commander';
import { adminCommand } from './admin-command';
import { applyCommand, exportCommand, planCommand } from './automation-commands';
import { balancerCommand } from './balancer-command';
import { ExitCode } from './client-options';
import { drainCommands, getCommand, revisionsCommand, rollbackCommand, statsCommand } from './resource-commands';
import { routeCommand } from './route-commands';
import { xdsBootstrapCommand } from './xds-bootstrap-command';

const program = new Command('switchboard')
  .description('Switchboard: a gRPC load balancer that balances every call onto the least loaded backend')
  .version('0.1.0')
  .showHelpAfterError()
  .addCommand(adminCommand())
  .addCommand(balancerCommand())
  .addCommand(planCommand())
  .addCommand(applyCommand())
  .addCommand(exportCommand())
  .addCommand(getCommand())
  .addCommand(revisionsCommand())
  .addCommand(rollbackCommand())
  .addCommand(statsCommand())
  .addCommand(routeCommand())
  .addCommand(xdsBootstrapCommand());
for (const c of drainCommands()) program.addCommand(c);

program.parseAsync(process.argv).catch((err: Error) => {
  if (err instanceof ExitCode) process.exit(err.code);
  process.stderr.write(`switchboard: ${err.message}\n`);
  process.exit(1);
});
