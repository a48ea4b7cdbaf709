/**
 * The gateway's port forwards: host ports (TCP and UDP, one port or a
 * range, on an IPv4 or IPv6 host address or a dual-stack `::`) carried into
 * the sandbox.
 *
 * Source preservation (on by default): the gateway writes every frame the
 * sandbox sees, so a forwarded connection reaches the sandbox from its
 * client's own address and port, not from the gateway's, and the sandbox's
 * logs, allow-lists and rate limits see who really connects. TCP: the
 * gateway's stack opens the inner connection bound to the client's address
 * (tt_gw_tcp_bind_foreign); the sandbox answers it through its default
 * route, the gateway's interface, which takes packets for every address, so
 * the answers land on that connection. UDP: datagrams are written into the
 * sandbox from the client's address and port, and the sandbox's replies to
 * that address:port are caught before NAT (udpFromGuest) and sent back from
 * the forward's host socket.
 *
 * A client on the host's loopback appears as the gateway's address (the
 * host, as the sandbox sees it): 127.0.0.1 means the sandbox itself there.
 * Clients the sandbox could not answer through the gateway come from the
 * gateway's address as before: one of another IP family than the guest
 * address, and addresses on the sandbox's own link (its subnet, its /64,
 * link-local), which it would look up by ARP or ND instead of routing.
 *
 * Automatic forwards (AutoForwarder) follow what the sandbox listens on.
 */
import { createSocket as createDgram, type Socket as DgramSocket } from 'node:dgram';
import { createServer as createNetServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { readFile, stat } from 'node:fs/promises';
import { spawn, type ChildProcess } from 'node:child_process';
import type { Interface } from '../core/interface.js';
import type { SocketAddress } from '../core/session.js';
import type { TcpConnection } from '../core/tcp.js';
import { invalidOption } from '../core/errors.js';
import { formatIp, isLinkLocalIPv6, parseIp, prefixContains, type IpAddress, type IpPrefix } from '../wire/address.js';
import type { Stack } from '../node/stack.js';
import { TcpSocket } from '../node/socket.js';
import type { UdpSocket } from '../node/dgram.js';
import type { TurnBudget } from './turn-budget.js';

/** A host port (or range of ports) forwarded into the sandbox. */
export interface ForwardOptions {
  protocol?: 'tcp' | 'udp';
  /** Host port to listen on (0 picks one; the chosen port is in the result). The first of the range with `count`. */
  hostPort: number;
  /** Host address to listen on: IPv4, IPv6, '0.0.0.0' (every IPv4 address) or '::' (every address, IPv4 too). Default '127.0.0.1'. */
  hostAddress?: string;
  /** The sandbox port, the first of the range with `count`. */
  guestPort: number;
  /** Default: the gateway's guest address. */
  guestAddress?: string;
  /** Consecutive ports: hostPort..hostPort+count-1 go to guestPort..guestPort+count-1. Default 1. */
  count?: number;
}

export interface Forward {
  readonly protocol: 'tcp' | 'udp';
  readonly hostAddress: string;
  readonly hostPort: number;
  readonly guestAddress: string;
  readonly guestPort: number;
  /** How many consecutive ports (1 for a single port). */
  readonly count: number;
}

/** What the forwards need from their gateway. */
export interface ForwardContext {
  readonly stack: Stack;
  readonly iface: Interface;
  readonly guestAddress: string;
  readonly gatewayAddress: string;
  readonly subnet: IpPrefix;
  readonly ipv6: { prefix: IpPrefix; gateway: string } | null;
  readonly udpIdle: number;
  /** Show the sandbox the client's own address (default true). */
  readonly preserveSource: boolean;
  /** Shared with the gateway's NAT flows: host bytes into the stack per turn. */
  readonly hostBudget?: TurnBudget;
}

const PROTOCOLS = ['tcp', 'udp'] as const;

/**
 * Parses the CLI's -p: [HOSTADDR:]HOSTPORT[-END]:GUESTPORT[-END][/tcp|/udp],
 * HOSTADDR an IPv4 address or an IPv6 one in brackets ([::1], [::]).
 */
export function parseForward(text: string): ForwardOptions {
  const m = /^(?:(\d{1,3}(?:\.\d{1,3}){3}|\[[0-9A-Fa-f:.]+\]):)?(\d{1,5})(?:-(\d{1,5}))?:(\d{1,5})(?:-(\d{1,5}))?(?:\/(tcp|udp))?$/.exec(text);
  const expected = '[HOSTADDR:]HOSTPORT[-END]:GUESTPORT[-END][/udp], HOSTADDR IPv4 or [IPv6]';
  if (!m) throw invalidOption('forward', expected, text);
  const hostAddress = m[1]?.replace(/^\[(.*)\]$/, '$1');
  if (hostAddress !== undefined && !parseIp(hostAddress)) throw invalidOption('forward', `${expected} (bad address ${hostAddress})`, text);
  const hostPort = Number(m[2]);
  const guestPort = Number(m[4]);
  const protocol = (m[6] as 'tcp' | 'udp' | undefined) ?? 'tcp';
  if (m[3] === undefined && m[5] === undefined) return { hostAddress, hostPort, guestPort, protocol };
  const hostEnd = Number(m[3] ?? m[2]);
  const guestEnd = Number(m[5] ?? m[4]);
  if (hostEnd < hostPort || guestEnd < guestPort) throw invalidOption('forward', `${expected} with ranges low-high`, text);
  if (hostEnd - hostPort !== guestEnd - guestPort) {
    throw invalidOption('forward', `${expected} with ranges of the same length (${hostEnd - hostPort + 1} host ports, ${guestEnd - guestPort + 1} guest ports)`, text);
  }
  return { hostAddress, hostPort, guestPort, protocol, count: hostEnd - hostPort + 1 };
}

/** Validates forward options (TypeError naming the bad one) and fills in the defaults. */
export function checkForward(options: ForwardOptions, guestAddress: string, name = 'forward'): Required<ForwardOptions> {
  if (options === null || typeof options !== 'object') throw invalidOption(name, 'an object', options);
  const protocol = options.protocol ?? 'tcp';
  if (protocol !== 'tcp' && protocol !== 'udp') throw invalidOption('protocol', "'tcp' or 'udp'", protocol);
  const count = options.count ?? 1;
  if (!Number.isInteger(count) || count < 1 || count > 65535) throw invalidOption('count', 'an integer from 1 to 65535', count);
  const checkPort = (port: string, v: unknown, min: number) => {
    const max = 65535 - count + 1;
    if (!Number.isInteger(v) || (v as number) < min || (v as number) > max) {
      throw invalidOption(port, `an integer from ${min} to ${max}${count > 1 ? ` (a range of ${count} ports)` : ''}`, v);
    }
  };
  checkPort('hostPort', options.hostPort, count > 1 ? 1 : 0);
  checkPort('guestPort', options.guestPort, 1);
  const hostAddress = options.hostAddress ?? '127.0.0.1';
  const host = typeof hostAddress === 'string' ? parseIp(hostAddress) : null;
  if (!host || host.zone !== 0) throw invalidOption('hostAddress', 'an IP address', hostAddress);
  const guest = options.guestAddress ?? guestAddress;
  const guestIp = typeof guest === 'string' ? parseIp(guest) : null;
  if (!guestIp) throw invalidOption('guestAddress', 'an IP address', guest);
  return { protocol, hostAddress: formatIp(host), hostPort: options.hostPort, guestAddress: formatIp(guestIp), guestPort: options.guestPort, count };
}

/** Whether two host addresses share ports: the same address, or a wildcard that covers the other. */
function hostsOverlap(a: string, b: string): boolean {
  if (a === b || a === '::' || b === '::') return true;
  const fa = a.includes(':') ? 6 : 4;
  const fb = b.includes(':') ? 6 : 4;
  return fa === fb && (a === '0.0.0.0' || b === '0.0.0.0');
}

function inUse(message: string, address: string, port: number): Error {
  return Object.assign(new Error(message), { code: 'EADDRINUSE', syscall: 'listen', address, port });
}

/** "tcp 127.0.0.1:8000-8010->9000-9010": a forward as the ready line and errors show it. */
export function describeForward(f: Forward): string {
  const host = f.hostAddress.includes(':') ? `[${f.hostAddress}]` : f.hostAddress;
  const range = (p: number) => (f.count > 1 ? `${p}-${p + f.count - 1}` : `${p}`);
  return `${f.protocol} ${host}:${range(f.hostPort)}->${range(f.guestPort)}`;
}

interface UdpReply {
  outer: DgramSocket;
  client: { address: string; port: number };
  timer: ReturnType<typeof setTimeout>;
  /** Restarts the idle timer: traffic either way keeps the mapping. */
  touch(): void;
}

/** The forwards of one gateway. */
export class ForwardTable {
  readonly #ctx: ForwardContext;
  readonly #forwards = new Map<Forward, () => void>();
  /** Preserved UDP clients, by the sandbox's reply: `guestPort>clientAddress:clientPort`. */
  readonly #udpReplies = new Map<string, UdpReply>();
  #closed = false;

  constructor(ctx: ForwardContext) {
    this.#ctx = ctx;
  }

  get list(): Forward[] {
    return [...this.#forwards.keys()];
  }

  /** Opens a forward (every port of its range, or none); resolves once all listen. */
  async add(options: ForwardOptions): Promise<Forward> {
    const f = checkForward(options, this.#ctx.guestAddress);
    for (const other of this.#forwards.keys()) {
      if (other.protocol !== f.protocol || !hostsOverlap(other.hostAddress, f.hostAddress) || f.hostPort === 0) continue;
      const first = Math.max(other.hostPort, f.hostPort);
      if (first <= Math.min(other.hostPort + other.count, f.hostPort + f.count) - 1) {
        throw inUse(`forward ${f.protocol} port ${first} on ${f.hostAddress} overlaps the forward ${describeForward(other)}`, f.hostAddress, first);
      }
    }
    const stops: (() => void)[] = [];
    let hostPort = f.hostPort;
    try {
      for (let i = 0; i < f.count; i++) {
        const port = f.hostPort === 0 ? 0 : f.hostPort + i;
        const opened = f.protocol === 'tcp'
          ? await this.#tcp(f.hostAddress, port, f.guestAddress, f.guestPort + i)
          : await this.#udp(f.hostAddress, port, f.guestAddress, f.guestPort + i);
        stops.push(opened.stop);
        if (i === 0) hostPort = opened.port;
        if (this.#closed) throw Object.assign(new Error('gateway is closed'), { code: 'ERR_GATEWAY_CLOSED' });
      }
    } catch (err) {
      for (const stop of stops) stop();
      throw err;
    }
    const forward: Forward = { ...f, hostPort };
    this.#forwards.set(forward, () => {
      for (const stop of stops) stop();
    });
    return forward;
  }

  remove(forward: Forward): boolean {
    const stop = this.#forwards.get(forward);
    if (!stop) return false;
    this.#forwards.delete(forward);
    stop();
    return true;
  }

  close(): void {
    this.#closed = true;
    for (const f of [...this.#forwards.keys()]) this.remove(f);
  }

  /** Listens on one host port; rejects with the port named when it is taken. */
  async #listen(open: (done: (err?: Error) => void) => void, protocol: 'tcp' | 'udp', address: string, port: number): Promise<void> {
    await new Promise<void>((resolve, reject) => open((err) => (err ? reject(err) : resolve()))).catch((err: NodeJS.ErrnoException) => {
      const shown = address.includes(':') ? `[${address}]` : address;
      if (err.code === 'EADDRINUSE') throw inUse(`forward ${protocol} ${shown}:${port}: the host port is in use (another program or socket holds it; choose another host port)`, address, port);
      if (err.code === 'EACCES') {
        throw Object.assign(new Error(`forward ${protocol} ${shown}:${port}: ports below 1024 need CAP_NET_BIND_SERVICE (or root)`), { code: 'EACCES', address, port });
      }
      throw Object.assign(new Error(`forward ${protocol} ${shown}:${port}: ${err.message}`), { code: err.code, address, port });
    });
  }

  /**
   * The address the sandbox should see a client at, or null to use the
   * gateway's own (see the file comment).
   */
  #source(client: string, guest: IpAddress): IpAddress | null {
    if (!this.#ctx.preserveSource) return null;
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(client);
    const ip = parseIp(mapped ? mapped[1]! : client);
    if (!ip || ip.family !== guest.family) return null;
    const b = ip.bytes;
    if (ip.family === 4) {
      if (b[0] === 127) return parseIp(this.#ctx.gatewayAddress);
      if (b[0] === 0 || b[0]! >= 224 || prefixContains(this.#ctx.subnet, ip)) return null;
      return ip;
    }
    const v6 = this.#ctx.ipv6;
    if (b.every((x, i) => x === (i === 15 ? 1 : 0))) return v6 ? parseIp(v6.gateway) : null;
    if (!v6 || isLinkLocalIPv6(b) || b[0] === 0xff || b.every((x) => x === 0) || prefixContains(v6.prefix, ip)) return null;
    return ip;
  }

  async #tcp(hostAddress: string, hostPort: number, guestAddress: string, guestPort: number): Promise<{ port: number; stop: () => void }> {
    const { stack } = this.#ctx;
    const guest = parseIp(guestAddress)!;
    const live = new Set<{ outer: Socket; inner: TcpSocket }>();
    const server: Server = createNetServer({ allowHalfOpen: true }, (outer) => {
      const inner = new TcpSocket(stack, { allowHalfOpen: true });
      const from = outer.remoteAddress ? this.#source(outer.remoteAddress, guest) : null;
      let conn: TcpConnection;
      try {
        try {
          conn = stack.tcpConnect(guest, guestPort, from ? { address: from, port: outer.remotePort, foreign: true } : undefined);
        } catch (err) {
          // The client's address:port is busy in our stack (a 5-tuple in use): the old way, from the gateway's address.
          if (!from) throw err;
          conn = stack.tcpConnect(guest, guestPort);
        }
      } catch {
        outer.resetAndDestroy ? outer.resetAndDestroy() : outer.destroy();
        return;
      }
      inner._attach(conn, false);
      const pair = { outer, inner };
      live.add(pair);
      if (this.#ctx.hostBudget) this.#ctx.hostBudget.pipe(outer, inner);
      else outer.pipe(inner);
      inner.pipe(outer);
      inner.on('error', () => (outer.resetAndDestroy ? outer.resetAndDestroy() : outer.destroy()));
      outer.on('error', () => inner.destroy());
      outer.once('close', () => live.delete(pair));
    });
    await this.#listen((done) => {
      server.once('error', done);
      server.listen({ port: hostPort, host: hostAddress, ipv6Only: false }, () => {
        server.off('error', done);
        done();
      });
    }, 'tcp', hostAddress, hostPort);
    return {
      port: (server.address() as AddressInfo).port,
      stop: () => {
        server.close();
        for (const { outer, inner } of live) {
          outer.destroy();
          inner.destroy();
        }
      },
    };
  }

  async #udp(hostAddress: string, hostPort: number, guestAddress: string, guestPort: number): Promise<{ port: number; stop: () => void }> {
    const { stack, iface } = this.#ctx;
    const guest = parseIp(guestAddress)!;
    const outer = createDgram({ type: hostAddress.includes(':') ? 'udp6' : 'udp4', ipv6Only: false });
    // Clients the sandbox sees at the gateway's address: one stack socket each.
    const nat = new Map<string, { socket: UdpSocket; timer: ReturnType<typeof setTimeout> }>();
    const preserved = new Set<string>();
    const idle = this.#ctx.udpIdle;
    const expireNat = (key: string) => {
      const m = nat.get(key);
      if (!m) return;
      nat.delete(key);
      clearTimeout(m.timer);
      m.socket.close();
    };
    const expireReply = (key: string) => {
      const r = this.#udpReplies.get(key);
      if (!r || r.outer !== outer) return;
      this.#udpReplies.delete(key);
      preserved.delete(key);
      clearTimeout(r.timer);
    };
    const arm = (fn: () => void) => {
      const t = setTimeout(fn, idle);
      t.unref?.();
      return t;
    };
    outer.on('message', (msg, rinfo) => {
      const from = this.#source(rinfo.address, guest);
      if (from) {
        const key = `${guestPort}>${formatIp(from)}:${rinfo.port}`;
        const r = this.#udpReplies.get(key);
        // Another client already shows the sandbox this address:port (two
        // loopback clients of one port, v4 and v6): the new one goes the old way.
        if (!r || (r.outer === outer && r.client.address === rinfo.address && r.client.port === rinfo.port)) {
          if (r) {
            r.touch();
          } else {
            const entry: UdpReply = {
              outer,
              client: { address: rinfo.address, port: rinfo.port },
              timer: arm(() => expireReply(key)),
              touch: () => {
                clearTimeout(entry.timer);
                entry.timer = arm(() => expireReply(key));
              },
            };
            this.#udpReplies.set(key, entry);
            preserved.add(key);
          }
          stack.gatewayUdpSend(iface, msg, from, rinfo.port, guest, guestPort);
          return;
        }
      }
      const key = `${rinfo.address}:${rinfo.port}`;
      let m = nat.get(key);
      if (!m) {
        const socket = stack.createSocket(guest.family === 6 ? 'udp6' : 'udp4');
        socket.on('message', (reply: Buffer) => outer.send(reply, rinfo.port, rinfo.address));
        m = { socket, timer: arm(() => expireNat(key)) };
        nat.set(key, m);
      }
      clearTimeout(m.timer);
      m.timer = arm(() => expireNat(key));
      m.socket.send(msg, guestPort, guestAddress);
    });
    outer.on('error', () => undefined); // a send to a vanished client; the socket stays
    await this.#listen((done) => {
      outer.once('error', done);
      outer.bind(hostPort, hostAddress, () => {
        outer.off('error', done);
        done();
      });
    }, 'udp', hostAddress, hostPort);
    return {
      port: outer.address().port,
      stop: () => {
        outer.close();
        for (const key of [...nat.keys()]) expireNat(key);
        for (const key of [...preserved]) expireReply(key);
      },
    };
  }

  /**
   * A datagram from the sandbox (before NAT): a reply to a preserved UDP
   * client goes back through its forward's host socket. True when taken.
   */
  udpFromGuest(data: Uint8Array, from: SocketAddress, to: SocketAddress): boolean {
    if (this.#udpReplies.size === 0) return false;
    const key = `${from.port}>${to.address}:${to.port}`;
    const r = this.#udpReplies.get(key);
    if (!r) return false;
    r.touch();
    r.outer.send(data, r.client.port, r.client.address);
    return true;
  }
}

// ---------------------------------------------------------------- automatic forwards

/** A socket the sandbox listens on. */
export interface Listening {
  protocol: 'tcp' | 'udp';
  address: string;
  port: number;
}

/** Where an AutoForwarder reads what the sandbox listens on. */
export type ListeningSource =
  /** An in-process stack (its listeners and bound UDP sockets). */
  | { listening(): Listening[] }
  /** A network namespace: /run/netns/NAME or /proc/PID/ns/net. */
  | { netns: string }
  /** A process inside the sandbox's namespace. */
  | { pid: number }
  | (() => Listening[] | Promise<Listening[]>);

export interface AutoForwardOptions {
  /** What the sandbox listens on (required). */
  source: ListeningSource;
  /** The ports to follow: '8000-8100,3000' (both protocols), '53/udp', ... Default every port. */
  ports?: string;
  /** Host address of the forwards. Default '127.0.0.1'. */
  hostAddress?: string;
  /** How often the sandbox's sockets are read, in ms. Default 250. */
  interval?: number;
}

/** An automatic forward's change: added, removed, or skipped (the host port is taken). */
export interface AutoForwardEvent {
  action: 'add' | 'remove' | 'skip';
  protocol: 'tcp' | 'udp';
  port: number;
  /** Why it was skipped. */
  reason?: string;
}

export type PortRanges = Record<'tcp' | 'udp', [number, number][]>;

/** Parses '8000-8100,3000/tcp,53/udp' (no protocol: both); '' or undefined: every port. */
export function parsePortRanges(text: string | undefined, name = 'ports'): PortRanges {
  const ranges: PortRanges = { tcp: [], udp: [] };
  if (text === undefined || text === '' || text === 'all') {
    for (const p of PROTOCOLS) ranges[p].push([1, 65535]);
    return ranges;
  }
  if (typeof text !== 'string') throw invalidOption(name, "port ranges like '8000-8100,53/udp'", text);
  for (const part of text.split(',')) {
    const m = /^(\d{1,5})(?:-(\d{1,5}))?(?:\/(tcp|udp))?$/.exec(part.trim());
    const lo = m ? Number(m[1]) : NaN;
    const hi = m ? Number(m[2] ?? m[1]) : NaN;
    if (!m || lo < 1 || hi > 65535 || hi < lo) throw invalidOption(name, "port ranges like '8000-8100,3000,53/udp' (ports 1-65535, low-high)", text);
    for (const p of m[3] ? [m[3] as 'tcp' | 'udp'] : PROTOCOLS) ranges[p].push([lo, hi]);
  }
  return ranges;
}

/** How long a skipped port waits before it is tried again (ms). */
const SKIP_RETRY = 5_000;

/** TCP_LISTEN in /proc/net/tcp{,6}; TCP_CLOSE (an unconnected socket) in udp{,6}. */
const PROC_STATE = { tcp: '0A', udp: '07' } as const;

/** The local address:port of /proc/net/{tcp,udp}{,6} lines in `state` (kernel: each 32-bit word in host order, little-endian here). */
export function parseProcNet(text: string, protocol: 'tcp' | 'udp'): Listening[] {
  const out: Listening[] = [];
  for (const line of text.split('\n').slice(1)) {
    const fields = line.trim().split(/\s+/);
    if (fields.length < 4 || fields[3] !== PROC_STATE[protocol]) continue;
    const [hex, portHex] = fields[1]!.split(':');
    if (!hex || !portHex || (hex.length !== 8 && hex.length !== 32)) continue;
    const bytes = new Uint8Array(hex.length / 2);
    for (let w = 0; w < hex.length / 8; w++) {
      for (let i = 0; i < 4; i++) bytes[w * 4 + i] = parseInt(hex.slice(w * 8 + (3 - i) * 2, w * 8 + (3 - i) * 2 + 2), 16);
    }
    out.push({ protocol, address: formatIp({ family: bytes.length === 4 ? 4 : 6, bytes, zone: 0 }), port: parseInt(portHex, 16) });
  }
  return out;
}

/** Reads /proc/PID/net/* of a process in the sandbox's namespace (as pasta reads the namespace's /proc/net). */
async function readProcNet(pid: number): Promise<Listening[]> {
  const out: Listening[] = [];
  for (const [file, protocol] of [['tcp', 'tcp'], ['tcp6', 'tcp'], ['udp', 'udp'], ['udp6', 'udp']] as const) {
    const text = await readFile(`/proc/${pid}/net/${file}`, 'utf8').catch(() => ''); // tcp6 is missing without IPv6
    out.push(...parseProcNet(text, protocol));
  }
  return out;
}

/**
 * Follows what the sandbox listens on and keeps a forward open (host port =
 * guest port, at hostAddress) for each TCP and UDP port in the ranges:
 * opened within `interval` of the sandbox starting to listen, closed within
 * `interval` of it stopping. A host port that is taken is skipped and
 * reported once (tried again every few seconds), never taken over. Only
 * sockets the gateway can reach are followed: on the wildcard address or
 * the guest address, not on the sandbox's loopback.
 */
export class AutoForwarder {
  readonly #table: ForwardTable;
  readonly #guest: string;
  readonly #ranges: PortRanges;
  readonly #hostAddress: string;
  readonly #interval: number;
  readonly #report: (e: AutoForwardEvent) => void;
  readonly #read: () => Promise<Listening[]>;
  readonly #active = new Map<string, Forward>();
  /** Skipped ports: when to try again. */
  readonly #skipped = new Map<string, number>();
  #timer: ReturnType<typeof setTimeout> | null = null;
  #holder: ChildProcess | null = null;
  #stopped = false;
  /** Resolves after the first reading has been applied. */
  readonly started: Promise<void>;

  /** @hidden Made by the gateway (Gateway.autoForward), not by users. */
  constructor(table: ForwardTable, guestAddress: string, options: AutoForwardOptions, report: (e: AutoForwardEvent) => void) {
    if (options === null || typeof options !== 'object') throw invalidOption('autoForward', 'an object with a source', options);
    this.#table = table;
    this.#guest = guestAddress;
    this.#ranges = parsePortRanges(options.ports, 'autoForward.ports');
    const hostAddress = options.hostAddress ?? '127.0.0.1';
    if (typeof hostAddress !== 'string' || !parseIp(hostAddress)) throw invalidOption('autoForward.hostAddress', 'an IP address', hostAddress);
    this.#hostAddress = hostAddress;
    const interval = options.interval ?? 250;
    if (typeof interval !== 'number' || !(interval >= 10 && interval <= 60_000)) throw invalidOption('autoForward.interval', 'a number of ms from 10 to 60000', interval);
    this.#interval = interval;
    this.#report = report;
    this.#read = this.#reader(options.source);
    this.started = this.#poll();
    this.started.catch(() => undefined);
  }

  #reader(source: ListeningSource): () => Promise<Listening[]> {
    if (typeof source === 'function') return async () => source();
    if (source !== null && typeof source === 'object') {
      if ('listening' in source && typeof source.listening === 'function') return async () => source.listening();
      if ('pid' in source) {
        if (!Number.isInteger(source.pid) || source.pid <= 0) throw invalidOption('autoForward.source.pid', 'a process id', source.pid);
        return () => readProcNet(source.pid);
      }
      if ('netns' in source) {
        if (typeof source.netns !== 'string' || source.netns === '') throw invalidOption('autoForward.source.netns', 'a path like /run/netns/NAME', source.netns);
        return this.#netnsReader(source.netns);
      }
    }
    throw invalidOption('autoForward.source', 'a stack, { netns }, { pid } or a function', source);
  }

  /**
   * A namespace file names no process, so one is started inside it
   * (nsenter, then sh: the same process, nothing forked) and its /proc
   * entry read; it is ready once its namespace is the target's. It waits on
   * a pipe from us, so it ends when we do, even killed (no process is left
   * holding the namespace).
   */
  #netnsReader(netns: string): () => Promise<Listening[]> {
    let ready: Promise<number> | null = null;
    const start = async (): Promise<number> => {
      const want = await stat(netns);
      const child = spawn('nsenter', [`--net=${netns}`, 'sh', '-c', 'read _'], { stdio: ['pipe', 'ignore', 'ignore'] });
      this.#holder = child;
      child.unref();
      (child.stdin as unknown as { unref?: () => void }).unref?.();
      const exited = new Promise<never>((_, reject) => {
        child.once('error', reject);
        child.once('exit', (code) => reject(new Error(`nsenter --net=${netns} exited (${code})`)));
      });
      exited.catch(() => undefined);
      for (let i = 0; i < 200; i++) {
        const now = await stat(`/proc/${child.pid}/ns/net`).catch(() => null);
        if (now && now.ino === want.ino && now.dev === want.dev) return child.pid!;
        await Promise.race([new Promise((r) => setTimeout(r, 10)), exited]);
      }
      throw new Error(`nsenter --net=${netns} did not enter the namespace`);
    };
    return async () => {
      ready ??= start();
      ready.catch(() => (ready = null));
      return readProcNet(await ready);
    };
  }

  #wanted(l: Listening): boolean {
    if (l.address !== '0.0.0.0' && l.address !== '::' && l.address !== this.#guest) return false;
    return this.#ranges[l.protocol].some(([lo, hi]) => l.port >= lo && l.port <= hi);
  }

  async #poll(): Promise<void> {
    if (this.#stopped) return;
    try {
      const now = Date.now();
      const want = new Set<string>();
      for (const l of await this.#read()) if (this.#wanted(l)) want.add(`${l.protocol}/${l.port}`);
      for (const [key, forward] of this.#active) {
        if (want.has(key)) continue;
        this.#active.delete(key);
        if (this.#table.remove(forward)) this.#report({ action: 'remove', protocol: forward.protocol, port: forward.guestPort });
      }
      for (const key of this.#skipped.keys()) if (!want.has(key)) this.#skipped.delete(key);
      for (const key of want) {
        if (this.#active.has(key) || this.#stopped) continue;
        const retry = this.#skipped.get(key);
        if (retry !== undefined && now < retry) continue;
        const [protocol, port] = key.split('/') as ['tcp' | 'udp', string];
        try {
          const f = await this.#table.add({ protocol, hostPort: Number(port), hostAddress: this.#hostAddress, guestPort: Number(port), guestAddress: this.#guest });
          if (this.#stopped) {
            this.#table.remove(f);
            return;
          }
          this.#active.set(key, f);
          this.#skipped.delete(key);
          this.#report({ action: 'add', protocol, port: Number(port) });
        } catch (err) {
          if (retry === undefined) this.#report({ action: 'skip', protocol, port: Number(port), reason: (err as Error).message });
          this.#skipped.set(key, now + SKIP_RETRY);
        }
      }
    } finally {
      if (!this.#stopped) {
        this.#timer = setTimeout(() => void this.#poll().catch(() => undefined), this.#interval);
        this.#timer.unref?.();
      }
    }
  }

  /** The forwards it holds open now. */
  get forwards(): Forward[] {
    return [...this.#active.values()];
  }

  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    for (const f of this.#active.values()) this.#table.remove(f);
    this.#active.clear();
    this.#holder?.kill('SIGKILL');
    this.#holder = null;
  }
}
