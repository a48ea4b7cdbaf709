/**
 * A VXLAN endpoint (VTEP, RFC 7348) as a Link: Ethernet frames to and from
 * the stack or switch port it is attached to go out as UDP payloads to the
 * remote VTEPs and come in from them, with a forwarding database (FDB) that
 * maps inner MAC addresses to the VTEP they live behind, as the Linux
 * `vxlan` device keeps one.
 *
 * The state machine only: the UDP socket is a transport handed in (Node's
 * dgram in src/node/vxlan.ts), and time (FDB ageing) comes from the Clock.
 *
 * As Linux: source MACs of received frames are learnt against the sender's
 * address (and our destination port: senders pick their source ports for
 * entropy, RFC 7348 section 5), entries age out after 300 s unless static,
 * a frame to a learnt MAC goes to its VTEP only, and broadcast, multicast
 * and unknown unicast go to every remote in the flood list (Linux's
 * all-zeros FDB entries, `remote` and `bridge fdb append 00:00:00:00:00:00`).
 * Unlike Linux, VTEPs that were only learnt are flooded to as well, so an
 * endpoint given no remotes answers whoever reaches it first (as a Linux
 * device with `nolearning` off and a peer's static entry would need a
 * remote to be configured).
 */
import { type Clock, realClock } from './clock.js';
import { invalidOption } from './errors.js';
import { checkMtu, ETHERNET_HEADER, type FrameReceiver, type Link } from './link.js';
import { formatMac, formatIp, parseIp, parseMac } from '../wire/address.js';
import { emitVxlanHeader, MAX_VNI, parseVxlan, VXLAN_HEADER, VXLAN_PORT } from '../wire/vxlan.js';

export interface VxlanRemote {
  address: string;
  /** Default the link's port. */
  port?: number;
}

/** Where the encapsulated packets go: a UDP socket. */
export interface VxlanTransport {
  /** Sends one UDP payload to address:port; the bytes are the transport's to keep. */
  send(packet: Uint8Array, address: string, port: number): void;
  /** A buffer for one outgoing packet (Node: Buffer.allocUnsafe). Default a Uint8Array. */
  alloc?(size: number): Uint8Array;
  /**
   * Optional: sends the packets laid end to end in buffer[0, length), each
   * `segmentSize` bytes but the last (which may be shorter), to
   * address:port in one go (UDP GSO), copying them before it returns. False
   * when it could not; the link then sends them one by one with send().
   */
  sendSegments?(buffer: Uint8Array, length: number, segmentSize: number, address: string, port: number): boolean;
  close(): void;
}

/**
 * Most packets in one sendSegments() call, and most bytes: the kernel takes
 * at most 64 segments (UDP_MAX_SEGMENTS before Linux 6.3) in one datagram
 * of at most 64 KiB less the IP and UDP headers.
 */
const RUN_MAX_PACKETS = 64;
const RUN_MAX_BYTES = 65_000;

export interface VxlanLinkOptions {
  /** The VXLAN network identifier, 0 to 16777215. Required. */
  vni: number;
  /** The UDP port remotes listen on (and, in src/node, ours). Default 4789 (IANA). */
  port?: number;
  /** VTEPs that get broadcast, multicast and unknown unicast. Default none. */
  remotes?: (string | VxlanRemote)[];
  /** Learn inner source MACs from received packets. Default true. */
  learning?: boolean;
  /** Largest inner IP packet. Default 1450 (1500 less the IPv4 encapsulation). */
  mtu?: number;
  /** Seconds a learnt FDB entry lives without traffic. Default 300 (Linux's `ageing`). */
  ageing?: number;
  /** Most learnt entries (a flood of source MACs cannot grow memory). Default 8192. */
  maxEntries?: number;
  clock?: Clock;
}

export interface VxlanCounters {
  /** Inner frames and their bytes sent, once per remote they went to. */
  framesSent: number;
  bytesSent: number;
  /** Inner frames and bytes received and passed on. */
  framesReceived: number;
  bytesReceived: number;
  /** Frames sent to every flood remote: broadcast, multicast, unknown unicast. */
  flooded: number;
  /** Frames dropped for want of any remote to send them to. */
  noRemote: number;
  /** Frames longer than the MTU allows (dropped), either way. */
  oversize: number;
  /** Received packets that were not VXLAN (short, I flag clear). */
  badPacket: number;
  /** Received packets of another VNI. */
  wrongVni: number;
}

export interface VxlanFdbEntry {
  mac: string;
  address: string;
  port: number;
  static: boolean;
  /** Seconds since last seen (0 for static entries). */
  age: number;
}

interface Fdb {
  address: string;
  port: number;
  static: boolean;
  seen: number;
}

const macKey = (b: Uint8Array, at: number): number =>
  ((b[at]! << 8) | b[at + 1]!) * 0x1_0000_0000 + (((b[at + 2]! << 24) | (b[at + 3]! << 16) | (b[at + 4]! << 8) | b[at + 5]!) >>> 0);

function keyMac(key: number): string {
  const hi = Math.floor(key / 0x1_0000_0000);
  const lo = key >>> 0;
  return formatMac(new Uint8Array([hi >> 8, hi & 0xff, lo >>> 24, (lo >>> 16) & 0xff, (lo >>> 8) & 0xff, lo & 0xff]));
}

function checkPort(port: unknown, name: string): asserts port is number {
  if (!Number.isInteger(port) || (port as number) < 1 || (port as number) > 65535) throw invalidOption(name, 'a UDP port from 1 to 65535', port);
}

/** An address in the form rinfo.address has it (canonical text), so learnt and configured ones compare equal. */
function canonical(address: unknown, name: string): string {
  const ip = typeof address === 'string' ? parseIp(address) : null;
  if (!ip) throw invalidOption(name, 'an IPv4 or IPv6 address', address);
  return formatIp(ip);
}

/**
 * A VTEP as a Link over a VxlanTransport. In Node, `openVxlan()` makes one
 * on a UDP socket; construct it directly for another transport.
 */
export class VxlanLink implements Link {
  readonly medium = 'ethernet' as const;
  readonly mtu: number;
  readonly vni: number;
  readonly port: number;
  readonly learning: boolean;
  readonly counters: VxlanCounters = {
    framesSent: 0, bytesSent: 0, framesReceived: 0, bytesReceived: 0, flooded: 0, noRemote: 0, oversize: 0, badPacket: 0, wrongVni: 0,
  };
  readonly #transport: VxlanTransport;
  readonly #clock: Clock;
  readonly #ageingMs: number;
  readonly #maxEntries: number;
  readonly #remotes: { address: string; port: number }[] = [];
  readonly #fdb = new Map<number, Fdb>();
  /** Flood targets: the remotes and every learnt VTEP, rebuilt when either changes. */
  #flood: { address: string; port: number }[] | null = null;
  #floodBuilt = 0;
  #receive: FrameReceiver | null = null;
  #closed = false;
  /**
   * With a transport that has sendSegments: packets to one VTEP, end to end,
   * waiting for flush() (or the end of this job, from a microtask). A run has
   * one destination and one packet size; a shorter packet ends it.
   */
  #run: Uint8Array | null = null;
  #runUsed = 0;
  #runCount = 0;
  #runSegment = 0;
  #runAddress = '';
  #runPort = 0;
  #runFlushQueued = false;
  readonly #flushRun = (): void => {
    this.#runFlushQueued = false;
    this.flush();
  };

  constructor(transport: VxlanTransport, options: VxlanLinkOptions) {
    if (options === null || typeof options !== 'object') throw invalidOption('options', 'an object', options);
    const { vni, port = VXLAN_PORT, remotes = [], learning = true, mtu = 1450, ageing = 300, maxEntries = 8192, clock = realClock } = options;
    if (!Number.isInteger(vni) || vni < 0 || vni > MAX_VNI) throw invalidOption('vni', `an integer from 0 to ${MAX_VNI}`, vni);
    checkPort(port, 'port');
    if (!Array.isArray(remotes)) throw invalidOption('remotes', 'an array of addresses or { address, port }', remotes);
    if (typeof learning !== 'boolean') throw invalidOption('learning', 'a boolean', learning);
    checkMtu(mtu, 'mtu');
    if (typeof ageing !== 'number' || !(ageing > 0)) throw invalidOption('ageing', 'a number of seconds above 0 (or Infinity)', ageing);
    if (!Number.isInteger(maxEntries) || maxEntries < 1) throw invalidOption('maxEntries', 'a positive integer', maxEntries);
    if (typeof clock?.now !== 'function') throw invalidOption('clock', 'a Clock', clock);
    this.#transport = transport;
    this.vni = vni;
    this.port = port;
    this.learning = learning;
    this.mtu = mtu;
    this.#clock = clock;
    this.#ageingMs = ageing * 1000;
    this.#maxEntries = maxEntries;
    for (const r of remotes) this.addRemote(r);
  }

  /** The flood list (static remotes). */
  get remotes(): VxlanRemote[] {
    return this.#remotes.map((r) => ({ ...r }));
  }

  /** Adds a VTEP to the flood list (`bridge fdb append 00:00:00:00:00:00 dst ADDRESS`). */
  addRemote(remote: string | VxlanRemote): void {
    const r = typeof remote === 'string' ? { address: remote } : remote;
    if (r === null || typeof r !== 'object') throw invalidOption('remotes', 'an array of addresses or { address, port }', remote);
    const address = canonical(r.address, 'address');
    const port = r.port ?? this.port;
    checkPort(port, 'port');
    if (!this.#remotes.some((x) => x.address === address && x.port === port)) this.#remotes.push({ address, port });
    this.#flood = null;
  }

  removeRemote(remote: string | VxlanRemote): boolean {
    const r = typeof remote === 'string' ? { address: remote } : remote;
    const address = canonical(r?.address, 'address');
    const port = r.port ?? this.port;
    const i = this.#remotes.findIndex((x) => x.address === address && x.port === port);
    if (i >= 0) this.#remotes.splice(i, 1);
    this.#flood = null;
    return i >= 0;
  }

  readonly fdb = {
    /** Every live entry. */
    list: (): VxlanFdbEntry[] => {
      const now = this.#clock.now();
      const out: VxlanFdbEntry[] = [];
      for (const [key, e] of this.#fdb) {
        if (!e.static && now - e.seen > this.#ageingMs) continue;
        out.push({ mac: keyMac(key), address: e.address, port: e.port, static: e.static, age: e.static ? 0 : (now - e.seen) / 1000 });
      }
      return out;
    },
    /** A static entry (`bridge fdb add MAC dev vx0 dst ADDRESS`): never aged, never relearnt. */
    add: (entry: { mac: string; address: string; port?: number }): void => {
      if (entry === null || typeof entry !== 'object') throw invalidOption('entry', 'an object', entry);
      const mac = typeof entry.mac === 'string' ? parseMac(entry.mac) : null;
      if (!mac || (mac[0]! & 1) !== 0) throw invalidOption('mac', "a unicast MAC address like '02:00:00:00:00:01'", entry.mac);
      const port = entry.port ?? this.port;
      checkPort(port, 'port');
      this.#fdb.set(macKey(mac, 0), { address: canonical(entry.address, 'address'), port, static: true, seen: this.#clock.now() });
      this.#flood = null;
    },
    delete: (mac: string): boolean => {
      const bytes = typeof mac === 'string' ? parseMac(mac) : null;
      if (!bytes) throw invalidOption('mac', "a MAC address like '02:00:00:00:00:01'", mac);
      this.#flood = null;
      return this.#fdb.delete(macKey(bytes, 0));
    },
    /** Removes the learnt entries; static ones stay. */
    flush: (): number => {
      let n = 0;
      for (const [key, e] of this.#fdb) if (!e.static && this.#fdb.delete(key)) n++;
      this.#flood = null;
      return n;
    },
  };

  attach(receive: FrameReceiver): void {
    this.#receive = receive;
  }

  send(frame: Uint8Array): void {
    if (this.#closed) return;
    if (frame.length > this.mtu + ETHERNET_HEADER || frame.length < ETHERNET_HEADER) {
      this.counters.oversize++;
      return;
    }
    if ((frame[0]! & 1) === 0) {
      const e = this.#fdb.get(macKey(frame, 0));
      if (e) {
        if (e.static || this.#clock.now() - e.seen <= this.#ageingMs) {
          this.#emit(frame, e.address, e.port);
          return;
        }
        this.#fdb.delete(macKey(frame, 0));
        this.#flood = null;
      }
    }
    // Rebuilt at least every second too, so learnt VTEPs age out of it.
    const now = this.#clock.now();
    if (this.#flood === null || now - this.#floodBuilt > 1000) {
      this.#flood = this.#floodList();
      this.#floodBuilt = now;
    }
    const targets = this.#flood;
    if (targets.length === 0) {
      this.counters.noRemote++;
      return;
    }
    this.counters.flooded++;
    for (const t of targets) this.#emit(frame, t.address, t.port);
  }

  #floodList(): { address: string; port: number }[] {
    const out = [...this.#remotes];
    const now = this.#clock.now();
    for (const e of this.#fdb.values()) {
      if (e.static || now - e.seen > this.#ageingMs) continue;
      if (!out.some((x) => x.address === e.address && x.port === e.port)) out.push({ address: e.address, port: e.port });
    }
    return out;
  }

  #emit(frame: Uint8Array, address: string, port: number): void {
    this.counters.framesSent++;
    this.counters.bytesSent += frame.length;
    const size = VXLAN_HEADER + frame.length;
    if (this.#transport.sendSegments) {
      if (this.#runCount > 0 && (address !== this.#runAddress || port !== this.#runPort || size > this.#runSegment
        || this.#runUsed < this.#runCount * this.#runSegment || this.#runUsed + size > RUN_MAX_BYTES || this.#runCount >= RUN_MAX_PACKETS)) {
        this.flush();
      }
      const run = (this.#run ??= new Uint8Array(RUN_MAX_BYTES));
      if (this.#runCount === 0) {
        this.#runAddress = address;
        this.#runPort = port;
        this.#runSegment = size;
        if (!this.#runFlushQueued) {
          this.#runFlushQueued = true;
          queueMicrotask(this.#flushRun);
        }
      }
      emitVxlanHeader(this.vni, run, this.#runUsed);
      run.set(frame, this.#runUsed + VXLAN_HEADER);
      this.#runUsed += size;
      this.#runCount++;
      return;
    }
    const packet = this.#transport.alloc?.(size) ?? new Uint8Array(size);
    emitVxlanHeader(this.vni, packet, 0);
    packet.set(frame, VXLAN_HEADER);
    this.#transport.send(packet, address, port);
  }

  /** Sends the packets waiting in the run (the stack or switch calls this after a burst of send()s). */
  flush(): void {
    const count = this.#runCount;
    if (count === 0) return;
    const run = this.#run!;
    const used = this.#runUsed;
    const segment = this.#runSegment;
    this.#runCount = 0;
    this.#runUsed = 0;
    if (this.#closed) return;
    // (A transport may drop sendSegments for good when GSO turns out not to work.)
    if (this.#transport.sendSegments?.(run, used, segment, this.#runAddress, this.#runPort)) return;
    // One by one, each a copy the transport keeps (its queue, when full).
    for (let at = 0; at < used; at += segment) {
      const end = Math.min(used, at + segment);
      const packet = this.#transport.alloc?.(end - at) ?? new Uint8Array(end - at);
      packet.set(run.subarray(at, end));
      this.#transport.send(packet, this.#runAddress, this.#runPort);
    }
  }

  /** A UDP payload from `address` (the transport calls this; the bytes need only be valid during the call). */
  input(packet: Uint8Array, address: string): void {
    if (this.#closed) return;
    const p = parseVxlan(packet);
    if (!p) {
      this.counters.badPacket++;
      return;
    }
    if (p.vni !== this.vni) {
      this.counters.wrongVni++;
      return;
    }
    const frame = p.frame;
    if (frame.length > this.mtu + ETHERNET_HEADER) {
      this.counters.oversize++;
      return;
    }
    this.counters.framesReceived++;
    this.counters.bytesReceived += frame.length;
    if (this.learning && (frame[6]! & 1) === 0) this.#learn(macKey(frame, 6), address);
    this.#receive?.(frame);
  }

  #learn(key: number, address: string): void {
    const now = this.#clock.now();
    const e = this.#fdb.get(key);
    if (e) {
      if (e.static) return;
      e.seen = now;
      if (e.address !== address || e.port !== this.port) {
        e.address = address;
        e.port = this.port;
        this.#flood = null;
      }
      return;
    }
    if (this.#fdb.size >= this.#maxEntries) {
      for (const [k, x] of this.#fdb) if (!x.static && now - x.seen > this.#ageingMs) this.#fdb.delete(k);
      if (this.#fdb.size >= this.#maxEntries) return;
    }
    this.#fdb.set(key, { address, port: this.port, static: false, seen: now });
    this.#flood = null;
  }

  close(): void {
    if (this.#closed) return;
    this.flush();
    this.#closed = true;
    this.#receive = null;
    this.#transport.close();
  }
}
