/**
 * A Stack: one lwIP instance with its interfaces, sockets and tables.
 * Callback-shaped; src/node/ adds the Node stream, net and dgram faces.
 */
import { type WasmExports, MEDIUM_ETHERNET, MEDIUM_IP, NETIF_CHECKSUM_DISABLE_ALL, NETIF_CHECKSUM_ENABLE_ALL, OFFLOAD_CSUM, OFFLOAD_TSO } from './abi.js';
import { type Clock, realClock } from './clock.js';
import { Emitter } from './emitter.js';
import { ERR, invalidOption, lwipError, stackClosedError, systemError, type SystemError } from './errors.js';
import { Interface, randomMac } from './interface.js';
import { checkMtu, ETHERNET_HEADER, type InPlaceReceiver, type Link } from './link.js';
import { getModule } from './module.js';
import { type SessionEvent, type SessionHost, type SocketAddress, WasmSession } from './session.js';
import { TcpConnection, TcpListener } from './tcp.js';
import { UdpEndpoint } from './udp.js';
import {
  formatIPv4, formatIPv6, formatMac, type IpAddress, type IpPrefix, ipEquals, networkOf, parseIp, parseMac,
  parsePrefix, prefixContains, prefixMask,
} from '../wire/address.js';
import { buildEchoRequest, parseEchoReply } from './ping.js';

export interface StackOptions {
  /** Time source; a ManualClock in tests. Default: the real clock. */
  clock?: Clock;
  /** Seconds before a dynamic ARP entry expires. Default 300. */
  arpMaxAge?: number;
  /** Forward packets between interfaces (router). Default false. */
  forwarding?: boolean;
  /** DNS servers (up to 4) used by resolve(). DHCP may add its own. */
  dnsServers?: string[];
  /** A compiled module or wasm bytes to use instead of the packaged one. */
  module?: WebAssembly.Module;
  /**
   * Bytes of memory the stack may use for lwIP's heap: connections, queued
   * data, frames (1 MiB to 2 GiB). At the budget, writes wait ('drain'
   * follows), UDP sends fail with ENOBUFS and new connections are refused;
   * an eighth of it (at least 256 KiB) stays for ACKs, retransmissions and
   * timers. Default 64 MiB.
   */
  memoryBudget?: number;
  /** TCP congestion control of this stack's connections: 'cubic' (RFC 9438) or 'newreno' (RFC 5681/6582). Default 'cubic'. */
  congestionControl?: 'cubic' | 'newreno';
}

/** The default memoryBudget: 64 MiB. */
export const DEFAULT_MEMORY_BUDGET = 64 * 1024 * 1024;

export interface InterfaceOptions {
  link: Link;
  /** MAC address (ethernet links). Default: random, locally administered. */
  mac?: string;
  /** 'a.b.c.d/len'. */
  ipv4?: string;
  /** Default gateway (IPv4 or IPv6): adds a default route through this interface. */
  gateway?: string;
  /** Static IPv6 address(es), 'x::y/len'. Ethernet interfaces also get a link-local address. */
  ipv6?: string | string[];
  /** Defaults to the link's MTU; may not exceed it. */
  mtu?: number;
  /** Take the IPv4 address, gateway and DNS servers from DHCP. */
  dhcp?: boolean;
  /** Take IPv6 addresses from router advertisements (SLAAC). */
  slaac?: boolean;
  /** Skip checksum generation and checks (for links that cannot corrupt, e.g. in-process cables). */
  checksumOffload?: boolean;
}

export interface Route {
  prefix: string;
  gateway: string | null;
  interface: string;
  metric: number;
}

export interface RouteOptions {
  prefix: string;
  gateway?: string;
  interface?: Interface | string;
  metric?: number;
}

export interface Neighbor {
  family: 4 | 6;
  address: string;
  mac: string;
  interface: string | null;
  state: 'incomplete' | 'reachable' | 'stale' | 'delay' | 'probe' | 'static';
  /** Seconds since the entry was last confirmed (IPv4 only). */
  age?: number;
}

export type ProtocolCounters = Record<'xmit' | 'recv' | 'fw' | 'drop' | 'chkerr' | 'lenerr' | 'memerr' | 'rterr' | 'proterr' | 'opterr' | 'err' | 'cachehit', number>;
const PROTOCOLS = ['link', 'etharp', 'ipFrag', 'ip', 'icmp', 'udp', 'tcp', 'ip6', 'icmp6', 'ip6Frag', 'nd6'] as const;
const PROTO_FIELDS = ['xmit', 'recv', 'fw', 'drop', 'chkerr', 'lenerr', 'memerr', 'rterr', 'proterr', 'opterr', 'err', 'cachehit'] as const;

export interface StackStats {
  protocols: Record<(typeof PROTOCOLS)[number], ProtocolCounters>;
  interfaces: Record<string, Interface['counters'] & { mib: ReturnType<Interface['mib']> }>;
  tcpConnections: number;
  /** What TCP loss recovery did since the stack started (all connections). */
  tcpLoss: TcpLossCounters;
  memoryBytes: number;
  heapBytes: number;
  /** Bytes of the heap in use now (live allocations), and the budget. */
  memoryInUse: number;
  memoryBudget: number;
  /** True while the stack is at its budget: writes wait, sends fail with ENOBUFS, new connections are refused. */
  memoryTight: boolean;
  /** SYN cookies sent (a listener's backlog was full), ACKs they completed into connections, and ACKs to a listener that carried no valid cookie. */
  synCookies: { sent: number; accepted: number; rejected: number };
  /** TIME-WAIT connections that a new SYN for the same 4-tuple reopened (RFC 6191: its sequence number was above the old connection's). */
  timeWaitReopened: number;
}

export interface TcpLossCounters {
  /** Retransmission timeouts (RFC 6298). */
  timeouts: number;
  /** Fast recoveries entered (SACK/RACK loss detection, or three duplicate ACKs without SACK). */
  recoveries: number;
  /** Segments retransmitted during fast recovery. */
  retransmits: number;
  /** Tail loss probes sent (RFC 8985). */
  probes: number;
  /** Segments the peer reported in SACK blocks. */
  sacked: number;
  /** Times a peer dropped data it had SACKed (the scoreboard is then forgotten). */
  reneged: number;
}

type StackEvents = { error: (err: Error) => void; close: () => void };

/**
 * A TCP SYN a gateway-mode interface holds until the host decides: accept()
 * makes lwIP answer it (onConnection gets the connection once the
 * handshake completes); reject() answers RST or ICMP unreachable.
 */
export interface HeldSyn {
  readonly from: SocketAddress;
  readonly to: SocketAddress;
  /**
   * onFailed runs when lwIP cannot take the SYN (no memory for a listener):
   * it has been answered RST, and the host should drop what it prepared.
   */
  accept(onConnection: (conn: TcpConnection) => void, onFailed?: () => void): void;
  /** 'drop' frees the SYN unanswered (a retransmission of a flow in progress). */
  reject(how: 'reset' | 'host-unreachable' | 'port-unreachable' | 'prohibited' | 'drop'): void;
}

/** What a gateway does with traffic for addresses that are not the stack's. */
export interface GatewayHandler {
  tcpSyn(iface: Interface, syn: HeldSyn): void;
  udp(iface: Interface, data: Uint8Array, from: SocketAddress, to: SocketAddress): void;
  icmp?(iface: Interface, packet: Uint8Array): void;
}

const REJECT_CODES = { reset: 0, 'host-unreachable': 1, 'port-unreachable': 3, prohibited: 13, drop: 255 } as const;

const defer: (fn: () => void) => void =
  typeof setImmediate === 'function' ? (fn) => setImmediate(fn) : (fn) => setTimeout(fn, 0);

/**
 * Frames one stack feeds to lwIP per event-loop turn. The rest wait for a
 * later turn (setImmediate), so a flooded stack shares the loop with its
 * neighbours and with host I/O instead of running until its queue is empty.
 * 256 frames are a few milliseconds of work at worst.
 */
const FRAMES_PER_TURN = 256;
/** The wasm side's input queue per interface (RX_QUEUE_MAX in glue_netif.c): beyond it frames are dropped. */
const RX_QUEUE_MAX = 4096;

/** How long an accepted SYN waits for the sandbox to finish its handshake (lwIP gives up sooner). */
const GATEWAY_HANDSHAKE_MS = 60_000;
/**
 * How long a gateway listener with no handshake left stays for the next
 * flow to the same address:port: short connections to one server (the
 * common case) then reuse it instead of making and closing a listener
 * each (a PCB, bind and listen in lwIP, its JS state, then its close).
 */
const GATEWAY_LISTENER_LINGER_MS = 1000;

interface GatewayListener {
  listener: TcpListener;
  waiting: Map<string, { onConnection: (conn: TcpConnection) => void; since: number }>;
  /** When the last handshake it waited for completed; -1 while one waits. */
  idleSince: number;
}

const IP_PROTO_ICMP = 1;
const IP_PROTO_ICMPV6 = 58;

interface PendingPing {
  resolve: (rtt: number) => void;
  reject: (err: Error) => void;
  sentAt: number;
  timer: unknown;
  address: string;
}

export class Stack extends Emitter<StackEvents> implements SessionHost {
  readonly clock: Clock;
  readonly session: WasmSession;
  #interfaces = new Map<number, Interface>();
  #nextInterface = 0;
  #rxQueue: { iface: Interface; frame: Uint8Array }[] = [];
  #flushScheduled = false;
  #nextId = 1;
  #tcp = new Map<number, TcpConnection>();
  #listeners = new Map<number, TcpListener>();
  #gatewayListeners = new Map<string, GatewayListener>();
  /** The sweep of idle gateway listeners (GATEWAY_LISTENER_LINGER_MS), while one is armed. */
  #gatewaySweep: unknown = null;
  #udp = new Map<number, UdpEndpoint>();
  #dns = new Map<number, { resolve: (a: SocketAddress | null) => void }>();
  #ping = new Map<number, PendingPing>();
  #pingPcb = { 4: 0, 6: 0 };
  #pingRawId = 0;
  #pingIdent = 0;
  #pingSeq = 0;
  #forwarding = false;
  #closed = false;
  #memoryBudget: number;
  #dirtyLinks = new Set<Interface>();
  /** Open sockets and servers that keep the process alive (see ref()). */
  #refs = new Set<object>();

  constructor(options: StackOptions = {}) {
    super();
    if (options === null || typeof options !== 'object') throw invalidOption('options', 'an object', options);
    const { clock = realClock, arpMaxAge = 300, forwarding = false, dnsServers = [], module, memoryBudget = DEFAULT_MEMORY_BUDGET, congestionControl = 'cubic' } = options;
    if (typeof memoryBudget !== 'number' || !Number.isInteger(memoryBudget) || memoryBudget < 1024 * 1024 || memoryBudget > 2 ** 31) {
      throw invalidOption('memoryBudget', 'an integer from 1048576 (1 MiB) to 2147483648 (2 GiB) bytes', memoryBudget);
    }
    if (congestionControl !== 'cubic' && congestionControl !== 'newreno') throw invalidOption('congestionControl', "'cubic' or 'newreno'", congestionControl);
    if (typeof clock?.now !== 'function' || typeof clock.setTimer !== 'function') throw invalidOption('clock', 'a Clock', clock);
    if (!Number.isInteger(arpMaxAge) || arpMaxAge < 1 || arpMaxAge > 65535) throw invalidOption('arpMaxAge', 'an integer from 1 to 65535 (seconds)', arpMaxAge);
    if (typeof forwarding !== 'boolean') throw invalidOption('forwarding', 'a boolean', forwarding);
    if (!Array.isArray(dnsServers) || dnsServers.length > 4) throw invalidOption('dnsServers', 'an array of at most 4 addresses', dnsServers);
    const servers = dnsServers.map((s, i) => parseIp(String(s)) ?? (() => { throw invalidOption(`dnsServers[${i}]`, 'an IP address', s); })());
    this.clock = clock;
    this.session = new WasmSession(module ?? getModule(), clock, this);
    // The stack's secrets (ISN key, LWIP_RAND key: wasm/src/glue_random.c)
    // come from the host's CSPRNG once, here; the copy in wasm memory that
    // carried them in is wiped.
    const seed = new Uint8Array(32);
    globalThis.crypto.getRandomValues(seed);
    this.session.run((x) => {
      const p = x.tt_malloc(seed.length);
      if (p === 0) throw Object.assign(new Error('out of memory in stack'), { code: 'ENOMEM' });
      this.session.u8.set(seed, p);
      x.tt_mem_set_budget(memoryBudget >>> 0);
      x.tt_init(arpMaxAge, p);
      this.session.u8.fill(0, p, p + seed.length);
      x.tt_free(p);
      x.tt_tcp_set_cc(congestionControl === 'newreno' ? 0 : 1);
    });
    seed.fill(0);
    this.#memoryBudget = memoryBudget;
    this.forwarding = forwarding;
    servers.forEach((ip, i) => this.#setDnsServer(i, ip));
    const ident = new Uint16Array(1);
    globalThis.crypto.getRandomValues(ident);
    this.#pingIdent = ident[0]!;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Marks handle (a socket or server) as keeping the Node process alive while
   * it is open, like Node's own handles; unref(handle) undoes it. The stack's
   * timer is ref'd while any handle is.
   */
  ref(handle: object): void {
    this.#refs.add(handle);
    this.session.setKeepAlive(true);
  }

  unref(handle: object): void {
    this.#refs.delete(handle);
    if (this.#refs.size === 0) this.session.setKeepAlive(false);
  }

  #id(): number {
    const id = this.#nextId;
    this.#nextId = (this.#nextId % 0x7fffffff) + 1;
    return id;
  }

  #live(): void {
    if (this.#closed || !this.session.alive) throw stackClosedError(this.session.failed ?? undefined);
  }

  // ---------------------------------------------------------------- interfaces

  addInterface(options: InterfaceOptions): Interface {
    this.#live();
    if (options === null || typeof options !== 'object') throw invalidOption('options', 'an object', options);
    const { link } = options;
    if (!link || typeof link.send !== 'function' || typeof link.attach !== 'function') throw invalidOption('link', 'a Link', link);
    const mtu = options.mtu ?? link.mtu;
    checkMtu(mtu, 'mtu');
    if (mtu > link.mtu) throw invalidOption('mtu', `at most the link's MTU (${link.mtu})`, mtu);
    const ethernet = link.medium === 'ethernet';
    let mac: Uint8Array | null = null;
    if (ethernet) {
      if (options.mac !== undefined) {
        mac = typeof options.mac === 'string' ? parseMac(options.mac) : null;
        if (!mac) throw invalidOption('mac', "a MAC address like '02:00:00:00:00:01'", options.mac);
      } else {
        mac = randomMac();
      }
    }
    let ipv4: IpPrefix | null = null;
    if (options.ipv4 !== undefined) {
      ipv4 = typeof options.ipv4 === 'string' ? parsePrefix(options.ipv4) : null;
      if (!ipv4 || ipv4.address.family !== 4 || !options.ipv4.includes('/')) throw invalidOption('ipv4', "an IPv4 address with prefix length like '10.0.0.1/24'", options.ipv4);
    }
    const ipv6List = options.ipv6 === undefined ? [] : Array.isArray(options.ipv6) ? options.ipv6 : [options.ipv6];
    const ipv6 = ipv6List.map((text, i) => {
      const p = typeof text === 'string' ? parsePrefix(text) : null;
      if (!p || p.address.family !== 6) throw invalidOption(Array.isArray(options.ipv6) ? `ipv6[${i}]` : 'ipv6', "an IPv6 address with prefix length like 'fd00::1/64'", text);
      return p;
    });
    let gateway: IpAddress | null = null;
    if (options.gateway !== undefined) {
      gateway = typeof options.gateway === 'string' ? parseIp(options.gateway) : null;
      if (!gateway) throw invalidOption('gateway', 'an IP address', options.gateway);
    }
    for (const flag of ['dhcp', 'slaac', 'checksumOffload'] as const) {
      if (options[flag] !== undefined && typeof options[flag] !== 'boolean') throw invalidOption(flag, 'a boolean', options[flag]);
    }

    const s = this.session;
    const macPtr = s.scratch(8);
    if (mac) s.u8.set(mac, macPtr);
    const handle = s.run((x) => x.tt_netif_add(ethernet ? MEDIUM_ETHERNET : MEDIUM_IP, mtu, macPtr));
    if (handle === 0) throw systemError('ENOMEM', 'addInterface');
    const index = s.run((x) => x.tt_netif_index(handle));
    const name = `${ethernet ? 'eth' : 'tun'}${this.#nextInterface++}`;
    const iface = new Interface(s, handle, index, name, link, link.medium, mtu, mac ? formatMac(mac) : null, options.dhcp === true,
      (i) => this.#removeInterface(i));
    this.#interfaces.set(handle, iface);

    if (options.checksumOffload) s.run((x) => x.tt_netif_set_checksums(handle, NETIF_CHECKSUM_DISABLE_ALL));
    else s.run((x) => x.tt_netif_set_checksums(handle, NETIF_CHECKSUM_ENABLE_ALL));
    // A device that offloads decides what is left to lwIP (its frames may
    // carry partial checksums, which no setting of ours could check).
    const caps = link.capabilities;
    const offloads = (caps?.checksumOffload ? OFFLOAD_CSUM : 0) | (caps?.tcpSegmentation ? OFFLOAD_TSO : 0);
    if (offloads) s.run((x) => x.tt_netif_set_offloads(handle, offloads));
    if (ipv4) {
      const mask = prefixMask(4, ipv4.prefixLength);
      const gw4 = gateway?.family === 4 ? gateway.bytes : new Uint8Array(4);
      s.run((x) => x.tt_netif_set_ip4(handle, u32(ipv4.address.bytes), u32(mask), u32(gw4)));
      this.#addRoute(networkOf(ipv4), ipv4.prefixLength, null, iface, 0);
    }
    for (const p of ipv6) {
      s.writeSockaddr(0, p.address, 0);
      const slot = s.run((x) => x.tt_netif_add_ip6(handle));
      if (slot < 0) throw lwipError(slot, 'addInterface', formatIPv6(p.address.bytes));
      this.#addRoute(networkOf(p), p.prefixLength, null, iface, 0);
    }
    if (gateway) {
      const any: IpAddress = { family: gateway.family, bytes: new Uint8Array(gateway.family === 4 ? 4 : 16), zone: 0 };
      this.#addRoute(any, 0, gateway, iface, 0);
    }
    if (options.slaac) s.run((x) => x.tt_netif_set_ip6_autoconfig(handle, 1));
    s.run((x) => x.tt_netif_set_up(handle, 1));
    if (link.attachInPlace) link.attachInPlace(this.#inPlace(iface));
    else link.attach((frame) => this.#receive(iface, frame));
    this.#watchLink(iface);
    if (options.dhcp) {
      const err = s.run((x) => x.tt_netif_dhcp_start(handle));
      if (err !== 0) throw lwipError(err, 'dhcp');
    }
    return iface;
  }

  get interfaces(): Interface[] {
    return [...this.#interfaces.values()];
  }

  #interfaceByName(name: string): Interface | undefined {
    for (const i of this.#interfaces.values()) if (i.name === name) return i;
    return undefined;
  }

  /** Follows the link's lifecycle onto the interface (Interface 'down'/'up'). */
  #watchLink(iface: Interface): void {
    const link = iface.link;
    if (typeof link.on !== 'function') return;
    const onDown = (reason: 'peer' | 'error', error?: Error) => iface._setLink(false, reason, error);
    const onUp = () => iface._setLink(true);
    const onClose = (reason: 'local' | 'peer' | 'error', error?: Error) => {
      if (iface.removed) return;
      iface.linkOpen = false;
      iface._setLink(false, reason, error);
    };
    link.on('down', onDown);
    link.on('up', onUp);
    link.on('close', onClose);
    iface.onUnwatch = () => {
      link.off?.('down', onDown);
      link.off?.('up', onUp);
      link.off?.('close', onClose);
    };
  }

  #removeInterface(iface: Interface): void {
    if (this.session.alive) iface.onRelease?.();
    iface.removed = true;
    iface.onUnwatch?.();
    this.#interfaces.delete(iface.handle);
    iface.link.close();
    if (this.session.alive) {
      this.session.run((x) => {
        x.tt_route_remove_netif(iface.handle);
        x.tt_netif_remove(iface.handle);
      });
    }
  }

  // ---------------------------------------------------------------- frames

  #receive(iface: Interface, frame: Uint8Array): void {
    if (iface.removed || this.#closed || !this.session.alive) {
      iface.counters.rxDropped.down++;
      return;
    }
    const len = frame.length;
    if (len === 0 || len > 0xffff) {
      iface.counters.rxDropped.badLength++;
      return;
    }
    iface.counters.rxFrames++;
    iface.counters.rxBytes += len;
    // Straight into a pbuf when lwIP is idle (one copy); otherwise keep a
    // copy in arrival order until the flush.
    if (this.session.busy || this.#rxQueue.length > 0) {
      this.#rxQueue.push({ iface, frame: frame.slice() });
    } else if (!this.#copyIn(iface, frame)) {
      return;
    }
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      defer(this.#flushLater);
    }
  }

  /**
   * Slots for a link that reads frames straight into this stack's memory:
   * pbufs reserved in advance (RESERVE at a time), filled by the link, then
   * trimmed and queued for the next flush. One copy from the kernel to lwIP.
   */
  #inPlace(iface: Interface): InPlaceReceiver {
    const RESERVE = 64;
    const s = this.session;
    // A pbuf holds at most 65535 bytes: at MTU 65520 that still fits an
    // untagged Ethernet frame (65534).
    // A link with GSO delivers frames beyond its MTU (its maxFrame).
    const slotSize = Math.min(0xffff, Math.max(iface.link.capabilities?.maxFrame ?? 0, iface.mtu + (iface.medium === 'ethernet' ? ETHERNET_HEADER + 4 : 0)));
    // The reserved pbufs and where their payloads are, in fixed arrays with
    // views of every length made once: this runs for every frame read, and
    // fresh typed arrays per frame (five, each with its own ArrayBuffer) were
    // a quarter of what the gateway allocated in a request/response run,
    // hence of its scavenges, the p99's largest pauses.
    const pbufs = new Uint32Array(RESERVE);
    const targets = new Uint32Array(RESERVE);
    const targetViews = Array.from({ length: RESERVE + 1 }, (_, n) => targets.subarray(0, n));
    let reserved = 0;
    let want = 0;
    let out = 0;
    let committing = 0;
    const reserve = (x: WasmExports) => x.tt_rx_reserve(want, slotSize, out);
    const commitCall = (x: WasmExports) => x.tt_rx_commit(iface.handle, out, out + committing * 4, committing);
    const release = (x: WasmExports) => x.tt_rx_release(out, reserved);
    const topUp = () => {
      want = RESERVE - reserved;
      if (want <= 0) return;
      out = s.scratch(want * 8);
      const got = s.run(reserve);
      const dv = s.dv;
      for (let i = 0; i < got; i++) {
        pbufs[reserved + i] = dv.getUint32(out + 8 * i, true);
        targets[reserved + i] = dv.getUint32(out + 8 * i + 4, true);
      }
      reserved += got;
    };
    iface.onRelease = () => {
      if (reserved === 0 || !s.alive) return;
      out = s.scratch(reserved * 4);
      new Uint32Array(s.u8.buffer, out, reserved).set(pbufs.subarray(0, reserved));
      s.run(release);
      reserved = 0;
    };
    const none = { memory: new Uint8Array(0), targets: new Uint32Array(0) };
    const available = { memory: s.u8, targets: targetViews[0]! };
    return {
      slotSize,
      receive: (frame) => this.#receive(iface, frame),
      slots: () => {
        if (iface.removed || this.#closed || !s.alive) return none;
        topUp();
        available.memory = s.u8;
        available.targets = targetViews[reserved]!;
        return available;
      },
      commit: (count, lengths) => {
        if (count === 0 || iface.removed || this.#closed || !s.alive) return;
        out = s.scratch(count * 8);
        const dv = s.dv;
        for (let i = 0; i < count; i++) {
          dv.setUint32(out + 4 * i, pbufs[i]!, true);
          dv.setUint32(out + 4 * (count + i), lengths[i]!, true);
          iface.counters.rxFrames++;
          iface.counters.rxBytes += lengths[i]!;
        }
        committing = count;
        iface.counters.rxDropped.queueFull += s.run(commitCall);
        pbufs.copyWithin(0, count, reserved);
        targets.copyWithin(0, count, reserved);
        reserved -= count;
        if (!this.#flushScheduled) {
          this.#flushScheduled = true;
          defer(this.#flushLater);
        }
      },
    };
  }

  #flushLater = (): void => this.#flush();

  #copyIn(iface: Interface, frame: Uint8Array): boolean {
    const x = this.session.exports;
    const ptr = x.tt_rx_alloc(iface.handle, frame.length);
    if (ptr === 0) {
      if (x.tt_rx_queued(iface.handle) >= RX_QUEUE_MAX) iface.counters.rxDropped.queueFull++;
      else iface.counters.rxDropped.noMemory++;
      return false;
    }
    this.session.u8.set(frame, ptr);
    return true;
  }

  #flush(): void {
    this.#flushScheduled = false;
    if (this.#closed || !this.session.alive) return;
    try {
      this.session.run((x) => {
        const queue = this.#rxQueue;
        this.#rxQueue = [];
        for (const { iface, frame } of queue) {
          if (!iface.removed) this.#copyIn(iface, frame);
        }
        if (x.tt_rx_flush(FRAMES_PER_TURN) > 0 && !this.#flushScheduled) {
          this.#flushScheduled = true;
          defer(this.#flushLater);
        }
      });
    } catch (err) {
      if ((err as SystemError).code !== 'ERR_STACK_CLOSED') throw err;
    }
  }

  // SessionHost ---------------------------------------------------------

  linkOutput(netif: number, frame: Uint8Array): void {
    const iface = this.#interfaces.get(netif);
    if (!iface) return;
    try {
      iface.link.send(frame);
      iface.counters.txFrames++;
      iface.counters.txBytes += frame.length;
      if (iface.link.flush) this.#dirtyLinks.add(iface);
    } catch {
      iface.counters.txErrors++;
    }
  }

  linkFlush(): void {
    if (this.#dirtyLinks.size === 0) return;
    for (const iface of this.#dirtyLinks) {
      try {
        iface.link.flush?.();
      } catch {
        iface.counters.txErrors++;
      }
    }
    this.#dirtyLinks.clear();
  }

  tcpAccept(listenerId: number, pcb: number): number {
    const listener = this.#listeners.get(listenerId);
    if (!listener || !listener.handler) return 0;
    const id = this.#id();
    this.#tcp.set(id, new TcpConnection(this.session, pcb, id, false));
    return id;
  }

  rawReceive(id: number, packet: Uint8Array, from: SocketAddress): boolean {
    if (id !== this.#pingRawId) return false;
    const reply = parseEchoReply(packet, from.family);
    if (!reply || reply.id !== this.#pingIdent) return false;
    const pending = this.#ping.get(reply.seq);
    if (pending && pending.address === from.address) {
      this.#ping.delete(reply.seq);
      const rtt = this.clock.now() - pending.sentAt;
      this.clock.cancelTimer(pending.timer);
      queueMicrotask(() => pending.resolve(rtt));
    }
    return true;
  }

  event(e: SessionEvent): void {
    switch (e.type) {
      case 'tcp-data': {
        const c = this.#tcp.get(e.id);
        c?.handler?.data(e.data);
        break;
      }
      case 'tcp-sent':
        this.#tcp.get(e.id)?.handler?.sent(e.bytes);
        break;
      case 'tcp-fin':
        this.#tcp.get(e.id)?.handler?.end();
        break;
      case 'tcp-connected': {
        const c = this.#tcp.get(e.id);
        if (c) {
          c.connecting = false;
          c.handler?.connect();
        }
        break;
      }
      case 'tcp-error': {
        const c = this.#tcp.get(e.id);
        if (c) {
          this.#tcp.delete(e.id);
          c.released();
          const remote = c.remote;
          const err = lwipError(e.err, c.connecting ? 'connect' : 'read', remote?.address, remote?.port, c.connecting);
          c.handler?.error(err);
        }
        break;
      }
      case 'tcp-accepted': {
        const l = this.#listeners.get(e.listenerId);
        const c = this.#tcp.get(e.id);
        if (l?.handler && c) l.handler.connection(c);
        else if (c) c.abort();
        break;
      }
      case 'udp': {
        const u = this.#udp.get(e.id);
        u?.onMessage?.(e.data, e.from);
        break;
      }
      case 'dns': {
        const d = this.#dns.get(e.id);
        if (d) {
          this.#dns.delete(e.id);
          d.resolve(e.address);
        }
        break;
      }
      case 'gw-syn':
      case 'gw-udp':
      case 'gw-icmp':
        this.#gatewayEvent(e);
        break;
      case 'netif': {
        const iface = this.#interfaces.get(e.netif);
        if (iface) {
          if (iface.dhcp) this.#syncDhcpRoute(iface);
          iface['emit']('address');
        }
        break;
      }
    }
  }

  failed(error: Error): void {
    this.#teardown(error);
    this.emit('error', error);
    this.emit('close');
  }

  // ---------------------------------------------------------------- TCP

  /** Forgets a connection the caller has closed or aborted. */
  tcpForget(conn: TcpConnection): void {
    this.#tcp.delete(conn.id);
  }

  /**
   * `local.foreign`: the local address is not the stack's own (a gateway's
   * port forward connecting from its client's address); see
   * tt_gw_tcp_bind_foreign.
   */
  tcpConnect(remote: IpAddress, port: number, local?: { address?: IpAddress; port?: number; foreign?: boolean }): TcpConnection {
    this.#live();
    const s = this.session;
    const pcb = s.run((x) => x.tt_tcp_new(remote.family));
    const address = remote.family === 4 ? formatIPv4(remote.bytes) : formatIPv6(remote.bytes);
    // No PCB: the stack is at its memory budget (or out of memory).
    if (pcb === 0) throw systemError('ENOBUFS', 'connect', address, port);
    const id = this.#id();
    const conn = new TcpConnection(s, pcb, id, true, { family: remote.family, address, port, zone: remote.zone });
    s.run((x) => x.tt_tcp_attach(pcb, id));
    if (local && (local.address || local.port)) {
      s.writeSockaddr(0, local.address ?? { family: remote.family, bytes: new Uint8Array(remote.family === 4 ? 4 : 16), zone: 0 }, local.port ?? 0);
      if (local.foreign) s.writeSockaddr(1, remote, port);
      const err = s.run((x) => (local.foreign ? x.tt_gw_tcp_bind_foreign(pcb) : x.tt_tcp_bind(pcb)));
      if (err !== 0) {
        conn.abort();
        throw lwipError(err, 'bind', local.address ? formatIp(local.address) : undefined, local.port);
      }
    }
    s.writeSockaddr(0, remote, port);
    const err = s.run((x) => x.tt_tcp_connect(pcb));
    if (err !== ERR.OK) {
      conn.abort();
      throw lwipError(err, 'connect', address, port);
    }
    this.#tcp.set(id, conn);
    return conn;
  }

  tcpListen(address: IpAddress | null, port: number, backlog = 511): TcpListener {
    this.#live();
    const s = this.session;
    const pcb = s.run((x) => x.tt_tcp_new(address ? address.family : 0));
    if (pcb === 0) throw systemError('ENOBUFS', 'listen');
    s.writeSockaddr(0, address, port);
    const bindErr = s.run((x) => x.tt_tcp_bind(pcb));
    const shown = address ? formatIp(address) : '::';
    if (bindErr !== 0) {
      s.run((x) => x.tt_tcp_abort(pcb));
      throw lwipError(bindErr, 'listen', shown, port);
    }
    s.run((x) => x.tt_tcp_addresses(pcb));
    const local = s.readSockaddr(s.sockaddr(0));
    const id = this.#id();
    const lpcb = s.run((x) => x.tt_tcp_listen(pcb, id, Math.min(255, Math.max(1, backlog))));
    if (lpcb <= 0) {
      s.run((x) => x.tt_tcp_abort(pcb));
      throw lwipError(lpcb, 'listen', shown, port);
    }
    if (!address) local.address = '::';
    const listener = new TcpListener(s, lpcb, id, local);
    this.#listeners.set(id, listener);
    return listener;
  }

  tcpUnlisten(listener: TcpListener): void {
    this.#listeners.delete(listener.id);
    listener.close();
  }

  /**
   * What the stack listens on: its TCP listeners and UDP sockets with a
   * port (a gateway's listeners for the sandbox's flows are not counted).
   * A gateway's automatic forwards read it.
   */
  listening(): { protocol: 'tcp' | 'udp'; address: string; port: number }[] {
    if (!this.session.alive) return [];
    const flows = new Set([...this.#gatewayListeners.values()].map((g) => g.listener));
    const out: { protocol: 'tcp' | 'udp'; address: string; port: number }[] = [];
    for (const l of this.#listeners.values()) {
      if (l.open && !flows.has(l)) out.push({ protocol: 'tcp', address: l.local.address, port: l.local.port });
    }
    for (const u of this.#udp.values()) {
      if (!u.open) continue;
      const local = u.local();
      if (local.port !== 0) out.push({ protocol: 'udp', address: local.address, port: local.port });
    }
    return out;
  }

  // ---------------------------------------------------------------- UDP

  udpOpen(family: 4 | 6): UdpEndpoint {
    this.#live();
    const id = this.#id();
    const pcb = this.session.run((x) => x.tt_udp_new(family, id));
    if (pcb === 0) throw systemError('ENOMEM', 'socket');
    const ep = new UdpEndpoint(this.session, pcb, id);
    this.#udp.set(id, ep);
    return ep;
  }

  udpClose(ep: UdpEndpoint): void {
    this.#udp.delete(ep.id);
    if (this.session.alive) ep.close();
  }

  // ---------------------------------------------------------------- ICMP

  /** Sends an ICMP(v6) echo request; resolves to the round-trip time in ms. */
  ping(address: string, options: { timeout?: number; payload?: Uint8Array } = {}): Promise<number> {
    try {
      this.#live();
    } catch (err) {
      return Promise.reject(err);
    }
    const ip = parseIp(address, (zone) => this.#interfaceByName(zone)?.index ?? -1);
    if (!ip) return Promise.reject(invalidOption('address', 'an IP address', address));
    const timeout = options.timeout ?? 1000;
    if (!(typeof timeout === 'number' && timeout > 0)) return Promise.reject(invalidOption('timeout', 'a positive number of milliseconds', timeout));
    const family = ip.family;
    const s = this.session;
    if (this.#pingPcb[family] === 0) {
      if (this.#pingRawId === 0) this.#pingRawId = this.#id();
      this.#pingPcb[family] = s.run((x) => x.tt_raw_new(family, family === 4 ? IP_PROTO_ICMP : IP_PROTO_ICMPV6, this.#pingRawId));
      if (this.#pingPcb[family] === 0) return Promise.reject(systemError('ENOMEM', 'ping'));
    }
    const seq = (this.#pingSeq = (this.#pingSeq + 1) & 0xffff);
    const shown = formatIp(ip);
    return new Promise<number>((resolve, reject) => {
      const message = buildEchoRequest(family, this.#pingIdent, seq, options.payload ?? new Uint8Array(56));
      const buf = s.scratch(message.length);
      s.u8.set(message, buf);
      s.writeSockaddr(1, ip, 0);
      const pending: PendingPing = {
        resolve, reject, address: shown, sentAt: this.clock.now(),
        timer: this.clock.setTimer(() => {
          this.#ping.delete(seq);
          reject(systemError('ETIMEDOUT', 'ping', shown));
        }, timeout, true),
      };
      this.#ping.set(seq, pending);
      const err = s.run((x) => x.tt_raw_sendto(this.#pingPcb[family], buf, message.length));
      if (err !== 0) {
        this.#ping.delete(seq);
        this.clock.cancelTimer(pending.timer);
        reject(lwipError(err === ERR.RTE ? ERR.RTE : err, 'ping', shown));
      }
    });
  }

  // ---------------------------------------------------------------- DNS

  #setDnsServer(i: number, ip: IpAddress | null): void {
    this.session.writeSockaddr(0, ip, 53);
    this.session.run((x) => x.tt_dns_set_server(i));
  }

  get dnsServers(): string[] {
    const out: string[] = [];
    for (let i = 0; i < 4; i++) {
      this.session.run((x) => x.tt_dns_get_server(i));
      const p = this.session.sockaddr(0);
      if (this.session.u8[p] === 0) continue;
      out.push(this.session.readSockaddr(p).address);
    }
    return out;
  }

  set dnsServers(servers: string[]) {
    if (!Array.isArray(servers) || servers.length > 4) throw invalidOption('dnsServers', 'an array of at most 4 addresses', servers);
    const ips = servers.map((s, i) => parseIp(String(s)) ?? (() => { throw invalidOption(`dnsServers[${i}]`, 'an IP address', s); })());
    for (let i = 0; i < 4; i++) this.#setDnsServer(i, ips[i] ?? null);
  }

  /** Resolves a name through the stack's DNS servers (A, or AAAA with family 6). */
  resolve(name: string, options: { family?: 4 | 6 } = {}): Promise<string[]> {
    try {
      this.#live();
    } catch (err) {
      return Promise.reject(err);
    }
    if (typeof name !== 'string' || name.length === 0 || name.length > 255) return Promise.reject(invalidOption('name', 'a host name', name));
    const literal = parseIp(name);
    if (literal) return Promise.resolve([formatIp(literal)]);
    const family = options.family ?? 4;
    if (family !== 4 && family !== 6) return Promise.reject(invalidOption('family', '4 or 6', family));
    const s = this.session;
    const bytes = new TextEncoder().encode(name);
    const ptr = s.scratch(bytes.length + 1);
    s.u8.set(bytes, ptr);
    s.u8[ptr + bytes.length] = 0;
    const id = this.#id();
    return new Promise<string[]>((resolve, reject) => {
      const done = (a: SocketAddress | null) => {
        if (a) resolve([a.address]);
        else reject(systemError('ENOTFOUND', 'queryA', name));
      };
      this.#dns.set(id, { resolve: done });
      const err = s.run((x) => x.tt_dns_lookup(ptr, id, family));
      if (err === ERR.OK) {
        this.#dns.delete(id);
        done(s.readSockaddr(s.sockaddr(2)));
      } else if (err !== ERR.INPROGRESS) {
        this.#dns.delete(id);
        reject(err === ERR.VAL ? systemError('ENOTFOUND', 'queryA', name) : lwipError(err, 'queryA', name));
      }
    });
  }

  // ---------------------------------------------------------------- routes

  #addRoute(prefix: IpAddress, prefixLength: number, gateway: IpAddress | null, iface: Interface, metric: number): void {
    const s = this.session;
    s.writeSockaddr(0, prefix, 0);
    s.writeSockaddr(1, gateway, 0);
    const err = s.run((x) => x.tt_route_add(prefixLength, iface.handle, metric));
    if (err !== 0) throw lwipError(err, 'route');
  }

  #syncDhcpRoute(iface: Interface): void {
    const any: IpAddress = { family: 4, bytes: new Uint8Array(4), zone: 0 };
    this.session.writeSockaddr(0, any, 0);
    this.session.run((x) => x.tt_route_remove(0, iface.handle));
    const v4 = iface.ipv4;
    if (v4?.gateway) this.#addRoute(any, 0, parseIp(v4.gateway), iface, 100);
  }

  readonly routes = {
    list: (): Route[] => {
      this.#live();
      const s = this.session;
      const out: Route[] = [];
      const buf = s.scratch(12);
      for (let i = 0; s.run((x) => x.tt_route_entry(i, buf)) === 1; i++) {
        const dv = s.dv;
        const prefixLength = dv.getUint32(buf, true);
        const netif = dv.getUint32(buf + 4, true);
        const metric = dv.getUint32(buf + 8, true);
        const prefix = s.readSockaddr(s.sockaddr(0));
        const gwFamily = s.u8[s.sockaddr(1)];
        out.push({
          prefix: `${prefix.address}/${prefixLength}`,
          gateway: gwFamily === 0 ? null : s.readSockaddr(s.sockaddr(1)).address,
          interface: this.#interfaces.get(netif)?.name ?? '?',
          metric,
        });
      }
      return out;
    },
    add: (route: RouteOptions): void => {
      this.#live();
      if (route === null || typeof route !== 'object') throw invalidOption('route', 'an object', route);
      const prefix = typeof route.prefix === 'string' ? parsePrefix(route.prefix) : null;
      if (!prefix || !route.prefix.includes('/')) throw invalidOption('prefix', "a prefix like '10.1.0.0/16'", route.prefix);
      let gateway: IpAddress | null = null;
      if (route.gateway !== undefined) {
        gateway = typeof route.gateway === 'string' ? parseIp(route.gateway) : null;
        if (!gateway || gateway.family !== prefix.address.family) throw invalidOption('gateway', `an IPv${prefix.address.family} address`, route.gateway);
      }
      const metric = route.metric ?? 0;
      if (!Number.isInteger(metric) || metric < 0 || metric > 0xffffffff) throw invalidOption('metric', 'a non-negative integer', metric);
      const iface = this.#routeInterface(route.interface, gateway);
      this.#addRoute(networkOf(prefix), prefix.prefixLength, gateway, iface, metric);
    },
    remove: (route: { prefix: string; interface?: Interface | string }): number => {
      this.#live();
      const prefix = typeof route?.prefix === 'string' ? parsePrefix(route.prefix) : null;
      if (!prefix) throw invalidOption('prefix', "a prefix like '10.1.0.0/16'", route?.prefix);
      const iface = route.interface === undefined ? null : this.#routeInterface(route.interface, null);
      this.session.writeSockaddr(0, networkOf(prefix), 0);
      return this.session.run((x) => x.tt_route_remove(prefix.prefixLength, iface ? iface.handle : 0));
    },
  };

  #routeInterface(given: Interface | string | undefined, gateway: IpAddress | null): Interface {
    if (given instanceof Interface) {
      if (given.removed || !this.#interfaces.has(given.handle)) throw invalidOption('interface', 'an interface of this stack', given.name);
      return given;
    }
    if (typeof given === 'string') {
      const found = this.#interfaceByName(given);
      if (!found) throw invalidOption('interface', 'the name of an interface of this stack', given);
      return found;
    }
    if (given !== undefined) throw invalidOption('interface', 'an Interface or its name', given);
    if (gateway) {
      for (const iface of this.#interfaces.values()) {
        if (gateway.family === 4) {
          const v4 = iface.ipv4;
          const p = v4 && parsePrefix(`${v4.address}/${v4.prefixLength}`);
          if (p && prefixContains(p, gateway)) return iface;
        } else {
          for (const r of this.routes.list()) {
            const p = parsePrefix(r.prefix);
            if (r.gateway === null && p && p.prefixLength > 0 && prefixContains(p, gateway) && r.interface === iface.name) return iface;
          }
        }
      }
    }
    throw invalidOption('interface', 'given (no interface is on-link for the gateway)', given);
  }

  get forwarding(): boolean {
    return this.#forwarding;
  }

  set forwarding(on: boolean) {
    if (typeof on !== 'boolean') throw invalidOption('forwarding', 'a boolean', on);
    this.#forwarding = on;
    this.session.run((x) => x.tt_set_forwarding(on ? 1 : 0));
  }

  // ---------------------------------------------------------------- neighbours

  readonly neighbors = {
    list: (): Neighbor[] => {
      this.#live();
      const s = this.session;
      const out: Neighbor[] = [];
      const buf = s.scratch(32);
      for (let i = 0; s.run((x) => x.tt_arp_entry(i, buf)) === 1; i++) {
        const u8 = s.u8, dv = s.dv;
        const state = dv.getUint32(buf + 8, true);
        if (state === 0 || state === 1) continue;
        out.push({
          family: 4,
          address: formatIPv4(u8, buf),
          mac: formatMac(u8, buf + 16),
          interface: this.#interfaces.get(dv.getUint32(buf + 4, true))?.name ?? null,
          state: state === 3 ? 'static' : 'reachable',
          age: dv.getUint32(buf + 12, true),
        });
      }
      const nd6States = ['none', 'incomplete', 'reachable', 'stale', 'delay', 'probe'] as const;
      for (let i = 0; s.run((x) => x.tt_nd6_entry(i, buf)) === 1; i++) {
        const u8 = s.u8, dv = s.dv;
        const state = dv.getUint32(buf + 20, true);
        if (state <= 1) continue;
        out.push({
          family: 6,
          address: formatIPv6(u8, buf),
          mac: formatMac(u8, buf + 24),
          interface: this.#interfaces.get(dv.getUint32(buf + 16, true))?.name ?? null,
          state: nd6States[state] as Neighbor['state'],
        });
      }
      return out;
    },
    /** Adds a static IPv4 ARP entry (it never expires). */
    add: (entry: { address: string; mac: string }): void => {
      this.#live();
      const ip = typeof entry?.address === 'string' ? parseIp(entry.address) : null;
      if (!ip || ip.family !== 4) throw invalidOption('address', 'an IPv4 address (static entries are ARP entries)', entry?.address);
      const mac = typeof entry.mac === 'string' ? parseMac(entry.mac) : null;
      if (!mac) throw invalidOption('mac', 'a MAC address', entry.mac);
      const s = this.session;
      const p = s.scratch(8);
      s.u8.set(mac, p);
      const err = s.run((x) => x.tt_arp_add_static(u32(ip.bytes), p));
      if (err !== 0) throw lwipError(err, 'neighbor', entry.address);
    },
    delete: (address: string): boolean => {
      this.#live();
      const ip = typeof address === 'string' ? parseIp(address) : null;
      if (!ip) throw invalidOption('address', 'an IP address', address);
      if (ip.family === 4) return this.session.run((x) => x.tt_arp_remove(u32(ip.bytes))) === 0;
      this.session.writeSockaddr(0, ip, 0);
      return this.session.run((x) => x.tt_nd6_remove()) === 0;
    },
    /** Removes every dynamic entry (static ARP entries stay). */
    flush: (iface?: Interface | string): void => {
      this.#live();
      const handle = iface === undefined ? 0 : this.#routeInterface(iface, null).handle;
      this.session.run((x) => {
        x.tt_arp_flush(handle);
        x.tt_nd6_flush(handle);
      });
    },
  };

  // ---------------------------------------------------------------- gateway mode

  #gateways = new Map<number, GatewayHandler>();

  /**
   * Puts iface in gateway mode (handler) or out of it (null): it then takes
   * packets for every address, and connections and datagrams for addresses
   * that are not the stack's go to the handler (see wasm/src/glue_gateway.c).
   */
  setGateway(iface: Interface, handler: GatewayHandler | null): void {
    this.#live();
    if (!this.#interfaces.has(iface.handle)) throw invalidOption('iface', 'an interface of this stack', iface);
    const err = this.session.run((x) => x.tt_gw_set(iface.handle, handler ? 1 : 0));
    if (err !== 0) throw lwipError(err, 'gateway');
    if (handler) this.#gateways.set(iface.handle, handler);
    else this.#gateways.delete(iface.handle);
  }

  /** Makes gateway-mode interfaces answer ARP for an extra IPv4 address. */
  gatewayProxyArp(address: IpAddress): void {
    this.#live();
    if (address.family !== 4) throw invalidOption('address', 'an IPv4 address', formatIp(address));
    const err = this.session.run((x) => x.tt_gw_proxy_arp(u32(address.bytes)));
    if (err !== 0) throw lwipError(err, 'gateway');
  }

  /** Sends a UDP datagram into iface as if from an outside address. */
  gatewayUdpSend(iface: Interface, data: Uint8Array, from: IpAddress, fromPort: number, to: IpAddress, toPort: number): number {
    this.#live();
    const s = this.session;
    const buf = s.scratch(data.length);
    s.u8.set(data, buf);
    s.writeSockaddr(0, from, fromPort);
    s.writeSockaddr(1, to, toPort);
    return s.run((x) => x.tt_gw_udp_send(iface.handle, buf, data.length));
  }

  /**
   * Sends an IP payload of `protocol` (an ICMP message, say, its checksum
   * in place: for ICMPv6 computed over the pseudo header of `from` and `to`)
   * into iface as if from an outside address; lwIP adds the IPv4 or IPv6
   * header and fragments to the MTU. `hopLimit` defaults to 64. Returns
   * lwIP's err_t (0: sent).
   */
  gatewayIpSend(iface: Interface, payload: Uint8Array, from: IpAddress, to: IpAddress, protocol: number, hopLimit = 64): number {
    this.#live();
    if (from.family !== to.family) throw invalidOption('to', `an IPv${from.family} address, as from`, formatIp(to));
    if (!Number.isInteger(protocol) || protocol < 0 || protocol > 255) throw invalidOption('protocol', 'an IP protocol number (0-255)', protocol);
    if (!Number.isInteger(hopLimit) || hopLimit < 1 || hopLimit > 255) throw invalidOption('hopLimit', 'an integer from 1 to 255', hopLimit);
    const max = from.family === 4 ? 65515 : 65535;
    if (payload.length > max) throw invalidOption('payload', `at most ${max} bytes`, payload.length);
    const s = this.session;
    const buf = s.scratch(payload.length);
    s.u8.set(payload, buf);
    s.writeSockaddr(0, from, 0);
    s.writeSockaddr(1, to, 0);
    return s.run((x) => x.tt_gw_ip_send(iface.handle, buf, payload.length, protocol, hopLimit));
  }

  /**
   * Feeds an accepted SYN to a listener on its destination address:port.
   * One listener serves every flow to that address:port (lwIP matches SYNs
   * to listeners by local address:port only, so one per flow would hand a
   * flow's handshake to another flow's listener); connections are matched
   * to the SYNs the host accepted by their remote address:port, and the
   * listener closes once none waits.
   */
  #gatewayAccept(syn: number, from: SocketAddress, to: SocketAddress, onConnection: (conn: TcpConnection) => void): boolean {
    const key = `${to.address}:${to.port}`;
    const now = this.clock.now();
    const existing = this.#gatewayListeners.get(key);
    if (existing) {
      // Handshakes the sandbox abandoned: lwIP drops their state by itself.
      for (const [remote, w] of existing.waiting) if (now - w.since > GATEWAY_HANDSHAKE_MS) existing.waiting.delete(remote);
      const remote = `${from.address}:${from.port}`;
      existing.waiting.set(remote, { onConnection, since: now });
      existing.idleSince = -1;
      if (this.session.run((x) => x.tt_gw_tcp_accept(syn, 0)) === 0) return true;
      existing.waiting.delete(remote);
      if (existing.waiting.size === 0) this.#gatewayListenerIdle(existing, now);
      return false;
    }
    const id = this.#id();
    const waiting = new Map([[`${from.address}:${from.port}`, { onConnection, since: now }]]);
    const handle = this.session.run((x) => x.tt_gw_tcp_accept(syn, id));
    if (handle <= 0) return false;
    const listener = new TcpListener(this.session, handle, id, to);
    this.#listeners.set(id, listener);
    const entry: GatewayListener = { listener, waiting, idleSince: -1 };
    this.#gatewayListeners.set(key, entry);
    listener.handler = {
      connection: (conn) => {
        const remote = conn.remote;
        const k = remote ? `${remote.address}:${remote.port}` : '';
        const w = waiting.get(k);
        waiting.delete(k);
        if (waiting.size === 0) this.#gatewayListenerIdle(entry, this.clock.now());
        if (w) w.onConnection(conn);
        else conn.abort(); // a handshake nobody accepted (given up as abandoned)
      },
    };
    return true;
  }

  /** A gateway listener has no handshake left: it stays GATEWAY_LISTENER_LINGER_MS for the next flow, then closes. */
  #gatewayListenerIdle(entry: GatewayListener, now: number): void {
    entry.idleSince = now;
    if (this.#gatewaySweep === null) this.#gatewaySweep = this.clock.setTimer(() => this.#sweepGatewayListeners(), GATEWAY_LISTENER_LINGER_MS);
  }

  #sweepGatewayListeners(): void {
    this.#gatewaySweep = null;
    if (this.#closed || !this.session.alive) return;
    const now = this.clock.now();
    let idle = false;
    for (const [key, g] of this.#gatewayListeners) {
      if (g.idleSince < 0) continue;
      if (now - g.idleSince >= GATEWAY_LISTENER_LINGER_MS) {
        this.#gatewayListeners.delete(key);
        this.tcpUnlisten(g.listener);
      } else {
        idle = true;
      }
    }
    if (idle) this.#gatewaySweep = this.clock.setTimer(() => this.#sweepGatewayListeners(), GATEWAY_LISTENER_LINGER_MS);
  }

  #gatewayEvent(e: Extract<SessionEvent, { type: 'gw-syn' | 'gw-udp' | 'gw-icmp' }>): void {
    const iface = this.#interfaces.get(e.netif);
    const handler = this.#gateways.get(e.netif);
    if (e.type === 'gw-syn') {
      let settled = false;
      const syn: HeldSyn = {
        from: e.from,
        to: e.to,
        accept: (onConnection, onFailed) => {
          if (settled || !this.session.alive) return;
          settled = true;
          if (!this.#gatewayAccept(e.syn, e.from, e.to, onConnection)) onFailed?.();
        },
        reject: (how) => {
          if (settled || !this.session.alive) return;
          settled = true;
          this.session.run((x) => x.tt_gw_tcp_reject(e.syn, REJECT_CODES[how]));
        },
      };
      if (!iface || !handler) syn.reject('reset');
      else handler.tcpSyn(iface, syn);
    } else if (e.type === 'gw-udp') {
      if (iface && handler) handler.udp(iface, e.data, e.from, e.to);
    } else if (iface && handler?.icmp) {
      handler.icmp(iface, e.packet);
    }
  }

  // ---------------------------------------------------------------- stats

  stats(): StackStats {
    this.#live();
    const s = this.session;
    const n = PROTOCOLS.length * PROTO_FIELDS.length;
    const buf = s.scratch(n * 4);
    s.run((x) => x.tt_stats(buf));
    const dv = s.dv;
    const protocols = {} as StackStats['protocols'];
    PROTOCOLS.forEach((p, i) => {
      const c = {} as ProtocolCounters;
      PROTO_FIELDS.forEach((f, j) => (c[f] = dv.getUint32(buf + (i * PROTO_FIELDS.length + j) * 4, true)));
      protocols[p] = c;
    });
    const interfaces: StackStats['interfaces'] = {};
    for (const iface of this.#interfaces.values()) {
      interfaces[iface.name] = { ...iface.counters, rxDropped: { ...iface.counters.rxDropped }, mib: iface.mib() };
    }
    const lossBuf = s.scratch(6 * 4);
    s.run((x) => x.tt_tcp_loss_stats(lossBuf));
    const loss = (i: number) => s.dv.getUint32(lossBuf + i * 4, true);
    return {
      protocols,
      interfaces,
      tcpConnections: this.#tcp.size,
      tcpLoss: { timeouts: loss(0), recoveries: loss(1), retransmits: loss(2), probes: loss(3), sacked: loss(4), reneged: loss(5) },
      memoryBytes: s.exports.memory.buffer.byteLength,
      heapBytes: s.run((x) => x.tt_heap_used()),
      memoryInUse: s.run((x) => x.tt_mem_in_use()),
      memoryBudget: this.#memoryBudget,
      memoryTight: s.run((x) => x.tt_mem_tight()) !== 0,
      synCookies: {
        sent: s.run((x) => x.tt_syncookie_counter(0)),
        accepted: s.run((x) => x.tt_syncookie_counter(1)),
        rejected: s.run((x) => x.tt_syncookie_counter(2)),
      },
      timeWaitReopened: s.run((x) => x.tt_tcp_timewait_reopened()),
    };
  }

  // ---------------------------------------------------------------- lifecycle

  /** Ends everything; reason is null for an orderly close(). */
  #teardown(reason: Error | null): void {
    if (this.#closed) return;
    this.#closed = true;
    const tcp = [...this.#tcp.values()];
    this.#tcp.clear();
    for (const c of tcp) {
      c.released();
      c.handler?.error(reason && stackClosedError(reason));
    }
    for (const [, p] of this.#ping) {
      this.clock.cancelTimer(p.timer);
      p.reject(stackClosedError(reason ?? undefined));
    }
    this.#ping.clear();
    for (const [, d] of this.#dns) d.resolve(null);
    this.#dns.clear();
    for (const iface of this.#interfaces.values()) {
      iface.removed = true;
      iface.onUnwatch?.();
      iface.link.close();
    }
    this.#interfaces.clear();
    this.#listeners.clear();
    this.#gatewayListeners.clear();
    if (this.#gatewaySweep !== null) this.clock.cancelTimer(this.#gatewaySweep);
    this.#gatewaySweep = null;
    this.#udp.clear();
    this.#refs.clear();
    this.session.close();
  }

  /**
   * Resets every TCP connection (RST; each socket fails with `code`, default
   * ENETDOWN) and returns how many there were: what a gateway does when its
   * sandbox's link is gone, so that nothing waits on a peer that will not
   * answer.
   */
  resetConnections(code = 'ENETDOWN'): number {
    if (this.#closed || !this.session.alive) return 0;
    const conns = [...this.#tcp.values()];
    for (const c of conns) {
      this.#tcp.delete(c.id);
      c.abort();
      c.handler?.error(systemError(code, 'read'));
    }
    return conns.length;
  }

  /** Resets open connections, closes every link and frees the instance. */
  close(): void {
    if (this.#closed) return;
    if (this.session.alive) {
      for (const c of this.#tcp.values()) c.abort();
    }
    this.#teardown(null);
    this.emit('close');
  }

  /** Test hook: forces a trap inside this stack's instance. */
  _trap(kind: 'trap' | 'assert' = 'trap'): void {
    this.session.run((x) => (kind === 'assert' ? x.tt_debug_assert() : x.tt_debug_trap()));
  }
}

function u32(bytes: Uint8Array): number {
  return (bytes[0]! | (bytes[1]! << 8) | (bytes[2]! << 16) | (bytes[3]! << 24)) >>> 0;
}

function formatIp(ip: IpAddress): string {
  return ip.family === 4 ? formatIPv4(ip.bytes) : formatIPv6(ip.bytes);
}

export { ipEquals };
