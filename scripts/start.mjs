// `npm start`: runs what exists of Switchboard today: one balancer on 127.0.0.1:9000 serving
// the configuration file examples/balancer.yaml (or $SWITCHBOARD_CONFIG), ops on 127.0.0.1:9901.
// `npm start` builds first (package.json prestart). Ctrl-C drains and stops it.
import { spawn } from 'node:child_process';

const config = process.env.SWITCHBOARD_CONFIG ?? 'examples/balancer.yaml';
const listen = process.env.SWITCHBOARD_LISTEN ?? '127.0.0.1:9000';
const ops = process.env.SWITCHBOARD_OPS ?? '127.0.0.1:9901';

const child = spawn(process.execPath, ['bin/switchboard.js', 'balancer', '--listen', listen, '--ops', ops, '--config', config], {
  stdio: ['ignore', 'inherit', 'inherit'],
});
console.log(`
Switchboard balancer
  gRPC data plane   ${listen}          (point grpc clients here)
  metrics           http://${ops}/metrics
  state             http://${ops}/state
  configuration     ${config}          (edit it, then: kill -HUP ${child.pid})
Ctrl-C to drain and stop.
`);
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal));
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 0 : 1)));
