/** A stack's network interface: one link, its addresses and its counters. */
import type { Link, Medium } from './link.js';
import type { WasmSession } from './session.js';
import { Emitter } from './emitter.js';
import { formatIPv4, formatIPv6, formatMac } from '../wire/address.js';

export interface InterfaceCounters {
  rxFrames: number;
  rxBytes: number;
  txFrames: number;
  txBytes: number;
  /** Frames dropped at the boundary, by reason. */
  rxDropped: { noMemory: number; badLength: number; down: number; queueFull: number };
  txErrors: number;
}

/** MIB-II interface counters kept by lwIP (RFC 2863 names). */
export interface MibCounters {
  inOctets: number; inUcastPkts: number; inNUcastPkts: number; inDiscards: number; inErrors: number;
  inUnknownProtos: number; outOctets: number; outUcastPkts: number; outNUcastPkts: number; outDiscards: number;
  outErrors: number;
}

const MIB_FIELDS: (keyof MibCounters)[] = ['inOctets', 'inUcastPkts', 'inNUcastPkts', 'inDiscards', 'inErrors',
  'inUnknownProtos', 'outOctets', 'outUcastPkts', 'outNUcastPkts', 'outDiscards', 'outErrors'];

export interface Ipv4Config {
  address: string;
  netmask: string;
  prefixLength: number;
  gateway: string | null;
}

export type Ipv6State = 'tentative' | 'preferred' | 'deprecated' | 'duplicated' | 'invalid';

export interface Ipv6Address {
  address: string;
  state: Ipv6State;
}

function ipv6State(s: number): Ipv6State {
  // ip6_addr.h: INVALID 0, TENTATIVE 0x08.., VALID 0x10, PREFERRED 0x30, DEPRECATED 0x10, DUPLICATED 0x40
  if (s === 0) return 'invalid';
  if (s & 0x40) return 'duplicated';
  if (s & 0x08) return 'tentative';
  if ((s & 0x30) === 0x30) return 'preferred';
  return 'deprecated';
}

export interface InterfaceEvents {
  /** DHCP or SLAAC changed the interface's addresses. */
  address: () => void;
  /**
   * The link lost its peer or closed (`reason` as the link's 'down' and
   * 'close' give it: 'peer', 'error', 'local'); the interface is marked
   * link-down in lwIP (no routes through it, DHCP paused) until 'up'.
   */
  down: (reason: 'peer' | 'error' | 'local', error?: Error) => void;
  /** The link has a peer again (a restarted VM): link-up, DHCP and ND restart. */
  up: () => void;
}

export class Interface extends Emitter<InterfaceEvents> {
  readonly counters: InterfaceCounters = {
    rxFrames: 0, rxBytes: 0, txFrames: 0, txBytes: 0, rxDropped: { noMemory: 0, badLength: 0, down: 0, queueFull: 0 }, txErrors: 0,
  };
  removed = false;
  /** Frees what the interface holds inside the stack (in-place receive slots). */
  onRelease: (() => void) | null = null;
  /** Stops following the link's events (the interface is going). */
  onUnwatch: (() => void) | null = null;
  /** The interface takes its IPv4 address from DHCP. */
  dhcp: boolean;
  /** False while the link has no peer or has closed (see the 'down' event). */
  linkUp = true;
  /** False once the link closed for good. */
  linkOpen = true;

  constructor(
    readonly session: WasmSession,
    readonly handle: number,
    readonly index: number,
    readonly name: string,
    readonly link: Link,
    readonly medium: Medium,
    readonly mtu: number,
    readonly mac: string | null,
    dhcp: boolean,
    private readonly onRemove: (iface: Interface) => void,
  ) {
    super();
    this.dhcp = dhcp;
  }

  #addresses(): Uint32Array {
    const s = this.session;
    const out = s.scratch(4 * (4 + 5 * 4));
    s.run((x) => x.tt_netif_addresses(this.handle, out));
    return new Uint32Array(s.u8.buffer.slice(out, out + 4 * (4 + 5 * 4)));
  }

  get ipv4(): Ipv4Config | null {
    if (this.removed || !this.session.alive) return null;
    const w = this.#addresses();
    if (w[0] === 0) return null;
    const bytes = new Uint8Array(w.buffer, 0, 12);
    const mask = w[1]!;
    let prefixLength = 0;
    for (let i = 0; i < 4; i++) prefixLength += popcount8(bytes[4 + i]!);
    return {
      address: formatIPv4(bytes, 0),
      netmask: formatIPv4(bytes, 4),
      prefixLength: mask === 0 ? 0 : prefixLength,
      gateway: w[2] === 0 ? null : formatIPv4(bytes, 8),
    };
  }

  get ipv6(): Ipv6Address[] {
    if (this.removed || !this.session.alive) return [];
    const w = this.#addresses();
    const bytes = new Uint8Array(w.buffer);
    const out: Ipv6Address[] = [];
    for (let i = 0; i < w[3]!; i++) {
      const base = 4 + i * 5;
      const state = w[base + 4]!;
      if (state === 0) continue;
      out.push({ address: formatIPv6(bytes, base * 4), state: ipv6State(state) });
    }
    return out;
  }

  /** lwIP's MIB-II counters for this interface. */
  mib(): MibCounters {
    const s = this.session;
    const out = s.scratch(MIB_FIELDS.length * 4);
    s.run((x) => x.tt_netif_counters(this.handle, out));
    const result = {} as MibCounters;
    MIB_FIELDS.forEach((f, i) => (result[f] = s.dv.getUint32(out + i * 4, true)));
    return result;
  }

  /** Detaches the interface: its link is closed and its routes removed. */
  remove(): void {
    if (this.removed) return;
    this.onRemove(this);
  }

  /** The stack calls this when its link's state changes (LinkEvents). */
  _setLink(up: boolean, reason?: 'peer' | 'error' | 'local', error?: Error): void {
    if (this.linkUp === up || (up && !this.linkOpen)) return;
    this.linkUp = up;
    if (!this.removed && this.session.alive) this.session.run((x) => x.tt_netif_set_link_up(this.handle, up ? 1 : 0));
    if (up) this.emit('up');
    else this.emit('down', reason ?? 'peer', error);
  }

  override toString(): string {
    return this.mac ? `${this.name} (${this.mac})` : this.name;
  }
}

function popcount8(b: number): number {
  let n = 0;
  for (; b; b &= b - 1) n++;
  return n;
}

export function randomMac(): Uint8Array {
  const mac = new Uint8Array(6);
  globalThis.crypto.getRandomValues(mac);
  mac[0] = (mac[0]! & 0xfe) | 0x02; // unicast, locally administered
  return mac;
}

export { formatMac };
