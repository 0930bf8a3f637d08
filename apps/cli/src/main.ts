/** The `switchboard` command line. */
import { Command } from 'commander';
import { adminCommand } from './admin-command';
import { balancerCommand } from './balancer-command';

const program = new Command('switchboard')
  .description('Switchboard: a gRPC load balancer that balances every call onto the least loaded backend')
  .version('0.1.0')
  .showHelpAfterError()
  .addCommand(adminCommand())
  .addCommand(balancerCommand());

program.parseAsync(process.argv).catch((err: Error) => {
  process.stderr.write(`switchboard: ${err.message}\n`);
  process.exit(1);
});
