/**
 * The `tcpip-ts` command: `tcpip-ts SUBCOMMAND [options]`. Each subcommand
 * parses its own flags; this file only dispatches and maps errors to exit
 * statuses (2 for usage, 1 for failures at run time).
 */
import { GATEWAY_USAGE, UsageError, parseGatewayArgs, runGateway } from './gateway-command.js';

const USAGE = `Usage: tcpip-ts COMMAND [options]

Commands:
  gateway     give a network namespace outbound networking through this
              host's sockets (slirp4netns-style); see tcpip-ts gateway --help

Options:
  -h, --help  show this help and exit
`;

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined) {
    process.stderr.write(`tcpip-ts: missing command\n\n${USAGE}`);
    return 2;
  }
  if (command === '-h' || command === '--help' || command === 'help') {
    process.stdout.write(USAGE);
    return 0;
  }
  if (command === 'gateway') {
    let cmd;
    try {
      cmd = parseGatewayArgs(rest);
    } catch (err) {
      if (!(err instanceof UsageError)) throw err;
      process.stderr.write(`tcpip-ts gateway: ${err.message}\nRun "tcpip-ts gateway --help" for usage.\n`);
      return 2;
    }
    if (cmd === null) {
      process.stdout.write(GATEWAY_USAGE);
      return 0;
    }
    return runGateway(cmd);
  }
  process.stderr.write(`tcpip-ts: unknown command ${JSON.stringify(command)}\n\n${USAGE}`);
  return 2;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`tcpip-ts: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  },
);
