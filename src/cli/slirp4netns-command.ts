/**
 * `tcpip-ts-slirp4netns` (and `tcpip-ts slirp4netns`): slirp4netns 1.2's
 * command line in front of the same runner as `tcpip-ts gateway`, so that
 * podman (`network_cmd_path`), rootlesskit (`--slirp4netns-binary`) and
 * scripts written for slirp4netns can start this gateway unchanged.
 *
 * Runtimes feature-detect from --help by grepping for flags, wait on the
 * ready fd for one byte, and stop the helper by closing the exit fd or by
 * the target process exiting; this file maps all of that onto runGateway.
 * Unlike `tcpip-ts gateway` it writes nothing on the host (no
 * /etc/netns/NAME/resolv.conf): podman writes the container's resolver.
 */
import { closeSync, statSync, writeSync } from 'node:fs';
import { Socket } from 'node:net';
import { networkInterfaces } from 'node:os';
import { formatIp, parsePrefix } from '../wire/address.js';
import { packageVersion } from '../node/package-root.js';
// Types only: the gateway (wasm, addon) is imported once the arguments are
// good, so --help, which podman runs before every container, loads none of it.
import type { Addresses, GatewayCommand } from './gateway-command.js';
import { UsageError, checkApiSocketPath, checkTapName } from './usage.js';

export { UsageError };


/** slirp4netns refuses MTUs above 65521 (libslirp's limit); the gateway's MAX_MTU is 65520, podman asks for 65520. */
const SLIRP_MAX_MTU = 65520;
const SLIRP_MIN_MTU = 68;

export const SLIRP4NETNS_USAGE = `Usage: tcpip-ts-slirp4netns [OPTION]... PID|PATH [TAPNAME]
User-mode networking for unprivileged network namespaces, slirp4netns-compatible
(tcpip-ts: lwIP in WebAssembly, flows carried over this host's sockets).

-c, --configure          bring up the interface (and lo), with address and default route
-e, --exit-fd=FD         exit when FD reaches EOF (is closed by the other end)
-r, --ready-fd=FD        write "1" to FD and close it once the network is configured
-m, --mtu=MTU            MTU (default=1500, max=${SLIRP_MAX_MTU})
-6, --enable-ipv6        enable IPv6: fd00::/64 by router advertisement, DNS fd00::3
-a, --api-socket=PATH    serve the JSON API (add_hostfwd, list_hostfwd,
                         remove_hostfwd, get_info) on a Unix socket at PATH
--cidr=CIDR              IPv4 network (default=10.0.2.0/24; host .2, DNS .3, guest .100)
--disable-host-loopback  prohibit connecting to the host's 127.0.0.1 through the host address
--netns-type=TYPE        what PID|PATH names: pid or path (default=pid)
--userns-path=PATH       user namespace to enter first (not supported: exits with an error)
--enable-sandbox         after start-up: new mount namespace with an empty root,
                         capabilities dropped but CAP_NET_BIND_SERVICE, no_new_privs
--enable-seccomp         after start-up: deny system calls the gateway never makes
--outbound-addr=IPv4     bind outbound IPv4 connections to this address (not supported)
--outbound-addr6=IPv6    bind outbound IPv6 connections to this address (not supported)
--disable-dns            no DNS forwarder at the DNS address (not supported)
--macaddress=MAC         MAC address of the TAP (with -c)
--no-preserve-source     (tcpip-ts) add_hostfwd forwards reach the namespace from
                         10.0.2.2, as slirp4netns's do, not from the client's address
-h, --help               show this help and exit
-v, --version            show version and exit

Exit status: 0 after the exit fd's EOF, the target's exit or SIGTERM/SIGINT;
1 when setting up or serving fails; 2 (with one line on stderr) for bad usage
or a flag this command cannot honour.
`;

export interface Slirp4netnsCommand {
  /** runGateway's command, but for the egress policy, which runSlirp4netns adds with the gateway's code. */
  gateway: Omit<GatewayCommand, 'policy'>;
  exitFd: number | undefined;
  readyFd: number | undefined;
  /** The target process to outlive nothing of (--netns-type=pid), else undefined. */
  pid: number | undefined;
  sandbox: boolean;
  seccomp: boolean;
}

type Arg = 'none' | 'required';
/** Long name -> [short letter or null, argument]. */
const OPTIONS: Record<string, [string | null, Arg]> = {
  configure: ['c', 'none'],
  'exit-fd': ['e', 'required'],
  'ready-fd': ['r', 'required'],
  mtu: ['m', 'required'],
  'enable-ipv6': ['6', 'none'],
  'api-socket': ['a', 'required'],
  cidr: [null, 'required'],
  'disable-host-loopback': [null, 'none'],
  'netns-type': [null, 'required'],
  'userns-path': [null, 'required'],
  'enable-sandbox': [null, 'none'],
  'enable-seccomp': [null, 'none'],
  'outbound-addr': [null, 'required'],
  'outbound-addr6': [null, 'required'],
  'disable-dns': [null, 'none'],
  macaddress: [null, 'required'],
  'no-preserve-source': [null, 'none'],
  help: ['h', 'none'],
  version: ['v', 'none'],
};
const SHORT = new Map(Object.entries(OPTIONS).flatMap(([long, [short]]) => (short ? [[short, long] as const] : [])));

/**
 * getopt_long's reading of argv: bundled short flags (-c6), attached or
 * separate values (-r4, -r 4, --mtu=1500, --mtu 1500), unambiguous long
 * prefixes (--conf), options after operands, `--` ending options.
 */
export function getoptLong(argv: string[]): { options: [string, string | true][]; operands: string[] } {
  const options: [string, string | true][] = [];
  const operands: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      operands.push(...argv.slice(i + 1));
      break;
    }
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      const given = arg.slice(2, eq < 0 ? undefined : eq);
      const exact = OPTIONS[given] ? [given] : [];
      const matches = exact.length ? exact : Object.keys(OPTIONS).filter((name) => name.startsWith(given));
      if (matches.length === 0) throw new UsageError(`unrecognized option '--${given}'`);
      if (matches.length > 1) throw new UsageError(`option '--${given}' is ambiguous; possibilities: ${matches.map((m) => `'--${m}'`).join(' ')}`);
      const name = matches[0]!;
      if (OPTIONS[name]![1] === 'none') {
        if (eq >= 0) throw new UsageError(`option '--${name}' doesn't allow an argument`);
        options.push([name, true]);
      } else if (eq >= 0) {
        options.push([name, arg.slice(eq + 1)]);
      } else {
        if (i + 1 >= argv.length) throw new UsageError(`option '--${name}' requires an argument`);
        options.push([name, argv[++i]!]);
      }
      continue;
    }
    if (arg.startsWith('-') && arg.length > 1) {
      for (let j = 1; j < arg.length; j++) {
        const name = SHORT.get(arg[j]!);
        if (name === undefined) throw new UsageError(`invalid option -- '${arg[j]}'`);
        if (OPTIONS[name]![1] === 'none') {
          options.push([name, true]);
          continue;
        }
        if (j + 1 < arg.length) options.push([name, arg.slice(j + 1)]);
        else if (i + 1 < argv.length) options.push([name, argv[++i]!]);
        else throw new UsageError(`option requires an argument -- '${arg[j]}'`);
        break;
      }
      continue;
    }
    operands.push(arg);
  }
  return { options, operands };
}

function fdValue(flag: string, value: string): number {
  if (!/^\d{1,9}$/.test(value)) throw new UsageError(`${flag} must be a file descriptor number, got ${JSON.stringify(value)}`);
  return Number(value);
}

/** --cidr: slirp4netns puts the host at .2, DNS at .3 and the guest at .100 of the network. */
export function cidrAddresses(cidr: string): Addresses {
  const prefix = parsePrefix(cidr);
  if (!prefix || prefix.address.family !== 4 || prefix.prefixLength > 25 || prefix.prefixLength < 1) {
    throw new UsageError(`--cidr must be an IPv4 network with a prefix length of 1-25 (room for .100), like 10.0.2.0/24, got ${JSON.stringify(cidr)}`);
  }
  const bytes = formatIp(prefix.address).split('.').map(Number);
  const base = ((bytes[0]! << 24) | (bytes[1]! << 16) | (bytes[2]! << 8) | bytes[3]!) >>> 0;
  const mask = prefix.prefixLength === 0 ? 0 : (0xffffffff << (32 - prefix.prefixLength)) >>> 0;
  const network = (base & mask) >>> 0;
  if (network !== base) throw new UsageError(`--cidr ${cidr}: host bits are set; the network is ${dotted(network)}/${prefix.prefixLength}`);
  return { subnet: `${dotted(network)}/${prefix.prefixLength}`, prefixLength: prefix.prefixLength, gateway: dotted(network + 2), dns: dotted(network + 3), guest: dotted(network + 100) };
}

function dotted(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

/** Parses slirp4netns's command line. Returns 'help' or 'version' for those; throws UsageError. */
export function parseSlirp4netnsArgs(argv: string[]): Slirp4netnsCommand | 'help' | 'version' {
  const { options, operands } = getoptLong(argv);
  const values = new Map<string, string | true>();
  for (const [name, value] of options) values.set(name, value); // the last one wins, as with getopt
  if (values.has('help')) return 'help';
  if (values.has('version')) return 'version';
  const str = (name: string) => values.get(name) as string | undefined;

  // Flags this gateway cannot honour: say so rather than run differently.
  for (const [name, why] of [
    ['userns-path', 'entering a user namespace is not supported; run the command inside it (as rootlesskit and podman do for rootless)'],
    ['outbound-addr', 'binding outbound connections to an address is not supported; leave the flag out'],
    ['outbound-addr6', 'binding outbound connections to an address is not supported; leave the flag out'],
    ['disable-dns', 'the DNS forwarder cannot be turned off; leave the flag out'],
  ] as const) {
    if (values.has(name)) throw new UsageError(`--${name}: ${why}`);
  }

  if (operands.length < 1) throw new UsageError('missing PID|PATH (the target network namespace)');
  if (operands.length > 2) throw new UsageError(`too many arguments: ${operands.slice(2).map((o) => JSON.stringify(o)).join(' ')}`);
  const [target, tap = 'tap0'] = operands as [string, string?];
  const netnsType = str('netns-type') ?? 'pid';
  if (netnsType !== 'pid' && netnsType !== 'path') throw new UsageError(`--netns-type must be pid or path, got ${JSON.stringify(netnsType)}`);
  let pid: number | undefined;
  let netns: string;
  if (netnsType === 'pid') {
    if (!/^[1-9]\d{0,9}$/.test(target)) throw new UsageError(`PID must be a process id (or give --netns-type=path), got ${JSON.stringify(target)}`);
    pid = Number(target);
    netns = `/proc/${pid}/ns/net`;
  } else {
    netns = target;
  }
  checkTapName(tap, 'TAPNAME');
  const mtuText = str('mtu');
  const mtu = mtuText === undefined ? 1500 : /^\d{1,6}$/.test(mtuText) ? Number(mtuText) : NaN;
  if (!(mtu >= SLIRP_MIN_MTU && mtu <= SLIRP_MAX_MTU)) throw new UsageError(`--mtu must be an integer from ${SLIRP_MIN_MTU} to ${SLIRP_MAX_MTU}, got ${JSON.stringify(mtuText)}`);
  const addresses = cidrAddresses(str('cidr') ?? '10.0.2.0/24');
  const mac = str('macaddress');
  if (mac !== undefined) {
    if (!/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i.test(mac)) throw new UsageError(`--macaddress must be a MAC address like 02:00:00:00:00:01, got ${JSON.stringify(mac)}`);
    if (!values.has('configure')) throw new UsageError('--macaddress needs -c (--configure)');
  }
  const exitFd = values.has('exit-fd') ? fdValue('--exit-fd', str('exit-fd')!) : undefined;
  const readyFd = values.has('ready-fd') ? fdValue('--ready-fd', str('ready-fd')!) : undefined;
  const apiSocket = str('api-socket');
  checkApiSocketPath(apiSocket);
  try {
    statSync(netns);
  } catch (err) {
    const missing = (err as NodeJS.ErrnoException).code === 'ENOENT';
    throw new UsageError(pid !== undefined
      ? `PID ${pid}: ${missing ? 'no such process' : (err as Error).message}`
      : `${netns}: ${missing ? 'no such file' : (err as Error).message}`);
  }
  return {
    gateway: {
      netns,
      netnsName: null,
      tap,
      mtu,
      forwards: [],
      hostLoopback: !values.has('disable-host-loopback'),
      ipv6: values.has('enable-ipv6'),
      hosts: undefined,
      pcap: undefined,
      apiSocket,
      configure: values.has('configure'),
      offload: true,
      addresses,
      resolver: false,
      loopbackUp: true,
      mac,
      // slirp4netns writes the ready byte without waiting for IPv6 SLAAC.
      waitForSlaac: false,
      apiDefaultHostAddr: '0.0.0.0',
      apiBareList: true,
      preserveSource: !values.has('no-preserve-source'),
    },
    exitFd,
    readyFd,
    pid,
    sandbox: values.has('enable-sandbox'),
    seccomp: values.has('enable-seccomp'),
  };
}

/** Settles when the exit fd reaches EOF (slirp4netns exits when its reader sees EOF or an error). */
function exitFdClosed(fd: number): Promise<void> {
  return new Promise((resolve) => {
    const socket = new Socket({ fd, readable: true, writable: false });
    socket.on('data', () => undefined);
    socket.once('end', () => resolve());
    socket.once('close', () => resolve());
    socket.once('error', () => resolve());
    socket.unref();
  });
}

/**
 * Settles when the target process is gone. kill(pid, 0) works without /proc,
 * which the sandbox hides; a poll every 200 ms is what slirp4netns's own
 * fallback does too when it cannot use a pidfd.
 */
function processGone(pid: number, timers: { stop?: () => void }): Promise<void> {
  return new Promise((resolve) => {
    const timer = setInterval(() => {
      try {
        process.kill(pid, 0);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ESRCH') {
          clearInterval(timer);
          resolve();
        }
      }
    }, 200);
    timer.unref();
    timers.stop = () => clearInterval(timer);
  });
}

export async function runSlirp4netns(argv: string[]): Promise<number> {
  const name = 'tcpip-ts-slirp4netns';
  let cmd;
  try {
    cmd = parseSlirp4netnsArgs(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`${name}: ${err.message} (see ${name} --help)\n`);
    return 2;
  }
  if (cmd === 'help') {
    process.stdout.write(SLIRP4NETNS_USAGE);
    return 0;
  }
  if (cmd === 'version') {
    process.stdout.write(`${name} version ${packageVersion()} (slirp4netns 1.2 command line)\n`);
    return 0;
  }
  const c = cmd;
  const [{ runGateway }, { EgressPolicy, hostAddressesOf }] = await Promise.all([import('./gateway-command.js'), import('../gateway/policy.js')]);
  // slirp4netns has no egress rules: every flow the guest makes is carried.
  const policy = new EgressPolicy({ rules: ['allow *'], hostAddresses: hostAddressesOf(networkInterfaces()) });
  const stops: Promise<unknown>[] = [];
  const timers: { stop?: () => void } = {};
  if (c.exitFd !== undefined) stops.push(exitFdClosed(c.exitFd));
  if (c.pid !== undefined) stops.push(processGone(c.pid, timers));
  let confine: ((o: { sandbox?: boolean; seccomp?: boolean }) => void) | undefined;
  // Loaded now, before the sandbox hides the file system.
  if (c.sandbox || c.seccomp) confine = (await import('../node/confine.js')).confine;
  try {
    return await runGateway({ ...c.gateway, policy }, {
      log: (line) => process.stderr.write(`${name}: ${line}\n`),
      ready: () => {
        if (confine) confine({ sandbox: c.sandbox, seccomp: c.seccomp });
        if (c.readyFd !== undefined) {
          try {
            writeSync(c.readyFd, '1');
            closeSync(c.readyFd);
          } catch (err) {
            process.stderr.write(`${name}: --ready-fd ${c.readyFd}: ${(err as Error).message}\n`);
          }
        }
      },
      until: stops.length ? Promise.race(stops) : undefined,
    });
  } finally {
    timers.stop?.();
  }
}
