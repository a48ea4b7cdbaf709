/**
 * The `tcpip-ts` command: `tcpip-ts SUBCOMMAND [options]`. Each subcommand
 * parses its own flags; this file only dispatches and maps errors to exit
 * statuses (2 for usage, 1 for failures at run time).
 */
import { packageVersion } from '../node/package-root.js';
import { runDoctor } from './doctor.js';
import { GATEWAY_USAGE, UsageError, parseGatewayArgs, runGateway } from './gateway-command.js';

const USAGE = `Usage: tcpip-ts COMMAND [options]

Commands:
  doctor      say what works on this host and why not (the addon,
              /dev/net/tun, namespaces, ping sockets); see tcpip-ts doctor --help
  gateway     give a network namespace outbound networking through this
              host's sockets (slirp4netns-style); see tcpip-ts gateway --help
  slirp4netns the same gateway behind slirp4netns 1.2's command line, for
              podman, rootlesskit and scripts (also the tcpip-ts-slirp4netns
              command); see tcpip-ts slirp4netns --help

Options:
  -h, --help     show this help and exit
  -V, --version  print the version and exit

Every command takes --help.

Exit status: 0 on success, 1 when something fails at run time, 2 for bad
usage. Errors are one line on stderr, saying what to do.
`;

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined) {
    process.stderr.write(`tcpip-ts: missing command; run "tcpip-ts --help" for the commands\n`);
    return 2;
  }
  if (command === '-h' || command === '--help' || command === 'help') {
    process.stdout.write(USAGE);
    return 0;
  }
  if (command === '-V' || command === '--version') {
    process.stdout.write(`${packageVersion()}\n`);
    return 0;
  }
  if (command === 'doctor') return runDoctor(rest);
  if (command === 'slirp4netns') return (await import('./slirp4netns-command.js')).runSlirp4netns(rest);
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
  process.stderr.write(`tcpip-ts: unknown command ${JSON.stringify(command)}; run "tcpip-ts --help" for the commands\n`);
  return 2;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    // One line, as every other error; TCPIP_TS_DEBUG=1 adds the stack for a bug report.
    const e = err as { message?: unknown; code?: unknown; stack?: unknown };
    const message = err instanceof Error ? String(e.message).replace(/^tcpip-ts: /, '') : String(err);
    const code = typeof e.code === 'string' ? ` (${e.code})` : '';
    process.stderr.write(`tcpip-ts: ${message.split('\n')[0]}${code}; set TCPIP_TS_DEBUG=1 to see where it failed\n`);
    if (process.env.TCPIP_TS_DEBUG) process.stderr.write(`${String(e.stack ?? err)}\n`);
    process.exitCode = 1;
  },
);
