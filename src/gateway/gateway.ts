/**
 * The sandbox gateway (slirp mode): a stack that stands in for the whole
 * network behind a sandbox's link and carries every TCP connection and UDP
 * flow the sandbox opens over a host socket (node:net, node:dgram).
 *
 * TCP: the sandbox's SYN is held until the host socket connects, so a
 * refused port answers RST (the sandbox sees ECONNREFUSED, not a reset after
 * a handshake) and an unreachable host answers ICMP unreachable. The two
 * sockets are then spliced both ways (tcp-splice.ts), which carries flow control end to end
 * (a slow host peer stops the sandbox's window; a slow sandbox reader pauses
 * the host socket) and half-closes; a reset on either side resets the other.
 * UDP: one host socket per sandbox source address:port (endpoint-independent
 * mapping), closed after an idle time.
 * ICMP echo: the gateway address is the stack's own (lwIP answers it); the
 * gateway answers for the DNS address; echoes to other addresses go out
 * through an unprivileged ping socket (Linux; one per family, ICMP or
 * ICMPv6, each opened on first use), with the sequence number rewritten to
 * one of the gateway's own so that replies map back to the guest's
 * identifier, sequence and destination whatever identifier the kernel gives
 * the socket. Where ping sockets are not allowed (net.ipv4.ping_group_range,
 * which covers both families), those echoes are dropped and counted.
 * IPv6 (the `ipv6` option): the interface also has the v6 gateway and DNS
 * addresses (so lwIP answers neighbour discovery and echo for them, and the
 * DNS server listens there like any socket), router advertisements give the
 * sandbox a SLAAC prefix, its default route and DNS; TCP and UDP to v6
 * destinations leave through v6 host sockets, echoes through the ICMPv6
 * ping socket.
 */
import { EventEmitter } from 'node:events';
import { createSocket as createDgram, type Socket as DgramSocket } from 'node:dgram';
import { connect as netConnect, type Socket } from 'node:net';
import type { GatewayHandler, HeldSyn } from '../core/stack.js';
import type { TcpConnection } from '../core/tcp.js';
import type { Interface } from '../core/interface.js';
import type { Link } from '../core/link.js';
import type { SocketAddress } from '../core/session.js';
import { invalidOption } from '../core/errors.js';
import {
  formatIp, ipEquals, isLinkLocalIPv6, networkOf, parseIp, parsePrefix, prefixContains, type IpAddress, type IpPrefix,
} from '../wire/address.js';
import { createStack, type Stack } from '../node/stack.js';
import { TurnBudget } from './turn-budget.js';
import type { StackOptions } from '../core/stack.js';
import { loadNative, type NativeError, type PingSocket } from '../node/native.js';
import { buildEchoReply, buildEchoRequest, buildIcmpMessage, Icmpv4Type, Icmpv6Type, parseEcho, type EchoMessage } from '../wire/icmp.js';
import { IpProtocol, parseIPv4Packet, type IPv4Packet } from '../wire/ipv4.js';
import { parseIPv6Packet, type IPv6Packet } from '../wire/ipv6.js';
import { parseRouterSolicitation } from '../wire/ndp.js';
import { RouterAdvertiser } from './router-advertiser.js';
import { DnsForwarder, type UpstreamResolver } from './dns-server.js';
import { DhcpServer } from './dhcp-server.js';
import { EgressPolicy, type EgressPolicyOptions } from './policy.js';
import { TcpSplice } from './tcp-splice.js';
import { AutoForwarder, ForwardTable, checkForward, type AutoForwardOptions, type Forward, type ForwardOptions } from './forwards.js';

export { parseForward, parsePortRanges, describeForward } from './forwards.js';
export type { AutoForwardEvent, AutoForwardOptions, Forward, ForwardOptions, Listening, ListeningSource } from './forwards.js';

export interface GatewayOptions {
  link: Link;
  /** The sandbox's subnet. Default '10.0.2.0/24' (slirp's). */
  subnet?: string;
  /** The gateway's own address in the subnet. Default '10.0.2.2'. */
  gateway?: string;
  /** The DNS address the sandbox is told about. Default '10.0.2.3'. */
  dns?: string;
  /** The address the sandbox is expected to use. Default '10.0.2.100'. */
  guest?: string;
  /** Interface MTU. Default: the link's. */
  mtu?: number;
  /** Connections to the gateway address reach the host's 127.0.0.1. Default false. */
  hostLoopback?: boolean;
  /** How long a host connect may take before the sandbox gets ICMP unreachable. Default 10 s. */
  connectTimeout?: number;
  /** Idle UDP flows are closed after this long. Default 60 s. */
  udpIdleTimeout?: number;
  /**
   * Host ports forwarded into the sandbox from the start (see addForward);
   * `ready` waits for them. 'auto': every port the sandbox listens on
   * (see autoForward; `autoForward` says where to look).
   */
  forwards?: ForwardOptions[] | 'auto';
  /** With forwards: 'auto': the source of the sandbox's listening sockets, the ports, the host address. */
  autoForward?: AutoForwardOptions;
  /**
   * A forwarded connection reaches the sandbox from its client's address
   * and port (a client on the host's loopback: from the gateway address).
   * false: from the gateway's address, as slirp4netns does. Default true.
   */
  preserveSource?: boolean;
  /** Options for the gateway's stack. */
  stack?: StackOptions;
  /** The egress policy, or options to build one (default: allow all but link-local and the host's own addresses). */
  policy?: EgressPolicy | EgressPolicyOptions;
  /** Upstream resolver for the DNS at `dns`, or a function making one per lookup (default: a node:dns Resolver per lookup, the host's servers). */
  resolver?: UpstreamResolver | (() => UpstreamResolver);
  /** Static DNS records served at `dns`. */
  hosts?: Record<string, string[]>;
  /**
   * IPv6 for the sandbox: true for slirp4netns's fd00::/64 with gateway
   * fd00::2 and DNS fd00::3, or some of those. The guest configures itself
   * by SLAAC from the gateway's router advertisements. Ethernet links only.
   */
  ipv6?: boolean | GatewayIPv6Options;
}

export interface GatewayIPv6Options {
  /** The sandbox's /64. Default 'fd00::/64'. */
  prefix?: string;
  /** The gateway's v6 address in the prefix (reaches the host's ::1 with hostLoopback). Default: ::2 in the prefix. */
  gateway?: string;
  /** The v6 DNS address in the prefix, advertised by RDNSS. Default: ::3 in the prefix. */
  dns?: string;
}

/** The gateway's IPv6 addresses, as configured. */
export interface GatewayIPv6 {
  prefix: string;
  gateway: string;
  dns: string;
}

export interface FlowInfo {
  protocol: 'tcp' | 'udp';
  from: string;
  to: string;
  bytesIn: number;
  bytesOut: number;
}

export interface GatewayMetrics {
  tcpOpened: number;
  tcpOpen: number;
  tcpRefused: number;
  tcpUnreachable: number;
  udpFlowsOpened: number;
  udpFlowsOpen: number;
  udpDatagramsOut: number;
  udpDatagramsIn: number;
  bytesOut: number;
  bytesIn: number;
  /** Flows refused by the policy or by hostLoopback (TCP, UDP, ICMP echo). */
  denied: number;
  /** Echo requests sent to outside hosts through a ping socket (IPv4 and IPv6). */
  icmpEchoForwarded: number;
  /** Echo replies from outside hosts delivered to the sandbox. */
  icmpEchoReplies: number;
  /** Echo requests to the DNS address, answered by the gateway. */
  icmpEchoAnswered: number;
  /** Echo requests not forwarded: no ping socket (see net.ipv4.ping_group_range), a send error, too many outstanding. */
  icmpDropped: number;
  /** Event-loop turns in which host sockets had fed the stack their per-turn budget (1 MiB) and the rest waited for a later turn. */
  hostBudgetTurns: number;
}

/** An echo the gateway forwarded, under its own sequence number, until its reply. */
interface Echo {
  iface: Interface;
  guest: IpAddress;
  /** The destination; its family names the ping socket the echo went through. */
  to: IpAddress;
  id: number;
  seq: number;
  timer: ReturnType<typeof setTimeout>;
}

/** How long a forwarded echo waits for its reply (ping's own -W default is 10 s). */
const ECHO_TIMEOUT = 10_000;
/** Echoes waiting for replies at most (each holds one of the 65536 sequence numbers). */
const MAX_ECHOES = 4096;
/** After a ping socket could not be opened, how long before trying again. */
const PING_RETRY = 30_000;
/** Receive slots of a ping socket: a reply may carry up to 65507 bytes of data (65527 over IPv6). */
const PING_SLOTS = 16;
const PING_SLOT_SIZE = 65536;
/** ICMP destination unreachable codes (RFC 792, RFC 1812 section 5.2.7.1). */
const UNREACHABLE = { net: 0, host: 1, prohibited: 13 } as const;
/** ICMPv6 destination unreachable codes (RFC 4443 section 3.1). */
const UNREACHABLE6 = { noRoute: 0, prohibited: 1, address: 3 } as const;

/** A ping socket of one family: opened on first use, retried a while after it could not be. */
interface PingState {
  socket: PingSocket | null;
  retryAt: number;
  warned: boolean;
}

function sameBytes(a: ArrayLike<number>, b: ArrayLike<number>): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function ipv4Number(ip: IpAddress): number {
  const b = ip.bytes;
  return ((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0;
}

interface UdpFlow {
  socket: DgramSocket;
  guest: SocketAddress;
  timer: ReturnType<typeof setTimeout>;
  info: FlowInfo;
}

const DEFAULTS = { subnet: '10.0.2.0/24', gateway: '10.0.2.2', dns: '10.0.2.3', guest: '10.0.2.100' };
/** slirp4netns --enable-ipv6's addresses. */
const DEFAULTS6 = { prefix: 'fd00::/64', gateway: 2, dns: 3 };

function address(name: string, text: unknown): IpAddress {
  const ip = typeof text === 'string' ? parseIp(text) : null;
  if (!ip || ip.family !== 4) throw invalidOption(name, 'an IPv4 address', text);
  return ip;
}

/** The `ipv6` option, checked and filled in; null when off. */
function ipv6Options(given: unknown): { prefix: IpPrefix; gateway: IpAddress; dns: IpAddress } | null {
  if (given === undefined || given === false) return null;
  if (given !== true && (given === null || typeof given !== 'object')) throw invalidOption('ipv6', "a boolean or { prefix?, gateway?, dns? }", given);
  const o: GatewayIPv6Options = given === true ? {} : given as GatewayIPv6Options;
  const prefixText = o.prefix ?? DEFAULTS6.prefix;
  const prefix = typeof prefixText === 'string' ? parsePrefix(prefixText) : null;
  // SLAAC forms addresses from a /64 prefix and a 64-bit interface identifier (RFC 4862 section 5.5.3, RFC 2464 section 4).
  if (!prefix || prefix.address.family !== 6 || prefix.prefixLength !== 64 || isLinkLocalIPv6(prefix.address.bytes) || prefix.address.bytes[0] === 0xff) {
    throw invalidOption('ipv6.prefix', "an IPv6 /64 prefix like 'fd00::/64' (not link-local or multicast)", o.prefix);
  }
  const network = networkOf(prefix);
  const inPrefix = (name: 'gateway' | 'dns', host: number) => {
    const text = o[name];
    if (text === undefined) {
      const bytes = network.bytes.slice();
      bytes[15] = host;
      return { family: 6 as const, bytes, zone: 0 };
    }
    const ip = typeof text === 'string' ? parseIp(text) : null;
    if (!ip || ip.family !== 6 || ip.zone !== 0 || !prefixContains(prefix, ip)) throw invalidOption(`ipv6.${name}`, `an IPv6 address inside ${formatIp(network)}/64`, text);
    return ip;
  };
  const gateway = inPrefix('gateway', DEFAULTS6.gateway);
  const dns = inPrefix('dns', DEFAULTS6.dns);
  if (ipEquals(gateway, dns)) throw invalidOption('ipv6.dns', 'an address other than ipv6.gateway', formatIp(dns));
  return { prefix: { address: network, prefixLength: 64 }, gateway, dns };
}

/**
 * The names podman, Docker and Lima give the host, as sandboxes there
 * expect them: the gateway's addresses while host loopback is allowed (the
 * gateway address reaches the host's loopback then), NXDOMAIN otherwise (so
 * the host's resolver is not asked and cannot name some other machine).
 * `hosts` given by the user win.
 */
export const HOST_NAMES = ['host.containers.internal', 'host.docker.internal', 'host.lima.internal'] as const;

function hostNames(hostLoopback: boolean, addresses: string[], hosts: Record<string, string[]> | undefined): { hosts?: Record<string, string[]>; absent: string[] } {
  const given = hosts !== null && typeof hosts === 'object' ? new Set(Object.keys(hosts).map((n) => n.toLowerCase().replace(/\.$/, ''))) : new Set<string>();
  const names = HOST_NAMES.filter((n) => !given.has(n));
  // A bad `hosts` is passed on as it is, for the DNS server's TypeError.
  if (!hostLoopback || (hosts !== undefined && (hosts === null || typeof hosts !== 'object' || Array.isArray(hosts)))) return { hosts, absent: hostLoopback ? [] : names };
  return { hosts: { ...Object.fromEntries(names.map((n) => [n, addresses])), ...hosts }, absent: [] };
}

export class Gateway extends EventEmitter {
  readonly stack: Stack;
  readonly interface: Interface;
  readonly gatewayAddress: string;
  readonly dnsAddress: string;
  readonly guestAddress: string;
  readonly policy: EgressPolicy;
  readonly dns: DnsForwarder;
  /** Leases the guest address, with the gateway as router and DNS, and the MTU. */
  readonly dhcp: DhcpServer;
  /** Resolves once the gateway's own services (DNS, DHCP) and the `forwards` given listen; rejects if one cannot. */
  readonly ready: Promise<void>;
  /** The IPv6 addresses, or null without the `ipv6` option. */
  readonly ipv6: GatewayIPv6 | null;
  /** Sends the router advertisements (null without `ipv6`). */
  readonly routerAdvertiser: RouterAdvertiser | null;
  readonly #hostLoopback: boolean;
  readonly #forwardTable: ForwardTable;
  readonly #autoForwarders = new Set<AutoForwarder>();
  readonly #connectTimeout: number;
  readonly #udpIdle: number;
  readonly #pending = new Set<string>();
  /** Host sockets of held SYNs: connecting, or waiting for the sandbox to finish its handshake. */
  readonly #connecting = new Set<Socket>();
  readonly #tcp = new Set<TcpSplice>();
  readonly #udp = new Map<string, UdpFlow>();
  /** What host sockets (NAT flows and forwards) may feed the stack per event-loop turn. */
  readonly #hostBudget = new TurnBudget();
  /** Forwarded echoes by the sequence number the gateway gave them. */
  readonly #echoes = new Map<number, Echo>();
  #echoSeq = 0;
  readonly #ping: Record<4 | 6, PingState> = {
    4: { socket: null, retryAt: 0, warned: false },
    6: { socket: null, retryAt: 0, warned: false },
  };
  readonly #metrics: Omit<GatewayMetrics, 'hostBudgetTurns'> = {
    tcpOpened: 0, tcpOpen: 0, tcpRefused: 0, tcpUnreachable: 0, udpFlowsOpened: 0, udpFlowsOpen: 0,
    udpDatagramsOut: 0, udpDatagramsIn: 0, bytesOut: 0, bytesIn: 0, denied: 0,
    icmpEchoForwarded: 0, icmpEchoReplies: 0, icmpEchoAnswered: 0, icmpDropped: 0,
  };
  #closed = false;

  constructor(options: GatewayOptions) {
    super();
    if (options === null || typeof options !== 'object') throw invalidOption('options', 'an object', options);
    const subnet = typeof (options.subnet ?? DEFAULTS.subnet) === 'string' ? parsePrefix(options.subnet ?? DEFAULTS.subnet) : null;
    if (!subnet || subnet.address.family !== 4 || subnet.prefixLength > 30) throw invalidOption('subnet', "an IPv4 prefix like '10.0.2.0/24'", options.subnet);
    const gw = address('gateway', options.gateway ?? DEFAULTS.gateway);
    const dns = address('dns', options.dns ?? DEFAULTS.dns);
    const guest = address('guest', options.guest ?? DEFAULTS.guest);
    for (const [name, ip] of [['gateway', gw], ['dns', dns], ['guest', guest]] as const) {
      if (!prefixContains(subnet, ip)) throw invalidOption(name, `an address inside ${options.subnet ?? DEFAULTS.subnet}`, formatIp(ip));
    }
    for (const flag of ['hostLoopback', 'preserveSource'] as const) {
      if (options[flag] !== undefined && typeof options[flag] !== 'boolean') throw invalidOption(flag, 'a boolean', options[flag]);
    }
    for (const num of ['connectTimeout', 'udpIdleTimeout'] as const) {
      const v = options[num];
      if (v !== undefined && !(typeof v === 'number' && v > 0)) throw invalidOption(num, 'a positive number of milliseconds', v);
    }
    const v6 = ipv6Options(options.ipv6);
    if (v6 && options.link?.medium !== 'ethernet') throw invalidOption('ipv6', 'used with an Ethernet link (router advertisements need link-layer addresses)', options.ipv6);
    this.ipv6 = v6 && { prefix: `${formatIp(v6.prefix.address)}/64`, gateway: formatIp(v6.gateway), dns: formatIp(v6.dns) };
    this.gatewayAddress = formatIp(gw);
    this.dnsAddress = formatIp(dns);
    this.guestAddress = formatIp(guest);
    this.#hostLoopback = options.hostLoopback ?? false;
    this.#connectTimeout = options.connectTimeout ?? 10_000;
    this.#udpIdle = options.udpIdleTimeout ?? 60_000;
    // Checked before anything is created, so a bad one costs nothing.
    const auto = options.forwards === 'auto';
    if (options.forwards !== undefined && !auto && !Array.isArray(options.forwards)) throw invalidOption('forwards', "an array of forward options or 'auto'", options.forwards);
    if (auto && (options.autoForward === null || typeof options.autoForward !== 'object' || !options.autoForward.source)) {
      throw invalidOption('autoForward', "given with forwards: 'auto', naming its source (a stack, { netns }, { pid })", options.autoForward);
    }
    const forwards = auto ? [] : (options.forwards as ForwardOptions[] | undefined ?? []).map((f, i) => checkForward(f, this.guestAddress, `forwards[${i}]`));
    this.stack = createStack(options.stack);
    this.interface = this.stack.addInterface({
      link: options.link,
      ipv4: `${this.gatewayAddress}/${subnet.prefixLength}`,
      // The DNS address as a /128: the /64 route comes with the gateway address.
      ipv6: this.ipv6 ? [`${this.ipv6.gateway}/64`, `${this.ipv6.dns}/128`] : undefined,
      mtu: options.mtu,
    });
    const handler: GatewayHandler = {
      tcpSyn: (_iface, syn) => this.#tcpSyn(syn),
      udp: (iface, data, from, to) => this.#udpOut(iface, data, from, to),
      icmp: (iface, packet) => this.#icmpOut(iface, packet),
    };
    this.stack.setGateway(this.interface, handler);
    this.#forwardTable = new ForwardTable({
      stack: this.stack,
      iface: this.interface,
      guestAddress: this.guestAddress,
      gatewayAddress: this.gatewayAddress,
      subnet,
      ipv6: v6 && { prefix: v6.prefix, gateway: this.ipv6!.gateway },
      udpIdle: this.#udpIdle,
      preserveSource: options.preserveSource ?? true,
      hostBudget: this.#hostBudget,
    });
    this.stack.gatewayProxyArp(dns); // the DNS address is on no interface
    this.policy = options.policy instanceof EgressPolicy ? options.policy : new EgressPolicy(options.policy ?? {});
    // TCP queries reach the forwarder's listener on the DNS address through
    // lwIP; UDP ones come through #udpOut (lwIP sends UDP only from an
    // interface's own address).
    // The v6 DNS address is the interface's own, so lwIP delivers both
    // transports there to the forwarder's sockets.
    this.dns = new DnsForwarder({
      stack: this.stack,
      address: this.ipv6 ? [this.dnsAddress, this.ipv6.dns] : this.dnsAddress,
      policy: this.policy,
      resolver: options.resolver,
      ...hostNames(this.#hostLoopback, [this.gatewayAddress, ...(this.ipv6 ? [this.ipv6.gateway] : [])], options.hosts),
    });
    this.dhcp = new DhcpServer(this.stack, {
      interface: this.interface.name,
      serverAddress: this.gatewayAddress,
      subnet: options.subnet ?? DEFAULTS.subnet,
      guest: this.guestAddress,
      router: this.gatewayAddress,
      dns: [this.dnsAddress],
      mtu: this.interface.mtu,
    });
    this.routerAdvertiser = v6 ? new RouterAdvertiser(this.stack, this.interface, { prefix: v6.prefix, dns: [v6.dns], mtu: this.interface.mtu }) : null;
    this.ready = Promise.all([this.dns.listen(), this.dhcp.start()]).then(async () => {
      for (const f of forwards) await this.addForward(f);
      if (auto && !this.#closed) await this.autoForward(options.autoForward!).started;
      if (!this.#closed) this.routerAdvertiser?.start();
    });
    this.ready.catch(() => undefined);
    this.interface.on('down', (reason, error) => this.#linkDown(reason, error));
    this.interface.on('up', () => this.emit('link-up'));
  }

  /**
   * The sandbox's link lost its peer (the VM exited) or closed: nobody will
   * answer for its flows, so end them now instead of when they time out.
   * Host sockets are closed (FIN, or RST where data was left unread, as
   * gateway.close() does), held SYNs dropped, UDP flows closed, the
   * connections of port forwards reset (their listeners stay, for the VM's
   * next life, unless the link closed for good) and the DHCP lease released
   * (a restarted VM gets its old address back). Emits 'link-down'.
   */
  #linkDown(reason: 'peer' | 'error' | 'local', error?: Error): void {
    if (this.#closed) return;
    for (const splice of this.#tcp) splice.destroy();
    for (const host of this.#connecting) host.destroy();
    this.#pending.clear();
    for (const key of [...this.#udp.keys()]) this.#udpExpire(key);
    // The rest (forwards' connections, DNS over TCP) are the stack's own.
    this.stack.resetConnections('ENETDOWN');
    this.dhcp.releaseAll();
    if (!this.interface.linkOpen) for (const f of this.#forwardTable.list) this.removeForward(f);
    this.emit('link-down', reason, error);
  }

  /** Whether `address` is one the gateway stands for itself (v4 or v6 gateway or DNS address). */
  #own(address: string): boolean {
    return address === this.gatewayAddress || address === this.dnsAddress || address === this.ipv6?.gateway || address === this.ipv6?.dns;
  }

  /** Whether the policy lets the sandbox reach `address` (at `port`: TCP, UDP); counts a denial. */
  #allowed(protocol: 'tcp' | 'udp' | 'icmp', address: string, port?: number): boolean {
    if (this.#own(address)) return true; // governed by hostLoopback / served here
    const decision = this.policy.decide({ protocol, address, port });
    if (!decision.allowed) {
      this.#metrics.denied++;
      const to = port === undefined ? address : `${address}:${port}`;
      this.emit('denied', { protocol, to, reason: decision.reason, rule: decision.rule });
    }
    return decision.allowed;
  }

  /** Where a sandbox flow to `to` goes on the host, or null when it may not. */
  #target(to: SocketAddress): { host: string; port: number } | null {
    if (to.address === this.gatewayAddress) return this.#hostLoopback ? { host: '127.0.0.1', port: to.port } : null;
    if (to.address === this.ipv6?.gateway) return this.#hostLoopback ? { host: '::1', port: to.port } : null;
    if (to.address === this.dnsAddress || to.address === this.ipv6?.dns) return null; // only DNS is served there
    return { host: to.address, port: to.port };
  }

  #tcpSyn(syn: HeldSyn): void {
    const key = `${syn.from.address}:${syn.from.port}>${syn.to.address}:${syn.to.port}`;
    if (this.#pending.has(key)) {
      syn.reject('drop'); // a retransmitted SYN while the host connect is under way
      return;
    }
    const target = this.#allowed('tcp', syn.to.address, syn.to.port) ? this.#target(syn.to) : null;
    if (!target || this.#closed) {
      if (target === null && this.#own(syn.to.address)) this.#metrics.denied++;
      syn.reject('reset');
      return;
    }
    this.#pending.add(key);
    const host = netConnect({ host: target.host, port: target.port, allowHalfOpen: true });
    this.#connecting.add(host);
    host.once('close', () => this.#connecting.delete(host));
    // One timer for both waits, each #connectTimeout long: the host connect,
    // then the sandbox's handshake.
    let connected = false;
    const timer = setTimeout(() => {
      if (connected) abandon();
      else host.destroy(Object.assign(new Error('connect ETIMEDOUT'), { code: 'ETIMEDOUT' }));
    }, this.#connectTimeout);
    const failed = (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      this.#pending.delete(key);
      if (err.code === 'ECONNREFUSED') {
        this.#metrics.tcpRefused++;
        syn.reject('reset');
      } else {
        this.#metrics.tcpUnreachable++;
        syn.reject('host-unreachable');
      }
    };
    // The sandbox got its SYN-ACK; if it never completes the handshake (it
    // gave up, or its ACKs are lost), or the host side fails meanwhile,
    // close the host side and forget the flow, so a later SYN of the same
    // 4-tuple is new.
    const abandon = () => {
      clearTimeout(timer);
      this.#pending.delete(key);
      this.#connecting.delete(host);
      host.destroy();
    };
    host.once('error', failed);
    host.once('connect', () => {
      connected = true;
      timer.refresh();
      timer.unref?.();
      host.off('error', failed);
      host.on('error', abandon);
      host.setNoDelay(true);
      syn.accept((conn) => {
        clearTimeout(timer);
        host.off('error', abandon);
        this.#pending.delete(key);
        this.#connecting.delete(host);
        if (host.destroyed) {
          // The host side failed during the handshake: reset the sandbox's.
          this.stack.tcpForget(conn);
          conn.abort();
          return;
        }
        this.#splice(conn, host, syn);
      }, abandon);
    });
  }

  #splice(conn: TcpConnection, host: Socket, syn: HeldSyn): void {
    const info: FlowInfo = {
      protocol: 'tcp',
      from: `${syn.from.address}:${syn.from.port}`,
      to: `${syn.to.address}:${syn.to.port}`,
      bytesIn: 0,
      bytesOut: 0,
    };
    this.#metrics.tcpOpened++;
    this.#metrics.tcpOpen++;
    const splice = new TcpSplice(this.stack, conn, host, [info, this.#metrics], () => {
      this.#tcp.delete(splice);
      this.#metrics.tcpOpen--;
      this.emit('flow-close', info);
    }, this.#hostBudget);
    this.#tcp.add(splice);
    this.emit('flow-open', info);
  }

  #udpOut(iface: Interface, data: Uint8Array, from: SocketAddress, to: SocketAddress): void {
    if (to.address === this.dnsAddress && to.port === 53) {
      void this.dns.respond(data, { transport: 'udp' }).then((reply) => {
        const src = parseIp(this.dnsAddress);
        const dst = parseIp(from.address);
        if (reply && src && dst && !this.#closed) this.stack.gatewayUdpSend(iface, reply, src, 53, dst, from.port);
      });
      return;
    }
    // A reply to a forwarded client goes back through its forward, not out by NAT.
    if (this.#forwardTable.udpFromGuest(data, from, to)) return;
    const target = this.#allowed('udp', to.address, to.port) ? this.#target(to) : null;
    if (!target || this.#closed) {
      // #allowed counted a policy denial; the gateway's own addresses are counted here.
      if (target === null && this.#own(to.address)) this.#metrics.denied++;
      return;
    }
    const key = `${from.address}:${from.port}`;
    let flow = this.#udp.get(key);
    if (!flow) {
      const socket = createDgram(to.family === 6 ? 'udp6' : 'udp4');
      const info: FlowInfo = { protocol: 'udp', from: key, to: `${to.address}:${to.port}`, bytesIn: 0, bytesOut: 0 };
      const guest = from;
      const created: UdpFlow = { socket, guest, info, timer: setTimeout(() => this.#udpExpire(key), this.#udpIdle) };
      flow = created;
      socket.on('message', (msg, rinfo) => {
        // Replies appear to come from where the sandbox sent: the gateway's
        // address for the host's loopback.
        const remote = !this.#hostLoopback ? rinfo.address
          : rinfo.address === '127.0.0.1' ? this.gatewayAddress
          : rinfo.address === '::1' && this.ipv6 ? this.ipv6.gateway
          : rinfo.address;
        const remoteIp = parseIp(remote);
        const guestIp = parseIp(guest.address);
        if (!remoteIp || !guestIp || this.#closed) return;
        created.info.bytesIn += msg.length;
        this.#metrics.bytesIn += msg.length;
        this.#metrics.udpDatagramsIn++;
        this.#touch(created, key);
        this.stack.gatewayUdpSend(iface, msg, remoteIp, rinfo.port, guestIp, guest.port);
      });
      socket.on('error', () => this.#udpExpire(key));
      this.#udp.set(key, created);
      this.#metrics.udpFlowsOpened++;
      this.#metrics.udpFlowsOpen++;
      this.emit('flow-open', info);
    }
    this.#touch(flow, key);
    flow.info.bytesOut += data.length;
    this.#metrics.bytesOut += data.length;
    this.#metrics.udpDatagramsOut++;
    flow.socket.send(data, target.port, target.host);
  }

  #touch(flow: UdpFlow, key: string): void {
    clearTimeout(flow.timer);
    flow.timer = setTimeout(() => this.#udpExpire(key), this.#udpIdle);
    flow.timer.unref?.();
  }

  #udpExpire(key: string): void {
    const flow = this.#udp.get(key);
    if (!flow) return;
    this.#udp.delete(key);
    clearTimeout(flow.timer);
    flow.socket.close();
    this.#metrics.udpFlowsOpen--;
    this.emit('flow-close', flow.info);
  }

  // ---------------------------------------------------------------- ICMP echo

  /** An ICMP packet from the sandbox to an address that is not the stack's (or a router solicitation). */
  #icmpOut(iface: Interface, packet: Uint8Array): void {
    if (packet.length > 0 && packet[0]! >> 4 === 6) {
      this.#icmp6Out(iface, packet);
      return;
    }
    const ip = parseIPv4Packet(packet);
    if (!ip || ip.protocol !== IpProtocol.ICMP || this.#closed) return;
    const echo = parseEcho(ip.payload, { family: 4 });
    // Only echo requests are carried; the sandbox's other ICMP (errors about
    // flows the gateway terminates itself) ends here.
    if (!echo || echo.kind !== 'request' || !echo.checksumOk) return;
    const to = formatIp(ip.dst);
    if (to === this.dnsAddress) {
      this.#metrics.icmpEchoAnswered++;
      this.#icmpIn(iface, buildEchoReply({ family: 4, id: echo.id, seq: echo.seq, payload: echo.payload }), ip.dst, ip.src);
      return;
    }
    const first = ip.dst.bytes[0]!;
    if (first === 0 || first >= 224) return; // "this network", multicast, broadcast: nobody to forward to
    if (!this.#allowed('icmp', to)) {
      this.#unreachable(iface, packet, ip, UNREACHABLE.prohibited);
      return;
    }
    this.#forwardEcho(iface, ip.src, ip.dst, echo, (code) => this.#unreachable(iface, packet, ip, code === 'ENETUNREACH' ? UNREACHABLE.net : UNREACHABLE.host));
  }

  /**
   * Sends an allowed echo request on through the ping socket of its family
   * under a sequence number of the gateway's, or drops and counts it (no
   * ping socket, too many outstanding, a full socket buffer). A send that
   * fails ENETUNREACH or EHOSTUNREACH calls `unreachable` with that code.
   */
  #forwardEcho(iface: Interface, guest: IpAddress, to: IpAddress, echo: EchoMessage, unreachable: (code: string) => void): void {
    const socket = this.#pingSocket(to.family);
    if (!socket || this.#echoes.size >= MAX_ECHOES) {
      this.#metrics.icmpDropped++;
      return;
    }
    let seq = this.#echoSeq;
    while (this.#echoes.has(seq)) seq = (seq + 1) & 0xffff;
    this.#echoSeq = (seq + 1) & 0xffff;
    let sent: boolean;
    try {
      // Identifier 0: the kernel puts the socket's own there, and the checksum.
      sent = socket.send(buildEchoRequest({ family: to.family, id: 0, seq, payload: echo.payload }), to.family === 4 ? ipv4Number(to) : to.bytes);
    } catch (err) {
      this.#metrics.icmpDropped++;
      const code = (err as NativeError).code;
      if (code === 'ENETUNREACH' || code === 'EHOSTUNREACH') unreachable(code);
      return;
    }
    if (!sent) {
      this.#metrics.icmpDropped++;
      return;
    }
    const timer = setTimeout(() => this.#echoes.delete(seq), ECHO_TIMEOUT);
    timer.unref?.();
    this.#echoes.set(seq, { iface, guest, to, id: echo.id, seq: echo.seq, timer });
    this.#metrics.icmpEchoForwarded++;
  }

  /**
   * ICMPv6 from the sandbox: router solicitations (answered with an
   * advertisement), echoes to outside addresses (refused by the policy with
   * unreachable code 1, else forwarded like IPv4's). The gateway's own
   * addresses are lwIP's to answer.
   */
  #icmp6Out(iface: Interface, packet: Uint8Array): void {
    const ip = parseIPv6Packet(packet);
    if (!ip || ip.upperProtocol !== IpProtocol.ICMPv6 || ip.fragment || this.#closed) return;
    const message = ip.upperPayload;
    if (message[0] === Icmpv6Type.RouterSolicitation) {
      // RFC 4861 section 6.1.1: hop limit 255, a valid checksum, no source
      // link-layer option from the unspecified address.
      const rs = ip.hopLimit === 255 ? parseRouterSolicitation(message, { src: ip.src, dst: ip.dst }) : null;
      const unspecified = ip.src.bytes.every((b) => b === 0);
      if (rs && !(unspecified && rs.sourceLinkLayerAddress)) this.routerAdvertiser?.solicited();
      return;
    }
    const echo = parseEcho(message, { src: ip.src, dst: ip.dst });
    if (!echo || echo.kind !== 'request' || !echo.checksumOk || !this.ipv6) return;
    // Multicast, link-local (whose zone is the sandbox's link), unspecified: nobody outside to forward to.
    if (ip.dst.bytes[0] === 0xff || isLinkLocalIPv6(ip.dst.bytes) || ip.dst.bytes.every((b) => b === 0)) return;
    if (!this.#allowed('icmp', formatIp(ip.dst))) {
      this.#unreachable6(iface, packet, ip, UNREACHABLE6.prohibited);
      return;
    }
    this.#forwardEcho(iface, ip.src, ip.dst, echo, (code) =>
      this.#unreachable6(iface, packet, ip, code === 'ENETUNREACH' ? UNREACHABLE6.noRoute : UNREACHABLE6.address),
    );
  }

  /** ICMPv6 destination unreachable to the sandbox from the v6 gateway address, quoting what fits 1280 bytes (RFC 4443 section 3.1). */
  #unreachable6(iface: Interface, packet: Uint8Array, ip: IPv6Packet, code: number): void {
    const from = parseIp(this.ipv6!.gateway)!;
    const quoted = packet.subarray(0, Math.min(packet.length, 1280 - 40 - 8));
    const body = new Uint8Array(4 + quoted.length);
    body.set(quoted, 4);
    const message = buildIcmpMessage({ family: 6, type: Icmpv6Type.DestinationUnreachable, code, body, src: from, dst: ip.src });
    if (!this.#closed) this.stack.gatewayIpSend(iface, message, from, ip.src, IpProtocol.ICMPv6);
  }

  /** The gateway's ping socket for `family`, opened on first use; null where ping sockets are not allowed. */
  #pingSocket(family: 4 | 6): PingSocket | null {
    const state = this.#ping[family];
    if (state.socket || Date.now() < state.retryAt) return state.socket;
    try {
      const Ping = loadNative().PingSocket;
      if (!Ping) throw Object.assign(new Error(`ping sockets are not supported on ${process.platform}`), { code: 'ERR_NOT_SUPPORTED' });
      const socket = new Ping(family, PING_SLOTS, PING_SLOT_SIZE, (count) => this.#echoReplies(socket, family, count), () => this.#closePing(family));
      socket.unref(); // waiting for replies is no reason to keep the process alive
      state.socket = socket;
    } catch (err) {
      state.retryAt = Date.now() + PING_RETRY;
      if (!state.warned) {
        state.warned = true;
        process.emitWarning(
          `tcpip-ts gateway: echo requests to outside IPv${family} hosts are dropped (counted in icmpDropped): ${(err as Error).message}. ` +
            'Allow ping sockets for this process\'s group with sysctl net.ipv4.ping_group_range.',
          { code: 'TCPIP_TS_NO_PING_SOCKET' },
        );
      }
    }
    return state.socket;
  }

  /** Replies in a ping socket's slots: each goes back to the guest that asked, as it asked, from the address it asked. */
  #echoReplies(socket: PingSocket, family: 4 | 6, count: number): void {
    if (this.#closed) return;
    const rx = new Uint8Array(socket.rxBuffer);
    const addresses = socket.rxAddresses;
    for (let i = 0; i < count; i++) {
      // The kernel has checked the reply's checksum (and its identifier).
      const reply = parseEcho(rx.subarray(i * PING_SLOT_SIZE, i * PING_SLOT_SIZE + socket.rxLengths[i]!), { family });
      const echo = reply?.kind === 'reply' ? this.#echoes.get(reply.seq) : undefined;
      if (!reply || !echo || echo.to.family !== family) continue;
      const from = family === 4 ? addresses[i] === ipv4Number(echo.to) : sameBytes(addresses.subarray(i * 16, i * 16 + 16), echo.to.bytes);
      if (!from) continue;
      this.#echoes.delete(reply.seq);
      clearTimeout(echo.timer);
      this.#metrics.icmpEchoReplies++;
      // ICMPv6's checksum covers the pseudo header: lwIP sends the message as given.
      const out = buildEchoReply(family === 4
        ? { family, id: echo.id, seq: echo.seq, payload: reply.payload }
        : { family, id: echo.id, seq: echo.seq, payload: reply.payload, src: echo.to, dst: echo.guest });
      this.stack.gatewayIpSend(echo.iface, out, echo.to, echo.guest, family === 4 ? IpProtocol.ICMP : IpProtocol.ICMPv6);
    }
  }

  /** Closes the ping socket of `family` (both without) and forgets the echoes that went through it. */
  #closePing(family?: 4 | 6): void {
    for (const f of family ? [family] : ([4, 6] as const)) {
      this.#ping[f].socket?.close();
      this.#ping[f].socket = null;
    }
    for (const [seq, echo] of this.#echoes) {
      if (family && echo.to.family !== family) continue;
      clearTimeout(echo.timer);
      this.#echoes.delete(seq);
    }
  }

  /** Destination unreachable to the sandbox from the gateway, quoting the IP header and 8 bytes (RFC 792). */
  #unreachable(iface: Interface, packet: Uint8Array, ip: IPv4Packet, code: number): void {
    const quoted = packet.subarray(0, Math.min(packet.length, ip.headerLength + 8));
    const body = new Uint8Array(4 + quoted.length); // 4 unused bytes, then the quote
    body.set(quoted, 4);
    const message = buildIcmpMessage({ family: 4, type: Icmpv4Type.DestinationUnreachable, code, body });
    this.#icmpIn(iface, message, parseIp(this.gatewayAddress)!, ip.src);
  }

  #icmpIn(iface: Interface, message: Uint8Array, from: IpAddress, to: IpAddress): void {
    if (!this.#closed) this.stack.gatewayIpSend(iface, message, from, to, IpProtocol.ICMP);
  }

  // ---------------------------------------------------------------- forwards (forwards.ts)

  /** Forwards a host port (or a range: `count`) into the sandbox; resolves once it listens. */
  async addForward(options: ForwardOptions): Promise<Forward> {
    if (this.#closed) throw Object.assign(new Error('gateway is closed'), { code: 'ERR_GATEWAY_CLOSED' });
    return this.#forwardTable.add(options);
  }

  /** Stops a forward: its ports close and its connections end. */
  removeForward(forward: Forward): boolean {
    return this.#forwardTable.remove(forward);
  }

  get forwards(): Forward[] {
    return this.#forwardTable.list;
  }

  /**
   * Forwards every TCP and UDP port the sandbox listens on (within
   * `options.ports`) while it listens; 'auto-forward' events say what it
   * adds, removes and skips. Stopped by close() or the result's stop().
   */
  autoForward(options: AutoForwardOptions): AutoForwarder {
    if (this.#closed) throw Object.assign(new Error('gateway is closed'), { code: 'ERR_GATEWAY_CLOSED' });
    const auto = new AutoForwarder(this.#forwardTable, this.guestAddress, options, (e) => this.emit('auto-forward', e));
    this.#autoForwarders.add(auto);
    return auto;
  }

  metrics(): GatewayMetrics {
    return { ...this.#metrics, hostBudgetTurns: this.#hostBudget.exhaustedTurns };
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const auto of this.#autoForwarders) auto.stop();
    this.#forwardTable.close();
    for (const splice of this.#tcp) splice.destroy();
    for (const host of this.#connecting) host.destroy();
    for (const key of [...this.#udp.keys()]) this.#udpExpire(key);
    this.#closePing();
    this.routerAdvertiser?.stop();
    void this.dns.close().catch(() => undefined);
    void Promise.resolve(this.dhcp.close()).catch(() => undefined);
    this.stack.close();
  }
}

export function createGateway(options: GatewayOptions): Gateway {
  return new Gateway(options);
}
