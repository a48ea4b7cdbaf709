/**
 * `tcpip-ts gateway`: slirp4netns's job as a command. A TAP device is created
 * inside the target network namespace and served by a gateway stack in this
 * process, which carries the namespace's flows over host sockets.
 *
 * Everything the user typed is validated before anything is created, so a
 * bad flag costs nothing (exit 2). What is created is undone in reverse
 * order on SIGINT/SIGTERM or a failure: the TAP disappears with its fd (and
 * the address and routes with the TAP), a resolv.conf we wrote is removed.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { promisify, parseArgs } from 'node:util';
import '../node/load.js';
import { MAX_MTU, MIN_MTU } from '../core/link.js';
import type { Link } from '../core/link.js';
import { openTap } from '../node/links.js';
import { pcapFile } from '../node/pcap.js';
import { createGateway, describeForward, parseForward, parsePortRanges, type ForwardOptions } from '../gateway/gateway.js';
import { EgressPolicy, hostAddressesOf, parseRule } from '../gateway/policy.js';
import { parseIp } from '../wire/address.js';
import { HostForwardApi, serveApiSocket } from './api-socket.js';
import { UsageError, checkApiSocketPath, checkTapName } from './usage.js';

export { UsageError };

const run = promisify(execFile);

/** slirp4netns's addresses, so guests configured for it work unchanged. */
export const SUBNET = { prefixLength: 24, gateway: '10.0.2.2', dns: '10.0.2.3', guest: '10.0.2.100' } as const;
/** slirp4netns --enable-ipv6's. */
export const SUBNET6 = { prefix: 'fd00::/64', gateway: 'fd00::2', dns: 'fd00::3' } as const;
/** How long the ready line waits for the namespace's SLAAC address (ms). */
const SLAAC_WAIT = 5_000;

export const GATEWAY_USAGE = `Usage: tcpip-ts gateway (--netns PATH | --pid PID) [options]

Gives a network namespace outbound networking through this host's sockets,
as slirp4netns does: creates a TAP device inside the namespace, configures
${SUBNET.guest}/${SUBNET.prefixLength} with gateway ${SUBNET.gateway} and DNS ${SUBNET.dns} there, prints one
"ready" line on stdout, and serves until SIGINT or SIGTERM, then removes what
it created and exits 0.

Target (exactly one):
  --netns PATH          the namespace file: /run/netns/NAME, /proc/PID/ns/net
  --pid PID             the network namespace of process PID (/proc/PID/ns/net)

Options:
  --tap NAME            TAP device name inside the namespace (default tap0)
  --mtu N               MTU of the TAP and the gateway, ${MIN_MTU}-${MAX_MTU} (default 1500)
  -p, --publish SPEC    forward a host port into the namespace; SPEC is
                        [HOSTADDR:]HOSTPORT:GUESTPORT[/tcp|/udp], HOSTADDR
                        IPv4 or [IPv6] ([::] listens on IPv4 and IPv6),
                        defaulting to 127.0.0.1, and HOSTPORT 0 picking a free
                        port (shown on the ready line); ports may be ranges of
                        the same length, 8000-8010:9000-9010; repeatable.
                        The namespace sees each client's own address and port
                        (one on this host's loopback as ${SUBNET.gateway}, or ${SUBNET6.gateway})
  --no-preserve-source  forwarded connections come from ${SUBNET.gateway} instead of
                        the client's address, as with slirp4netns
  --forward-auto[=RANGES]
                        forward every TCP and UDP port the namespace listens
                        on (on its wildcard or guest address) from the same
                        port on 127.0.0.1, while it listens; RANGES limits it:
                        8000-8100,3000/tcp,53/udp (default every port). Host
                        ports in use are skipped and logged on stderr
  --allow RULE          egress rule admitting flows; repeatable
  --deny RULE           egress rule refusing flows; repeatable. Rules are
                        tried in the order given, the first match decides:
                          RULE = [tcp|udp|icmp|any:]TARGET[:PORTS]
                          TARGET = * | IPV4[/LEN] | [IPV6[/LEN]] | name:PATTERN
                          e.g. tcp:10.0.0.0/8:443  udp:*:53  name:*.example.test
                        Unmatched flows are allowed, except to link-local
                        addresses (169.254.0.0/16, cloud metadata) and this
                        host's own addresses, which need an explicit --allow.
  --host-loopback       connections to ${SUBNET.gateway} reach this host's 127.0.0.1
                        (and to ${SUBNET6.gateway} its ::1, with --enable-ipv6; off by
                        default)
  --enable-ipv6         IPv6 too, as slirp4netns: router advertisements give
                        the namespace ${SUBNET6.prefix} by SLAAC (the kernel makes
                        its own address), a default route via the gateway's
                        link-local address, the MTU and DNS ${SUBNET6.dns} (RDNSS);
                        TCP and UDP to IPv6 destinations leave through this
                        host's IPv6 sockets. The command sets accept_ra=2,
                        autoconf=1 and accept_dad=0 on the TAP. Echoes to
                        outside IPv6 hosts are not forwarded
  --hosts-file FILE     answer names in FILE (/etc/hosts format) at ${SUBNET.dns}
                        before asking this host's resolver
  --pcap FILE           record every frame on the TAP to FILE (pcap)
  --api-socket PATH     serve slirp4netns's API on a Unix socket at PATH:
                        add_hostfwd, list_hostfwd and remove_hostfwd change
                        forwards at run time (JSON, one request per
                        connection); removed on exit
  --no-configure        create the TAP only: no address, route or resolver
  --no-offload          plain frames on the TAP: no checksum offload and no
                        TSO/GSO (64 KiB TCP frames cut by the kernel), which
                        are on by default
  -h, --help            show this help and exit

Resolver: for a named namespace (/run/netns/NAME) the command writes
/etc/netns/NAME/resolv.conf, which "ip netns exec NAME" bind-mounts, and
removes it on exit (nameserver ${SUBNET.dns}, and ${SUBNET6.dns} with --enable-ipv6);
for other namespaces it leaves files alone and the namespace should use
nameserver ${SUBNET.dns}.

Ready line (stdout), the ipv6 clause with --enable-ipv6, one forward
clause per -p:
  ready TAP ${SUBNET.guest}/${SUBNET.prefixLength} via ${SUBNET.gateway} dns ${SUBNET.dns} [ipv6 ADDRESS/64 via LINKLOCAL dns ${SUBNET6.dns}] [forward PROTO HOSTADDR:HOSTPORT->GUESTPORT]... [forward-auto RANGES|all]
(HOSTADDR in brackets for IPv6, ports as LOW-HIGH for ranges).
The ipv6 clause names the address the namespace made by SLAAC (waited
for, up to ${SLAAC_WAIT / 1000} s; the prefix with --no-configure) and the gateway's
link-local address, the namespace's default route.

Exit status: 0 after a signal, 1 if setting up or serving fails, 2 for bad usage.
`;

export interface GatewayCommand {
  netns: string;
  /** NAME when netns is /run/netns/NAME (the resolver can be set through /etc/netns/NAME). */
  netnsName: string | null;
  tap: string;
  mtu: number;
  forwards: ForwardOptions[];
  policy: EgressPolicy;
  hostLoopback: boolean;
  ipv6: boolean;
  hosts: Record<string, string[]> | undefined;
  pcap: string | undefined;
  apiSocket: string | undefined;
  configure: boolean;
  /** The TAP's checksum offload and TSO/GSO (openTap's offload). */
  offload: boolean;
  /** Forwarded connections show the client's address (default true). */
  preserveSource?: boolean;
  /** --forward-auto's port ranges ('' for every port); undefined when off. */
  autoForward?: string;
  /** The IPv4 addresses (default SUBNET: slirp4netns's 10.0.2.0/24 ones). */
  addresses?: Addresses;
  /** Write /etc/netns/NAME/resolv.conf for a named namespace (default true; slirp4netns mode writes nothing). */
  resolver?: boolean;
  /** With configure: bring the namespace's lo up too, as slirp4netns -c does. */
  loopbackUp?: boolean;
  /** With configure: the TAP's MAC address (slirp4netns --macaddress). */
  mac?: string;
  /** With configure and ipv6: wait for the namespace's SLAAC address before ready (default true). */
  waitForSlaac?: boolean;
  /** The API's add_hostfwd default host_addr (default 127.0.0.1; slirp4netns's is 0.0.0.0). */
  apiDefaultHostAddr?: string;
  /** list_hostfwd replies {"entries": [...]} unwrapped, as slirp4netns does. */
  apiBareList?: boolean;
}

/** An IPv4 subnet and the gateway's, DNS's and guest's addresses in it. */
export interface Addresses {
  subnet: string;
  prefixLength: number;
  gateway: string;
  dns: string;
  guest: string;
}

/** How runGateway talks to its front end. */
export interface GatewayIo {
  /** Called once the namespace is configured and usable. */
  ready(line: string): void;
  log(line: string): void;
  /** Settles when the front end wants the gateway to stop (an exit fd's EOF, the target's exit). */
  until?: Promise<unknown>;
}

/** Parses a hosts file: `ADDRESS NAME [ALIAS...]` lines, `#` comments. */
export function parseHostsFile(text: string, file: string): Record<string, string[]> {
  const hosts: Record<string, string[]> = {};
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/#.*/, '').trim();
    if (line === '') return;
    const [address, ...names] = line.split(/\s+/);
    if (!parseIp(address!) || names.length === 0) throw new UsageError(`--hosts-file ${file}:${i + 1}: expected "ADDRESS NAME...", got ${JSON.stringify(raw.trim())}`);
    for (const name of names) (hosts[name.toLowerCase()] ??= []).push(address!);
  });
  return hosts;
}

/** An option's error message without the "The "x" option must be" framing repeated. */
function reason(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Parses and validates `tcpip-ts gateway` arguments. Returns null for
 * --help; throws UsageError naming the bad flag. Touches nothing but reads
 * (the namespace path, the hosts file).
 */
export function parseGatewayArgs(argv: string[]): GatewayCommand | null {
  // --forward-auto takes an optional value, which parseArgs cannot express:
  // a bare one (last, or before another flag) means every port.
  argv = argv.map((a, i) => (a === '--forward-auto' && (i + 1 === argv.length || argv[i + 1]!.startsWith('-')) ? '--forward-auto=' : a));
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      tokens: true,
      options: {
        netns: { type: 'string' },
        pid: { type: 'string' },
        tap: { type: 'string' },
        mtu: { type: 'string' },
        publish: { type: 'string', short: 'p', multiple: true },
        allow: { type: 'string', multiple: true },
        deny: { type: 'string', multiple: true },
        'host-loopback': { type: 'boolean' },
        'enable-ipv6': { type: 'boolean' },
        'hosts-file': { type: 'string' },
        pcap: { type: 'string' },
        'api-socket': { type: 'string' },
        'no-configure': { type: 'boolean' },
        'no-offload': { type: 'boolean' },
        'no-preserve-source': { type: 'boolean' },
        'forward-auto': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    const code = (err as { code?: string }).code;
    const message = reason(err);
    if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
      const m = /'([^']+)'/.exec(message);
      throw new UsageError(`unknown option ${m ? m[1] : message}`);
    }
    if (code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL') {
      const m = /'([^']*)'/.exec(message);
      throw new UsageError(`unexpected argument ${m ? JSON.stringify(m[1]) : message}`);
    }
    // Missing values, values on boolean flags, ambiguous dashes: Node's text names the flag.
    throw new UsageError(message.split('. To specify')[0]!);
  }
  const { values, tokens } = parsed;
  if (values.help) return null;
  const once = (name: string) => {
    const n = tokens.filter((t) => t.kind === 'option' && t.name === name).length;
    if (n > 1) throw new UsageError(`--${name} given ${n} times`);
  };
  for (const name of ['netns', 'pid', 'tap', 'mtu', 'hosts-file', 'pcap', 'api-socket', 'forward-auto']) once(name);

  if (values.netns !== undefined && values.pid !== undefined) throw new UsageError('--netns and --pid are exclusive: give one');
  let netns: string;
  if (values.pid !== undefined) {
    if (!/^[1-9]\d{0,9}$/.test(values.pid)) throw new UsageError(`--pid must be a process id, got ${JSON.stringify(values.pid)}`);
    netns = `/proc/${values.pid}/ns/net`;
  } else if (values.netns !== undefined) {
    netns = values.netns;
    if (netns === '') throw new UsageError('--netns must be a path like /run/netns/NAME or /proc/PID/ns/net');
  } else {
    throw new UsageError('missing target: give --netns PATH or --pid PID');
  }
  const named = /^(?:\/var)?\/run\/netns\/([^/]+)$/.exec(netns);

  const tap = values.tap ?? 'tap0';
  checkTapName(tap, '--tap');
  const mtu = values.mtu === undefined ? 1500 : /^\d{1,6}$/.test(values.mtu) ? Number(values.mtu) : NaN;
  if (!(mtu >= MIN_MTU && mtu <= MAX_MTU)) throw new UsageError(`--mtu must be an integer from ${MIN_MTU} to ${MAX_MTU}, got ${JSON.stringify(values.mtu)}`);

  const forwards = (values.publish ?? []).map((spec) => {
    try {
      const f = parseForward(spec);
      const last = (p: number) => p + (f.count ?? 1) - 1;
      if (f.guestPort < 1 || last(f.guestPort) > 65535 || last(f.hostPort) > 65535) throw new Error('ports must be 1-65535 (HOSTPORT 0 picks one)');
      if (f.hostPort === 0 && (f.count ?? 1) > 1) throw new Error('a range needs its host ports given');
      return f;
    } catch (err) {
      const why = reason(err);
      const m = /^The "forward" option must be (.*)\. Received /s.exec(why);
      throw new UsageError(`-p ${spec}: ${m ? `expected ${m[1]}` : `expected [HOSTADDR:]HOSTPORT[-END]:GUESTPORT[-END][/tcp|/udp] (${why})`}`);
    }
  });
  const autoForward = values['forward-auto'];
  if (autoForward !== undefined) {
    try {
      parsePortRanges(autoForward);
    } catch {
      throw new UsageError(`--forward-auto ${autoForward}: expected port ranges like 8000-8100,3000/tcp,53/udp (ports 1-65535)`);
    }
  }

  // Rules keep their command-line order across --allow and --deny: the first match decides.
  const rules = tokens.flatMap((t) => {
    if (t.kind !== 'option' || (t.name !== 'allow' && t.name !== 'deny')) return [];
    try {
      parseRule(t.value ?? '', t.name, `--${t.name}`);
      return [`${t.name} ${t.value}`];
    } catch (err) {
      throw new UsageError(`--${t.name} ${t.value}: ${reason(err).replace(/^The "--(allow|deny)" option must be /, 'expected ').replace(/\. Received .*$/s, '')}`);
    }
  });
  const policy = new EgressPolicy({
    rules,
    hostAddresses: hostAddressesOf(networkInterfaces()),
  });

  let hosts: Record<string, string[]> | undefined;
  const hostsFile = values['hosts-file'];
  if (hostsFile !== undefined) {
    let text: string;
    try {
      text = readFileSync(hostsFile, 'utf8');
    } catch (err) {
      throw new UsageError(`--hosts-file ${hostsFile}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : reason(err)}`);
    }
    hosts = parseHostsFile(text, hostsFile);
  }
  if (values.pcap === '') throw new UsageError('--pcap must be a file path');
  const apiSocket = values['api-socket'];
  checkApiSocketPath(apiSocket);
  // Last: the flags are well-formed, so now ask whether the namespace exists.
  try {
    statSync(netns);
  } catch (err) {
    const missing = (err as NodeJS.ErrnoException).code === 'ENOENT';
    throw new UsageError(values.pid !== undefined
      ? `--pid ${values.pid}: ${missing ? `no such process (${netns} does not exist)` : reason(err)}`
      : `--netns ${netns}: ${missing ? 'no such file' : reason(err)}`);
  }

  return {
    netns,
    netnsName: named ? named[1]! : null,
    tap,
    mtu,
    forwards,
    policy,
    hostLoopback: values['host-loopback'] ?? false,
    ipv6: values['enable-ipv6'] ?? false,
    hosts,
    pcap: values.pcap,
    apiSocket,
    configure: !values['no-configure'],
    offload: !values['no-offload'],
    preserveSource: !values['no-preserve-source'],
    autoForward,
  };
}

async function inNetns(netns: string, args: string[], command = 'ip'): Promise<void> {
  try {
    await run('nsenter', [`--net=${netns}`, command, ...args], { timeout: 10_000 });
  } catch (err) {
    const stderr = String((err as { stderr?: string }).stderr ?? '').trim();
    throw new Error(`${command} ${args.join(' ')} in ${netns} failed: ${stderr || reason(err)}`);
  }
}

/** Runs `ip` commands (one a line, without the leading `ip`) in netns through one `ip -batch -`. */
async function ipBatch(netns: string, commands: string[]): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const child = execFile('nsenter', [`--net=${netns}`, 'ip', '-batch', '-'], { timeout: 10_000 }, (err, _stdout, stderr) => {
      if (err) reject(new Error(`ip -batch in ${netns} failed: ${String(stderr).trim() || reason(err)}`));
      else resolve();
    });
    child.stdin!.end(`${commands.join('\n')}\n`);
  });
}

/**
 * Runs the gateway until SIGINT/SIGTERM. Resolves with the exit status;
 * `log` gets messages for stderr, `ready` the one line for stdout.
 */
export async function runGateway(
  cmd: GatewayCommand,
  io: GatewayIo = {
    ready: (line) => process.stdout.write(`${line}\n`),
    log: (line) => process.stderr.write(`tcpip-ts gateway: ${line}\n`),
  },
): Promise<number> {
  // Undo steps, run last-first; each runs once even if a signal races setup.
  const undo: { what: string; fn: () => void }[] = [];
  const cleanup = () => {
    for (const step of undo.splice(0).reverse()) {
      try {
        step.fn();
      } catch (err) {
        io.log(`cleanup: ${step.what}: ${reason(err)}`);
      }
    }
  };
  const onExit = () => cleanup(); // last resort if something calls process.exit
  process.on('exit', onExit);

  let signalled: (sig: NodeJS.Signals) => void = () => undefined;
  const stopped = new Promise<NodeJS.Signals>((resolve) => (signalled = resolve));
  let stopping = false;
  const onSignal = (sig: NodeJS.Signals) => {
    if (stopping) {
      io.log(`${sig} again: exiting now`);
      cleanup();
      process.exit(1);
    }
    stopping = true;
    signalled(sig);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const interrupted = () => {
    if (stopping) throw Object.assign(new Error('interrupted during setup'), { signal: true });
  };

  let failure: Error | null = null;
  const net = cmd.addresses ?? { subnet: `10.0.2.0/${SUBNET.prefixLength}`, ...SUBNET };
  try {
    const tap = openTap({ name: cmd.tap, netns: cmd.netns, mtu: cmd.mtu, up: cmd.configure, offload: cmd.offload });
    const tapName = tap.name;
    undo.push({ what: `close TAP ${tapName}`, fn: () => tap.close() });
    let link: Link = tap;
    if (cmd.pcap !== undefined) {
      link = pcapFile(link, cmd.pcap);
      const pcapLink = link;
      undo.push({ what: `close pcap ${cmd.pcap}`, fn: () => pcapLink.close() });
    }
    interrupted();

    const gateway = createGateway({
      link,
      subnet: net.subnet,
      gateway: net.gateway,
      dns: net.dns,
      guest: net.guest,
      hostLoopback: cmd.hostLoopback,
      ipv6: cmd.ipv6 ? { prefix: SUBNET6.prefix, gateway: SUBNET6.gateway, dns: SUBNET6.dns } : false,
      policy: cmd.policy,
      hosts: cmd.hosts,
      preserveSource: cmd.preserveSource ?? true,
    });

    undo.push({ what: 'close gateway', fn: () => gateway.close() });
    const failed = new Promise<never>((_, reject) => gateway.stack.once('error', reject));
    failed.catch(() => undefined);
    await gateway.ready;
    interrupted();

    const api = new HostForwardApi(gateway, {
      defaultHostAddr: cmd.apiDefaultHostAddr,
      bareList: cmd.apiBareList,
      info: () => ({
        net: {
          mtu: cmd.mtu,
          cidr: net.subnet,
          ip: net.guest,
          gateway: net.gateway,
          dns: net.dns,
          ...(cmd.ipv6 ? { ipv6: { prefix: SUBNET6.prefix, gateway: SUBNET6.gateway, dns: SUBNET6.dns } } : {}),
        },
        host_loopback: cmd.hostLoopback,
      }),
    });
    const clauses: string[] = [];
    for (const f of cmd.forwards) {
      let fw;
      try {
        fw = await gateway.addForward(f);
      } catch (err) {
        const shown = { protocol: f.protocol ?? 'tcp', hostAddress: f.hostAddress ?? '127.0.0.1', hostPort: f.hostPort, guestAddress: '', guestPort: f.guestPort, count: f.count ?? 1 };
        throw new Error(`-p ${describeForward(shown)}: ${reason(err)}`);
      }
      api.adopt(fw);
      clauses.push(`forward ${describeForward(fw)}`);
    }
    if (cmd.autoForward !== undefined) {
      gateway.on('auto-forward', (e: { action: string; protocol: string; port: number; reason?: string }) =>
        io.log(e.action === 'skip' ? `forward-auto: skipped ${e.protocol} ${e.port}: ${e.reason}` : `forward-auto: ${e.action} ${e.protocol} 127.0.0.1:${e.port}`));
      await gateway.autoForward({ source: { netns: cmd.netns }, ports: cmd.autoForward }).started;
      clauses.push(`forward-auto ${cmd.autoForward || 'all'}`);
    }
    interrupted();
    if (cmd.apiSocket !== undefined) {
      const served = await serveApiSocket(cmd.apiSocket, api).catch((err: unknown) => {
        throw new Error(`--api-socket ${cmd.apiSocket}: ${reason(err)}`);
      });
      undo.push({ what: `remove API socket ${cmd.apiSocket}`, fn: () => served.close() });
      interrupted();
    }

    if (cmd.configure) {
      if (cmd.ipv6) {
        // SLAAC from our advertisements, even where the namespace forwards
        // (accept_ra=2). No duplicate address detection: the gateway is the
        // only other node on the link and claims no guest address, and while
        // an address is tentative Linux sends from ::1, which no router
        // takes. The settings go with the TAP.
        const conf = `net.ipv6.conf.${tapName.replace(/\./g, '/')}`;
        await inNetns(cmd.netns, ['-q', '-w', `${conf}.disable_ipv6=0`, `${conf}.accept_dad=0`, `${conf}.accept_ra=2`, `${conf}.autoconf=1`], 'sysctl');
      }
      // One `ip -batch` process for the lot: each nsenter + ip costs a fork
      // and exec (about 10 ms here), most of the time a runtime waits for ready.
      await ipBatch(cmd.netns, [
        ...(cmd.mac !== undefined ? [`link set dev ${tapName} address ${cmd.mac}`] : []),
        // brd +: the broadcast address, as slirp4netns sets it.
        `addr add ${net.guest}/${net.prefixLength} brd + dev ${tapName}`,
        `link set ${tapName} up`,
        `route add default via ${net.gateway} dev ${tapName}`,
        ...(cmd.loopbackUp ? ['link set lo up'] : []),
      ]);
      // The address and route go with the TAP when its fd closes.
      interrupted();
      if (cmd.resolver !== false) setResolver(cmd, undo, io);
      // The namespace listens to advertisements now; the ones sent before
      // went unheard. Start over at once (not MIN_DELAY_BETWEEN_RAS, 3 s,
      // after the unheard one), so SLAAC is done in one exchange.
      gateway.routerAdvertiser?.linkUp();
    }

    const head = `ready ${tapName} ${net.guest}/${net.prefixLength} via ${net.gateway} dns ${net.dns}`;
    const v6: string[] = [];
    if (cmd.ipv6) {
      const linkLocal = gateway.interface.ipv6.find((a) => a.address.startsWith('fe80:'))?.address;
      // Ready means usable: wait for the namespace's own SLAAC address,
      // unless the caller does not want it (slirp4netns's ready byte does
      // not wait for IPv6, and podman starts the container on it).
      const wait = cmd.configure && cmd.waitForSlaac !== false;
      const address = wait ? await slaacAddress(cmd.netns, tapName, () => stopping) : null;
      interrupted();
      if (wait && address === null) io.log(`no SLAAC address in ${SUBNET6.prefix} on ${tapName} after ${SLAAC_WAIT / 1000} s`);
      v6.push(`ipv6 ${address ?? SUBNET6.prefix} via ${linkLocal} dns ${SUBNET6.dns}`);
    }
    io.ready([head, ...v6, ...clauses].join(' '));
    await Promise.race([stopped, failed, ...(io.until ? [io.until] : [])]);
  } catch (err) {
    if (!(err as { signal?: boolean }).signal) failure = err as Error;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    cleanup();
    process.off('exit', onExit);
  }
  if (failure) {
    io.log(reason(failure));
    return 1;
  }
  return 0;
}

/** The namespace's usable (not tentative) address in SUBNET6 on tap with its length, or null after SLAAC_WAIT. */
async function slaacAddress(netns: string, tap: string, stopping: () => boolean): Promise<string | null> {
  const prefix = SUBNET6.prefix.split('::')[0]!;
  const deadline = Date.now() + SLAAC_WAIT;
  while (Date.now() < deadline && !stopping()) {
    const { stdout } = await run('nsenter', [`--net=${netns}`, 'ip', '-6', '-o', 'addr', 'show', 'dev', tap, 'scope', 'global', '-tentative'], { timeout: 10_000 });
    const m = new RegExp(`inet6 (${prefix}:[0-9a-f:]*/64)`).exec(stdout);
    if (m) return m[1]!;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return null;
}

/** /etc/netns/NAME/resolv.conf for a named namespace; otherwise just say what to use. */
function setResolver(cmd: GatewayCommand, undo: { what: string; fn: () => void }[], io: { log(line: string): void }): void {
  if (cmd.netnsName === null) {
    io.log(`resolver not configured for ${cmd.netns} (not a named namespace): use nameserver ${SUBNET.dns}`);
    return;
  }
  const dir = `/etc/netns/${cmd.netnsName}`;
  const file = `${dir}/resolv.conf`;
  if (existsSync(file)) {
    io.log(`${file} exists; leaving it as it is (nameserver ${SUBNET.dns} is the gateway's DNS)`);
    return;
  }
  const madeParent = !existsSync('/etc/netns');
  const madeDir = !existsSync(dir);
  mkdirSync(dir, { recursive: true });
  if (madeParent) undo.push({ what: 'remove /etc/netns', fn: () => rmdirIfEmpty('/etc/netns') });
  if (madeDir) undo.push({ what: `remove ${dir}`, fn: () => rmdirIfEmpty(dir) });
  const servers = [SUBNET.dns, ...(cmd.ipv6 ? [SUBNET6.dns] : [])].map((s) => `nameserver ${s}\n`).join('');
  writeFileSync(file, `# written by tcpip-ts gateway (pid ${process.pid}); removed when it exits\n${servers}`, { flag: 'wx' });
  undo.push({ what: `remove ${file}`, fn: () => rmSync(file, { force: true }) });
}

function rmdirIfEmpty(dir: string): void {
  try {
    rmdirSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOTEMPTY' && (err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}
