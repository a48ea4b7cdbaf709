/**
 * A DHCP server (RFC 2131) on one of a stack's interfaces: the gateway's way
 * of handing the sandbox its address, router, DNS servers and MTU, as
 * slirp (10.0.2.15) and gvproxy (192.168.127.2) do.
 *
 * It is authoritative for its subnet: a client asking for an address it may
 * not have is told no (DHCPNAK) rather than ignored, so a sandbox that moved
 * between gateways recovers at once instead of after its retries time out.
 *
 * Two ways to hand out addresses:
 * - `guest`: one fixed address for the one sandbox. Any client gets it, and a
 *   new client (a rebooted VM, or an initramfs client followed by the OS's
 *   with another client id) takes it over instead of being locked out.
 * - `range`: a pool; each client (by client id, option 61, else hardware
 *   address) keeps its address across restarts while nobody else needs it.
 *
 * Replies go where RFC 2131 section 4.1 says: to a relay (giaddr), to a
 * configured client (ciaddr), by broadcast when the client asks (broadcast
 * flag) or for a NAK, and otherwise by unicast to the offered address at the
 * client's hardware address.
 */
import { EventEmitter } from 'node:events';
import type { Stack } from '../node/stack.js';
import type { UdpSocket, RemoteInfo } from '../node/dgram.js';
import type { Interface } from '../core/interface.js';
import { invalidOption } from '../core/errors.js';
import { formatIPv4, formatMac, parseIPv4, parsePrefix } from '../wire/address.js';
import {
  BootpOp, buildDhcpMessage, DHCP, DhcpMessageType, parseDhcpMessage,
  type DhcpMessage, type DhcpOptions,
} from '../wire/dhcp.js';

export interface DhcpServerOptions {
  /** The interface to serve (a name like 'eth0'); default: the one whose IPv4 address is `serverAddress`. */
  interface?: string;
  /** The server's address (option 54): the interface's IPv4 address. */
  serverAddress: string;
  /** The served subnet, 'a.b.c.d/len' (len 1 to 30). */
  subnet: string;
  /** A pool of addresses inside the subnet. Default: every host address of the subnet but the server's, the router's and the DNS servers'. */
  range?: { start: string; end: string };
  /** One fixed address for the sandbox, instead of a range. */
  guest?: string;
  /** Default gateway for clients (option 3); null for none. Default: `serverAddress`. */
  router?: string | null;
  /** DNS servers (option 6). Default: none. */
  dns?: string[];
  /** Interface MTU for clients (option 26), 68 to 65535; sent whether or not asked for. */
  mtu?: number;
  /** Lease time in seconds, 10 to 4294967294 (2^32-1 means infinite and is not offered). Default 3600. */
  leaseSeconds?: number;
  /** Domain name (option 15). */
  domain?: string;
}

export interface DhcpLease {
  address: string;
  /** The client's hardware address ('aa:bb:…' for Ethernet, hex otherwise). */
  mac: string;
  /** Option 61 as hex, or null when the client sent none. */
  clientId: string | null;
  /** Option 12, as the client sent it. */
  hostname: string | null;
  /** When the lease ends, on the stack's clock (milliseconds). */
  expiresAt: number;
  /** False for the first ACK of this client and address, true for renewals and rebinds. */
  renewed: boolean;
}

export interface DhcpServerStats {
  /** Received messages by type. */
  received: Record<'discover' | 'request' | 'decline' | 'release' | 'inform', number>;
  /** Sent messages by type. */
  sent: Record<'offer' | 'ack' | 'nak', number>;
  /** Datagrams that were not DHCP requests we could parse, and messages not for us. */
  ignored: number;
  /** DISCOVERs left unanswered because no address was free. */
  exhausted: number;
  /** Replies the stack could not send. */
  sendErrors: number;
}

export interface DhcpServer {
  on(event: 'lease', listener: (lease: DhcpLease) => void): this;
  on(event: 'release', listener: (lease: DhcpLease) => void): this;
  on(event: 'decline', listener: (address: string, lease: DhcpLease) => void): this;
  on(event: 'listening' | 'close', listener: () => void): this;
  once(event: 'lease', listener: (lease: DhcpLease) => void): this;
  once(event: 'release', listener: (lease: DhcpLease) => void): this;
  once(event: 'decline', listener: (address: string, lease: DhcpLease) => void): this;
  once(event: 'listening' | 'close', listener: () => void): this;
}

/** How long an offered address stays reserved for the client it was offered to. */
const OFFER_HOLD_MS = 60_000;
/** How long an address a client declined (it found it in use) is not offered again. */
const DECLINE_HOLD_MS = 10 * 60_000;
const INFINITE = 0xffffffff;

interface LeaseRecord {
  key: string;
  address: number;
  chaddr: Uint8Array;
  htype: number;
  clientId: Uint8Array | null;
  hostname: string | null;
  state: 'offered' | 'bound' | 'released';
  expiresAt: number;
}

const ipU32 = (b: Uint8Array): number => ((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0;
const ipText = (n: number): string => formatIPv4(Uint8Array.of(n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff));
const hex = (b: Uint8Array): string => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');

function ipOption(name: string, value: unknown): number {
  const b = typeof value === 'string' ? parseIPv4(value) : null;
  if (!b) throw invalidOption(name, 'an IPv4 address', value);
  return ipU32(b);
}

export class DhcpServer extends EventEmitter {
  readonly serverAddress: string;
  readonly subnet: string;
  readonly stats: DhcpServerStats = {
    received: { discover: 0, request: 0, decline: 0, release: 0, inform: 0 },
    sent: { offer: 0, ack: 0, nak: 0 },
    ignored: 0,
    exhausted: 0,
    sendErrors: 0,
  };

  #stack: Stack;
  #ifaceName: string | undefined;
  #server: number;
  #network: number;
  #mask: number;
  #broadcast: number;
  #pool: { start: number; end: number };
  #guest: boolean;
  #reserved = new Set<number>();
  #router: number | null;
  #dns: number[];
  #mtu: number | undefined;
  #leaseSeconds: number;
  #domain: string | undefined;
  #byKey = new Map<string, LeaseRecord>();
  #byAddress = new Map<number, LeaseRecord>();
  #declined = new Map<number, number>();
  #socket: DhcpSocket | null = null;
  #starting: Promise<void> | null = null;
  #closed = false;

  constructor(stack: Stack, options: DhcpServerOptions) {
    super();
    if (stack === null || typeof stack !== 'object' || typeof stack.createSocket !== 'function') throw invalidOption('stack', 'a Stack', stack);
    if (options === null || typeof options !== 'object') throw invalidOption('options', 'an object', options);
    this.#stack = stack;
    if (options.interface !== undefined && (typeof options.interface !== 'string' || options.interface === '')) {
      throw invalidOption('interface', 'an interface name', options.interface);
    }
    this.#ifaceName = options.interface;

    const prefix = typeof options.subnet === 'string' && options.subnet.includes('/') ? parsePrefix(options.subnet) : null;
    if (!prefix || prefix.address.family !== 4 || prefix.prefixLength < 1 || prefix.prefixLength > 30) {
      throw invalidOption('subnet', "an IPv4 subnet like '10.0.2.0/24' (prefix length 1 to 30)", options.subnet);
    }
    this.#mask = (0xffffffff << (32 - prefix.prefixLength)) >>> 0;
    this.#network = (ipU32(prefix.address.bytes) & this.#mask) >>> 0;
    this.#broadcast = (this.#network | ~this.#mask) >>> 0;
    this.subnet = `${ipText(this.#network)}/${prefix.prefixLength}`;
    const inSubnet = (a: number) => ((a & this.#mask) >>> 0) === this.#network;
    const isHost = (a: number) => inSubnet(a) && a !== this.#network && a !== this.#broadcast;

    this.#server = ipOption('serverAddress', options.serverAddress);
    if (!isHost(this.#server)) throw invalidOption('serverAddress', `a host address in ${this.subnet}`, options.serverAddress);
    this.serverAddress = ipText(this.#server);

    if (options.router === null) this.#router = null;
    else if (options.router === undefined) this.#router = this.#server;
    else {
      this.#router = ipOption('router', options.router);
      // A default gateway must be on-link for the client to reach it.
      if (!isHost(this.#router)) throw invalidOption('router', `a host address in ${this.subnet}`, options.router);
    }

    const dns = options.dns ?? [];
    if (!Array.isArray(dns)) throw invalidOption('dns', 'an array of IPv4 addresses', dns);
    // A short list keeps replies near the 548 bytes of DHCP every client must accept (RFC 2131 section 2).
    if (dns.length > 16) throw invalidOption('dns', 'at most 16 addresses', dns);
    this.#dns = dns.map((a, i) => ipOption(`dns[${i}]`, a));

    if (options.mtu !== undefined && (!Number.isInteger(options.mtu) || options.mtu < 68 || options.mtu > 65535)) {
      throw invalidOption('mtu', 'an integer from 68 to 65535', options.mtu);
    }
    this.#mtu = options.mtu;
    const lease = options.leaseSeconds ?? 3600;
    if (!Number.isInteger(lease) || lease < 10 || lease >= INFINITE) throw invalidOption('leaseSeconds', 'an integer from 10 to 4294967294', lease);
    this.#leaseSeconds = lease;
    if (options.domain !== undefined && (typeof options.domain !== 'string' || options.domain === '' || options.domain.length > 255)) {
      throw invalidOption('domain', 'a non-empty domain name', options.domain);
    }
    this.#domain = options.domain;

    for (const a of [this.#server, this.#router, ...this.#dns]) if (a !== null) this.#reserved.add(a);
    if (options.guest !== undefined && options.range !== undefined) throw invalidOption('guest', 'not given together with range', options.guest);
    this.#guest = options.guest !== undefined;
    if (options.guest !== undefined) {
      const g = ipOption('guest', options.guest);
      if (!isHost(g) || this.#reserved.has(g)) throw invalidOption('guest', `a free host address in ${this.subnet}`, options.guest);
      this.#pool = { start: g, end: g };
    } else if (options.range !== undefined) {
      const r = options.range;
      if (r === null || typeof r !== 'object') throw invalidOption('range', '{ start, end }', r);
      const start = ipOption('range.start', r.start);
      const end = ipOption('range.end', r.end);
      if (!isHost(start)) throw invalidOption('range.start', `a host address in ${this.subnet}`, r.start);
      if (!isHost(end) || end < start) throw invalidOption('range.end', `a host address in ${this.subnet}, not below range.start`, r.end);
      this.#pool = { start, end };
    } else {
      this.#pool = { start: this.#network + 1, end: this.#broadcast - 1 };
    }
  }

  /** Binds UDP port 67 on the stack; resolves once it listens (EADDRINUSE if something else has it). */
  start(): Promise<void> {
    if (this.#closed) return Promise.reject(new Error('the DHCP server is closed'));
    this.#starting ??= (async () => {
      const iface = this.#findInterface();
      const socket = await openDhcpSocket(this.#stack, iface, (data, rinfo) => this.#receive(data, rinfo), this.#broadcast);
      if (this.#closed) {
        await socket.close();
        return;
      }
      this.#socket = socket;
      this.emit('listening');
    })();
    return this.#starting;
  }

  /** Stops serving. Leases are forgotten. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const socket = this.#socket;
    this.#socket = null;
    if (socket) await socket.close();
    this.emit('close');
  }

  /**
   * Releases every lease, as if each client had sent DHCPRELEASE: the
   * gateway does so when its sandbox's link is gone. The records stay, so a
   * client that comes back gets its old address if nobody took it.
   */
  releaseAll(): number {
    let n = 0;
    for (const r of this.#byKey.values()) {
      if (r.state === 'released') continue;
      const wasBound = r.state === 'bound';
      r.state = 'released';
      r.expiresAt = this.#now();
      n++;
      if (wasBound) this.emit('release', this.#lease(r, false));
    }
    return n;
  }

  /** The leases currently bound (not offered, released or expired). */
  leases(): DhcpLease[] {
    const now = this.#now();
    return [...this.#byKey.values()]
      .filter((r) => r.state === 'bound' && r.expiresAt > now)
      .map((r) => this.#lease(r, true));
  }

  #findInterface(): Interface {
    const all = this.#stack.interfaces;
    let iface: Interface | undefined;
    if (this.#ifaceName !== undefined) {
      iface = all.find((i) => i.name === this.#ifaceName);
      if (!iface) throw invalidOption('interface', `one of the stack's interfaces (${all.map((i) => i.name).join(', ') || 'none'})`, this.#ifaceName);
    } else {
      iface = all.find((i) => i.ipv4?.address === this.serverAddress);
      if (!iface) throw invalidOption('serverAddress', "the IPv4 address of one of the stack's interfaces", this.serverAddress);
    }
    // Our replies leave with the interface's address as their source, and
    // clients renew by unicast to the server id: the two must be one.
    if (iface.ipv4?.address !== this.serverAddress) {
      throw invalidOption('serverAddress', `the IPv4 address of ${iface.name} (${iface.ipv4?.address ?? 'none'})`, this.serverAddress);
    }
    return iface;
  }

  #now(): number {
    return this.#stack.clock.now();
  }

  // ------------------------------------------------------------ addresses

  #inPool(a: number): boolean {
    return a >= this.#pool.start && a <= this.#pool.end && !this.#reserved.has(a) && a !== this.#network && a !== this.#broadcast;
  }

  /** Whether `a` may go to the client `key` now. */
  #available(a: number, key: string): boolean {
    if (!this.#inPool(a)) return false;
    const declinedUntil = this.#declined.get(a);
    if (declinedUntil !== undefined) {
      if (declinedUntil > this.#now()) return false;
      this.#declined.delete(a);
    }
    const holder = this.#byAddress.get(a);
    if (!holder || holder.key === key || this.#guest) return true;
    return holder.state === 'released' || holder.expiresAt <= this.#now();
  }

  /** The address to offer `key`: its own, the one it asks for, a never-used one, then the longest-expired. */
  #allocate(key: string, requested: number | null): number | null {
    const own = this.#byKey.get(key);
    if (own && this.#byAddress.get(own.address) === own && this.#available(own.address, key)) return own.address;
    if (requested !== null && this.#available(requested, key)) return requested;
    let reclaim: LeaseRecord | null = null;
    for (let a = this.#pool.start; a <= this.#pool.end; a++) {
      if (!this.#available(a, key)) continue;
      const holder = this.#byAddress.get(a);
      if (!holder) return a;
      if (!reclaim || holder.expiresAt < reclaim.expiresAt) reclaim = holder;
    }
    return reclaim ? reclaim.address : null;
  }

  /** Records that `address` now belongs to `key`, evicting whoever held it. */
  #assign(key: string, address: number, msg: DhcpMessage, state: LeaseRecord['state'], expiresAt: number): LeaseRecord {
    const prev = this.#byKey.get(key);
    if (prev && prev.address !== address && this.#byAddress.get(prev.address) === prev) this.#byAddress.delete(prev.address);
    const holder = this.#byAddress.get(address);
    if (holder && holder.key !== key) this.#byKey.delete(holder.key);
    const r: LeaseRecord = {
      key,
      address,
      chaddr: msg.chaddr,
      htype: msg.htype,
      clientId: msg.options.clientId ?? null,
      hostname: msg.options.hostname ?? prev?.hostname ?? null,
      state,
      expiresAt,
    };
    this.#byKey.set(key, r);
    this.#byAddress.set(address, r);
    return r;
  }

  #lease(r: LeaseRecord, renewed: boolean): DhcpLease {
    return {
      address: ipText(r.address),
      mac: r.htype === DHCP.HTYPE_ETHERNET && r.chaddr.length === 6 ? formatMac(r.chaddr) : hex(r.chaddr),
      clientId: r.clientId ? hex(r.clientId) : null,
      hostname: r.hostname,
      expiresAt: r.expiresAt,
      renewed,
    };
  }

  // ------------------------------------------------------------ messages

  #receive(data: Uint8Array, rinfo: RemoteInfo): void {
    if (this.#closed) return;
    const msg = parseDhcpMessage(data);
    // The client key needs a client id or a hardware address.
    if (!msg || msg.op !== BootpOp.Request || msg.options.messageType === undefined || (msg.hlen === 0 && !msg.options.clientId)) {
      this.stats.ignored++;
      return;
    }
    const key = msg.options.clientId ? `id:${hex(msg.options.clientId)}` : `hw:${msg.htype}:${hex(msg.chaddr)}`;
    switch (msg.options.messageType) {
      case DhcpMessageType.Discover:
        this.stats.received.discover++;
        return this.#discover(msg, key);
      case DhcpMessageType.Request:
        this.stats.received.request++;
        return this.#request(msg, key);
      case DhcpMessageType.Decline:
        this.stats.received.decline++;
        return this.#decline(msg, key);
      case DhcpMessageType.Release:
        this.stats.received.release++;
        return this.#release(msg, key);
      case DhcpMessageType.Inform:
        this.stats.received.inform++;
        return this.#inform(msg, rinfo);
      default:
        this.stats.ignored++;
    }
  }

  #requested(msg: DhcpMessage): number | null {
    const r = msg.options.requestedAddress;
    return r === undefined ? null : ipU32(parseIPv4(r)!);
  }

  #discover(msg: DhcpMessage, key: string): void {
    const address = this.#allocate(key, this.#requested(msg));
    if (address === null) {
      this.stats.exhausted++;
      return;
    }
    const now = this.#now();
    const own = this.#byKey.get(key);
    // A bound client that lost its state keeps its lease while we offer.
    const keep = own && own.address === address && own.state === 'bound' && own.expiresAt > now;
    if (!keep) this.#assign(key, address, msg, 'offered', now + OFFER_HOLD_MS);
    this.#reply(msg, DhcpMessageType.Offer, address);
  }

  #request(msg: DhcpMessage, key: string): void {
    const ciaddr = ipU32(parseIPv4(msg.ciaddr)!);
    const requested = this.#requested(msg);
    let address: number;
    if (msg.options.serverId !== undefined) {
      // SELECTING (RFC 2131 section 4.3.2): the client answers one server's offer.
      if (msg.options.serverId !== this.serverAddress) {
        const own = this.#byKey.get(key);
        if (own?.state === 'offered' && this.#byAddress.get(own.address) === own) {
          this.#byAddress.delete(own.address);
          this.#byKey.delete(key);
        }
        this.stats.ignored++;
        return;
      }
      const target = requested ?? (ciaddr !== 0 ? ciaddr : null);
      if (target === null) return this.#nak(msg, 'no address requested');
      address = target;
    } else if (requested !== null) {
      // INIT-REBOOT: a client that remembers an address checks it is still its own.
      address = requested;
    } else if (ciaddr !== 0) {
      // RENEWING (unicast to us) or REBINDING (broadcast).
      address = ciaddr;
    } else {
      this.stats.ignored++;
      return;
    }
    if (!this.#available(address, key)) {
      const inSubnet = ((address & this.#mask) >>> 0) === this.#network;
      return this.#nak(msg, inSubnet ? `${ipText(address)} is not available` : `${ipText(address)} is not on this network`);
    }
    const own = this.#byKey.get(key);
    const renewed = own !== undefined && own.address === address && own.state === 'bound' && own.expiresAt > this.#now();
    const r = this.#assign(key, address, msg, 'bound', this.#now() + this.#leaseSeconds * 1000);
    this.#reply(msg, DhcpMessageType.Ack, address);
    this.emit('lease', this.#lease(r, renewed));
  }

  #decline(msg: DhcpMessage, key: string): void {
    const address = this.#requested(msg);
    if (address === null || (msg.options.serverId !== undefined && msg.options.serverId !== this.serverAddress)) {
      this.stats.ignored++;
      return;
    }
    const r = this.#byKey.get(key);
    if (!r || r.address !== address) {
      this.stats.ignored++;
      return;
    }
    // The client found the address in use (RFC 2131 section 4.3.3): not ours to give for a while.
    this.#byKey.delete(key);
    if (this.#byAddress.get(address) === r) this.#byAddress.delete(address);
    this.#declined.set(address, this.#now() + DECLINE_HOLD_MS);
    this.emit('decline', ipText(address), this.#lease(r, false));
  }

  #release(msg: DhcpMessage, key: string): void {
    const r = this.#byKey.get(key);
    const address = ipU32(parseIPv4(msg.ciaddr)!);
    if (!r || r.address !== address || r.state !== 'bound' || (msg.options.serverId !== undefined && msg.options.serverId !== this.serverAddress)) {
      this.stats.ignored++;
      return;
    }
    // Keep the record: the client gets the same address back if nobody took it.
    r.state = 'released';
    r.expiresAt = this.#now();
    this.emit('release', this.#lease(r, false));
  }

  #inform(msg: DhcpMessage, rinfo: RemoteInfo): void {
    // RFC 2131 section 4.3.5: configuration only, no lease, sent to ciaddr.
    this.#reply(msg, DhcpMessageType.Ack, null, rinfo.address);
  }

  #nak(msg: DhcpMessage, why: string): void {
    this.#reply(msg, DhcpMessageType.Nak, null, undefined, why);
  }

  /** The configuration options of an OFFER or ACK. */
  #configOptions(withLease: boolean): DhcpOptions {
    const o: DhcpOptions = {
      subnetMask: ipText(this.#mask),
      broadcastAddress: ipText(this.#broadcast),
    };
    if (withLease) {
      o.leaseTime = this.#leaseSeconds;
      // T1 and T2 at RFC 2131 section 4.4.5's defaults: 0.5 and 0.875 of the lease.
      o.renewalTime = Math.floor(this.#leaseSeconds / 2);
      o.rebindingTime = Math.floor((this.#leaseSeconds * 7) / 8);
    }
    if (this.#router !== null) o.routers = [ipText(this.#router)];
    if (this.#dns.length > 0) o.dnsServers = this.#dns.map(ipText);
    if (this.#mtu !== undefined) o.mtu = this.#mtu;
    if (this.#domain !== undefined) o.domainName = this.#domain;
    return o;
  }

  #reply(msg: DhcpMessage, type: number, yiaddr: number | null, informFrom?: string, why?: string): void {
    const socket = this.#socket;
    if (!socket) return;
    const nak = type === DhcpMessageType.Nak;
    const inform = msg.options.messageType === DhcpMessageType.Inform;
    const options: DhcpOptions = nak
      ? { messageType: type, serverId: this.serverAddress, ...(why ? { message: why } : {}) }
      : { messageType: type, serverId: this.serverAddress, ...this.#configOptions(!inform) };
    const bytes = buildDhcpMessage({
      op: BootpOp.Reply,
      htype: msg.htype,
      hlen: msg.hlen,
      xid: msg.xid,
      flags: msg.flags,
      // RFC 2131 table 3: ciaddr is echoed in an ACK, zero in OFFER and NAK.
      ciaddr: type === DhcpMessageType.Ack ? msg.ciaddr : '0.0.0.0',
      yiaddr: yiaddr === null ? '0.0.0.0' : ipText(yiaddr),
      giaddr: msg.giaddr,
      chaddr: msg.chaddr,
      options,
      optionOrder: msg.options.parameterRequestList,
    });
    if (type === DhcpMessageType.Offer) this.stats.sent.offer++;
    else if (nak) this.stats.sent.nak++;
    else this.stats.sent.ack++;

    const onError = () => this.stats.sendErrors++;
    // Where the reply goes: RFC 2131 section 4.1, "Constructing and sending DHCP messages".
    if (msg.giaddr !== '0.0.0.0') {
      socket.send(bytes, msg.giaddr, DHCP.SERVER_PORT, onError);
    } else if (nak) {
      socket.broadcast(bytes, DHCP.CLIENT_PORT, onError);
    } else if (msg.ciaddr !== '0.0.0.0') {
      socket.send(bytes, msg.ciaddr, DHCP.CLIENT_PORT, onError);
    } else if (inform && informFrom !== undefined && informFrom !== '0.0.0.0') {
      socket.send(bytes, informFrom, DHCP.CLIENT_PORT, onError);
    } else if ((msg.flags & DHCP.BROADCAST_FLAG) !== 0 || yiaddr === null
      || msg.htype !== DHCP.HTYPE_ETHERNET || msg.hlen !== 6 || !socket.canUnicastToHardware) {
      socket.broadcast(bytes, DHCP.CLIENT_PORT, onError);
    } else {
      socket.sendToHardware(bytes, ipText(yiaddr), formatMac(msg.chaddr), DHCP.CLIENT_PORT, onError);
    }
  }
}

// =====================================================================
// ADAPTER: the only code that touches the stack's UDP API.
//
// The socket is tied to the served interface (createSocket's `interface`,
// lwIP's udp_bind_netif): replies to 255.255.255.255 leave through that
// interface without a route lookup, and only datagrams that arrived there
// reach the server, so a server on one link of a multi-homed stack does not
// answer the others. Without the tie (a stack that cannot offer it), the
// adapter falls back to the served subnet's directed broadcast, which DHCP
// clients also take (they read replies from a raw socket before they have an
// address). Unicast to a client's hardware address needs a static ARP entry
// for the offered address, held only while lwIP sends the reply (udp_sendto
// resolves and transmits synchronously).
// =====================================================================

interface DhcpSocket {
  /** Whether sendToHardware may be used (an Ethernet interface). */
  readonly canUnicastToHardware: boolean;
  send(data: Uint8Array, address: string, port: number, onError: () => void): void;
  broadcast(data: Uint8Array, port: number, onError: () => void): void;
  sendToHardware(data: Uint8Array, address: string, mac: string, port: number, onError: () => void): void;
  close(): Promise<void>;
}

async function openDhcpSocket(
  stack: Stack,
  iface: Interface,
  onMessage: (data: Uint8Array, rinfo: RemoteInfo) => void,
  subnetBroadcast: number,
): Promise<DhcpSocket> {
  const socket: UdpSocket = stack.createSocket({ type: 'udp4', interface: iface.name });
  const bound = socket.interface === iface.name;
  const broadcastTo = bound ? '255.255.255.255' : ipText(subnetBroadcast);
  socket.on('message', (msg: Buffer, rinfo: RemoteInfo) => onMessage(msg, rinfo));
  await new Promise<void>((resolve, reject) => {
    const fail = (err: Error) => reject(err);
    socket.once('error', fail);
    socket.bind(DHCP.SERVER_PORT, '0.0.0.0', () => {
      socket.off('error', fail);
      resolve();
    });
  });
  // Later errors (a send the stack refused) are counted by the callers' onError.
  socket.on('error', () => undefined);
  // A stack's sockets keep Node alive like dgram's; a DHCP server alone should not.
  socket.unref();

  const send = (data: Uint8Array, address: string, port: number, onError: () => void) => {
    try {
      socket.send(data, port, address, (err) => {
        if (err) onError();
      });
    } catch {
      onError();
    }
  };
  return {
    canUnicastToHardware: iface.medium === 'ethernet',
    send,
    broadcast: (data, port, onError) => send(data, broadcastTo, port, onError),
    sendToHardware(data, address, mac, port, onError) {
      let added = false;
      try {
        stack.neighbors.add({ address, mac });
        added = true;
      } catch {
        /* no such subnet on any interface: fall through to broadcast */
      }
      if (!added) return send(data, broadcastTo, port, onError);
      // Dropped once the send has completed (its callback), so that a
      // stale static entry never outlives the offer.
      const forget = () => {
        try {
          stack.neighbors.delete(address);
        } catch {
          /* the stack closed */
        }
      };
      try {
        socket.send(data, port, address, (err) => {
          forget();
          if (err) onError();
        });
      } catch {
        forget();
        onError();
      }
    },
    close: () => new Promise<void>((resolve) => socket.close(() => resolve())),
  };
}
