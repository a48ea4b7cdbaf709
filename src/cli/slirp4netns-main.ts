/**
 * Entry point of the `tcpip-ts-slirp4netns` bin: straight to the
 * slirp4netns front end, without the `tcpip-ts` dispatcher's imports, since
 * runtimes wait on the ready fd before starting a container.
 */
import { runSlirp4netns } from './slirp4netns-command.js';

runSlirp4netns(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
    // A runtime waits for this process to go: should a handle outlive the
    // gateway (a peer's half-open socket), do not linger past a second.
    setTimeout(() => process.exit(), 1000).unref();
  },
  (err: unknown) => {
    const e = err as { message?: unknown; code?: unknown; stack?: unknown };
    const code = typeof e.code === 'string' ? ` (${e.code})` : '';
    process.stderr.write(`tcpip-ts-slirp4netns: ${String(e.message ?? err).split('\n')[0]}${code}; set TCPIP_TS_DEBUG=1 to see where it failed\n`);
    if (process.env.TCPIP_TS_DEBUG) process.stderr.write(`${String(e.stack ?? err)}\n`);
    process.exitCode = 1;
  },
);
