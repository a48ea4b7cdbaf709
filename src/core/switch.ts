/**
 * A learning Ethernet switch in the process (IEEE 802.1D/802.1Q bridging, as
 * a Linux bridge with vlan_filtering does it): ports attach to any Ethernet
 * Link, source MACs are learnt per VLAN and aged out, broadcast, multicast
 * and unknown unicast are flooded to the VLAN's other ports, and nothing goes
 * back out of the port it came in on.
 *
 * A state machine over frames: time comes from an injected Clock (ageing is
 * checked against clock.now() when an entry is used, so no timer runs), and
 * frames are forwarded synchronously as the views they arrived as. Links
 * copy what they keep (the Link contract), so an untagged frame crosses the
 * switch without a copy; only adding or removing a VLAN tag makes one.
 *
 * No spanning tree: a loop of switches forwards a broadcast forever (each
 * hop synchronously, so it ends in a stack overflow). Build trees.
 */
import { type Clock, realClock } from './clock.js';
import { invalidOption } from './errors.js';
import { checkMtu, createCable, ETHERNET_HEADER, type Link, type LinkCounters } from './link.js';
import { formatMac, parseMac } from '../wire/address.js';
import { ETHERNET, EtherType } from '../wire/ethernet.js';
import { addVlanTag, MAX_VID, MIN_VID, removeVlanTag, VLAN_TAG_LEN } from '../wire/vlan.js';

export interface SwitchOptions {
  /** Seconds a learnt MAC address stays without being seen (Linux bridge ageing_time). `Infinity`: never. Default 300. */
  ageing?: number;
  /** Most MAC table entries (learning stops when full, frames are then flooded; a MAC flood cannot grow memory). Default 8192. */
  maxEntries?: number;
  /** Time source for ageing; a ManualClock in tests. Default the real clock. */
  clock?: Clock;
}

export interface SwitchPortOptions {
  /** Default `portN`. */
  name?: string;
  /** Largest payload (IP packet) the port passes each way; longer frames are counted and dropped. Default the link's MTU. */
  mtu?: number;
  /**
   * The port's untagged VLAN (its PVID): untagged frames in belong to it,
   * its frames go out untagged. `null`: untagged frames are dropped. Default
   * 1, or `null` when `trunk` is given.
   */
  vlan?: number | null;
  /** VLANs the port carries tagged (802.1Q), as a trunk. Default none. */
  trunk?: number[];
}

export interface SwitchPortCounters {
  /** Frames and bytes that came in on the port (before any drop for VLAN or size). */
  rxFrames: number;
  rxBytes: number;
  /** Frames and bytes sent out of the port. */
  txFrames: number;
  txBytes: number;
  /** Frames in longer than the port's MTU allows (dropped). */
  rxOversize: number;
  /** Frames that would have gone out longer than the port's MTU (dropped). */
  txOversize: number;
  /** Frames in shorter than an Ethernet header (dropped). */
  rxRunt: number;
  /** Frames in whose VLAN the port does not carry (dropped). */
  rxVlanDropped: number;
}

export interface SwitchCounters {
  /** Unicast frames sent to the one port their destination was learnt on. */
  forwarded: number;
  /** Frames flooded: broadcast, multicast, unknown unicast. */
  flooded: number;
  /** Frames whose destination was learnt on their own ingress port (dropped). */
  filtered: number;
  /** Entries learnt, and learnt entries that moved to another port. */
  learned: number;
  moved: number;
  /** Source addresses not learnt because the table was full. */
  tableFull: number;
}

export interface MacTableEntry {
  mac: string;
  vlan: number;
  port: string;
  static: boolean;
  /** Seconds since the address was last seen (0 for static entries). */
  age: number;
}

interface Entry {
  port: SwitchPort;
  seen: number;
  static: boolean;
  /** Removed from the table (ports' caches check it). */
  dead: boolean;
}

function macKey(b: Uint8Array, at: number): number {
  return ((b[at]! << 8) | b[at + 1]!) * 0x1_0000_0000 + (((b[at + 2]! << 24) | (b[at + 3]! << 16) | (b[at + 4]! << 8) | b[at + 5]!) >>> 0);
}

function keyMac(key: number): string {
  const b = new Uint8Array(6);
  const hi = Math.floor(key / 0x1_0000_0000);
  const lo = key >>> 0;
  b[0] = hi >> 8;
  b[1] = hi & 0xff;
  b[2] = lo >>> 24;
  b[3] = (lo >>> 16) & 0xff;
  b[4] = (lo >>> 8) & 0xff;
  b[5] = lo & 0xff;
  return formatMac(b);
}

function checkVid(vid: unknown, name: string): asserts vid is number {
  if (typeof vid !== 'number' || !Number.isInteger(vid) || vid < MIN_VID || vid > MAX_VID) {
    throw invalidOption(name, `a VLAN id from ${MIN_VID} to ${MAX_VID}`, vid);
  }
}

/** One port of a Switch, attached to one link. */
export class SwitchPort {
  readonly counters: SwitchPortCounters = {
    rxFrames: 0, rxBytes: 0, txFrames: 0, txBytes: 0, rxOversize: 0, txOversize: 0, rxRunt: 0, rxVlanDropped: 0,
  };
  /** The untagged VLAN, 0 for none. */
  readonly pvid: number;
  readonly tagged: ReadonlySet<number>;
  /** Largest untagged frame in or out (MTU plus the Ethernet header). */
  readonly maxFrame: number;
  removed = false;
  // The last source and destination seen on this port and their entries: a
  // flow's frames skip the table lookups (48-bit keys are heap numbers).
  /** @internal */ srcKey = -1;
  /** @internal */ srcVid = 0;
  /** @internal */ srcEntry: Entry | null = null;
  /** @internal */ dstKey = -1;
  /** @internal */ dstVid = 0;
  /** @internal */ dstEntry: Entry | null = null;

  /** @internal */
  constructor(readonly switch_: Switch, readonly link: Link, readonly name: string, readonly mtu: number, pvid: number, tagged: Set<number>) {
    this.pvid = pvid;
    this.tagged = tagged;
    this.maxFrame = mtu + ETHERNET_HEADER;
  }

  /** The port's untagged VLAN, or null. */
  get vlan(): number | null {
    return this.pvid === 0 ? null : this.pvid;
  }

  /** The VLANs the port carries tagged. */
  get trunk(): number[] {
    return [...this.tagged].sort((a, b) => a - b);
  }

  /** Detaches the port: its MAC entries go, its link is closed. */
  remove(): void {
    this.switch_.removePort(this);
  }
}

/** A switch's MAC table: learnt and static entries per VLAN (`switch.macTable`). */
export class MacTable {
  /** vid → MAC (48-bit number) → entry. */
  readonly #vlans = new Map<number, Map<number, Entry>>();
  #size = 0;

  /** @internal */
  constructor(readonly clock: Clock, readonly ageingMs: number, readonly maxEntries: number, private readonly ports: () => SwitchPort[]) {}

  get size(): number {
    return this.#size;
  }

  /** @internal The entry for `mac` in `vid`, dropping an expired one. */
  lookup(vid: number, key: number, now: number): Entry | null {
    const table = this.#vlans.get(vid);
    if (!table) return null;
    const e = table.get(key);
    if (!e) return null;
    if (!e.static && now - e.seen > this.ageingMs) {
      table.delete(key);
      e.dead = true;
      this.#size--;
      return null;
    }
    return e;
  }

  /** @internal The entry learnt last (for the port's cache). */
  learnt: Entry | null = null;

  /** @internal Learns (vid, key) on port; returns 0 unchanged, 1 new, 2 moved, -1 table full. */
  learn(vid: number, key: number, port: SwitchPort, now: number): number {
    let table = this.#vlans.get(vid);
    if (!table) this.#vlans.set(vid, (table = new Map()));
    const e = table.get(key);
    this.learnt = null;
    if (e) {
      if (e.static) return 0;
      e.seen = now;
      this.learnt = e;
      if (e.port === port) return 0;
      e.port = port;
      return 2;
    }
    if (this.#size >= this.maxEntries) {
      this.#sweep(now);
      if (this.#size >= this.maxEntries) return -1;
    }
    const entry: Entry = { port, seen: now, static: false, dead: false };
    table.set(key, entry);
    this.learnt = entry;
    this.#size++;
    return 1;
  }

  #sweep(now: number): void {
    for (const table of this.#vlans.values()) {
      for (const [key, e] of table) {
        if (!e.static && now - e.seen > this.ageingMs) {
          table.delete(key);
          e.dead = true;
          this.#size--;
        }
      }
    }
  }

  #remove(match: (vid: number, e: Entry) => boolean): number {
    let n = 0;
    for (const [vid, table] of this.#vlans) {
      for (const [key, e] of table) {
        if (match(vid, e)) {
          table.delete(key);
          e.dead = true;
          n++;
        }
      }
    }
    this.#size -= n;
    return n;
  }

  /** Every live entry, static ones included. */
  list(): MacTableEntry[] {
    const now = this.clock.now();
    this.#sweep(now);
    const out: MacTableEntry[] = [];
    for (const [vlan, table] of this.#vlans) {
      for (const [key, e] of table) {
        out.push({ mac: keyMac(key), vlan, port: e.port.name, static: e.static, age: e.static ? 0 : (now - e.seen) / 1000 });
      }
    }
    return out;
  }

  /** A static entry: never aged, never moved by learning. */
  add(entry: { mac: string; port: SwitchPort | string; vlan?: number }): void {
    if (entry === null || typeof entry !== 'object') throw invalidOption('entry', 'an object', entry);
    const mac = typeof entry.mac === 'string' ? parseMac(entry.mac) : null;
    if (!mac || (mac[0]! & 1) !== 0) throw invalidOption('mac', "a unicast MAC address like '02:00:00:00:00:01'", entry.mac);
    const port = typeof entry.port === 'string' ? this.ports().find((p) => p.name === entry.port) : entry.port;
    if (!(port instanceof SwitchPort) || port.removed || !this.ports().includes(port)) throw invalidOption('port', 'a port of this switch (or its name)', entry.port);
    const vid = entry.vlan ?? 1;
    checkVid(vid, 'vlan');
    let table = this.#vlans.get(vid);
    if (!table) this.#vlans.set(vid, (table = new Map()));
    const key = macKey(mac, 0);
    const old = table.get(key);
    if (old) old.dead = true;
    else this.#size++;
    table.set(key, { port, seen: this.clock.now(), static: true, dead: false });
  }

  /** Removes the entry for mac (in one VLAN, or all); true when there was one. */
  delete(mac: string, vlan?: number): boolean {
    const bytes = typeof mac === 'string' ? parseMac(mac) : null;
    if (!bytes) throw invalidOption('mac', "a MAC address like '02:00:00:00:00:01'", mac);
    if (vlan !== undefined) checkVid(vlan, 'vlan');
    const key = macKey(bytes, 0);
    let found = false;
    for (const [vid, table] of this.#vlans) {
      const e = table.get(key);
      if (e && (vlan === undefined || vid === vlan)) {
        table.delete(key);
        e.dead = true;
        this.#size--;
        found = true;
      }
    }
    return found;
  }

  /** Removes learnt entries (of one port or VLAN, or all); static ones stay. Returns how many went. */
  flush(filter: { port?: SwitchPort | string; vlan?: number } = {}): number {
    const { port, vlan } = filter;
    if (vlan !== undefined) checkVid(vlan, 'vlan');
    return this.#remove((vid, e) => !e.static && (vlan === undefined || vid === vlan)
      && (port === undefined || e.port === port || e.port.name === port));
  }

  /** @internal */
  forgetPort(port: SwitchPort): void {
    this.#remove((_, e) => e.port === port);
  }
}

/** A learning Ethernet switch: see createSwitch. */
export class Switch {
  readonly counters: SwitchCounters = { forwarded: 0, flooded: 0, filtered: 0, learned: 0, moved: 0, tableFull: 0 };
  readonly macTable: MacTable;
  readonly clock: Clock;
  readonly #ports: SwitchPort[] = [];
  /** vid → the ports that carry it (tagged or untagged). */
  readonly #members = new Map<number, SwitchPort[]>();
  readonly #dirty = new Set<SwitchPort>();
  #flushQueued = false;
  #nextPort = 1;
  #closed = false;

  constructor(options: SwitchOptions = {}) {
    if (options === null || typeof options !== 'object') throw invalidOption('options', 'an object', options);
    const { ageing = 300, maxEntries = 8192, clock = realClock } = options;
    if (typeof ageing !== 'number' || !(ageing > 0)) throw invalidOption('ageing', 'a number of seconds above 0 (or Infinity)', ageing);
    if (!Number.isInteger(maxEntries) || maxEntries < 1) throw invalidOption('maxEntries', 'a positive integer', maxEntries);
    if (typeof clock?.now !== 'function' || typeof clock.setTimer !== 'function') throw invalidOption('clock', 'a Clock', clock);
    this.clock = clock;
    this.macTable = new MacTable(clock, ageing * 1000, maxEntries, () => this.#ports);
  }

  get ports(): SwitchPort[] {
    return [...this.#ports];
  }

  /** Attaches an Ethernet link (a cable end, a TAP, a socket, a VXLAN link, another switch's link) as a new port. */
  addPort(link: Link, options: SwitchPortOptions = {}): SwitchPort {
    if (this.#closed) throw Object.assign(new Error('switch is closed'), { code: 'ERR_INVALID_STATE' });
    if (!link || typeof link.send !== 'function' || typeof link.attach !== 'function') throw invalidOption('link', 'a Link', link);
    if (link.medium !== 'ethernet') throw invalidOption('link', "a link of medium 'ethernet'", link.medium);
    if (this.#ports.some((p) => p.link === link)) throw invalidOption('link', 'a link not already on this switch', '[Link]');
    if (options === null || typeof options !== 'object') throw invalidOption('options', 'an object', options);
    const name = options.name ?? `port${this.#nextPort}`;
    if (typeof name !== 'string' || name === '' || this.#ports.some((p) => p.name === name)) throw invalidOption('name', 'a name no other port has', name);
    const mtu = options.mtu ?? link.mtu;
    checkMtu(mtu, 'mtu');
    const trunk = options.trunk ?? [];
    if (!Array.isArray(trunk)) throw invalidOption('trunk', 'an array of VLAN ids', trunk);
    for (const vid of trunk) checkVid(vid, 'trunk');
    const vlan = options.vlan === undefined ? (trunk.length > 0 ? null : 1) : options.vlan;
    if (vlan !== null) checkVid(vlan, 'vlan');
    const tagged = new Set(trunk);
    if (vlan !== null) tagged.delete(vlan);
    const port = new SwitchPort(this, link, name, mtu, vlan ?? 0, tagged);
    this.#nextPort++;
    this.#ports.push(port);
    for (const vid of [...(vlan === null ? [] : [vlan]), ...tagged]) {
      let m = this.#members.get(vid);
      if (!m) this.#members.set(vid, (m = []));
      m.push(port);
    }
    // A device link offering in-place reads only does so into a stack's
    // memory; attach() is the path for everything else.
    link.attach((frame) => this.#input(port, frame));
    return port;
  }

  /**
   * A new port on an in-memory cable, and the cable's other end, to give to
   * a stack (`stack.addInterface({ link })`) or to another switch's addPort.
   */
  createLink(options: SwitchPortOptions = {}): Link & { counters: LinkCounters; port: SwitchPort } {
    const mtu = options?.mtu ?? 1500;
    checkMtu(mtu, 'mtu');
    const [ours, theirs] = createCable({ mtu });
    const port = this.addPort(ours, options);
    return Object.assign(theirs, { port });
  }

  /** @internal */
  removePort(port: SwitchPort): void {
    const i = this.#ports.indexOf(port);
    if (i < 0) return;
    this.#ports.splice(i, 1);
    port.removed = true;
    for (const [vid, m] of this.#members) {
      const j = m.indexOf(port);
      if (j >= 0) m.splice(j, 1);
      if (m.length === 0) this.#members.delete(vid);
    }
    this.#dirty.delete(port);
    this.macTable.forgetPort(port);
    port.link.close();
  }

  /** Removes every port (closing their links). */
  close(): void {
    this.#closed = true;
    for (const p of [...this.#ports]) this.removePort(p);
  }

  #input(port: SwitchPort, frame: Uint8Array): void {
    if (port.removed) return;
    const c = port.counters;
    const len = frame.length;
    if (len < ETHERNET.HEADER_LEN) {
      c.rxRunt++;
      return;
    }
    c.rxFrames++;
    c.rxBytes += len;
    let vid: number;
    let tci: number;
    // The frame as it goes out of untagged and of tagged ports, made on
    // first need: the arriving view itself when no tag changes.
    let untagged: Uint8Array | null = null;
    let tagged: Uint8Array | null = null;
    if (((frame[ETHERNET.ETHERTYPE]! << 8) | frame[ETHERNET.ETHERTYPE + 1]!) === EtherType.VLAN) {
      if (len < ETHERNET.VLAN_HEADER_LEN) {
        c.rxRunt++;
        return;
      }
      if (len > port.maxFrame + VLAN_TAG_LEN) {
        c.rxOversize++;
        return;
      }
      tci = (frame[ETHERNET.VLAN_TCI]! << 8) | frame[ETHERNET.VLAN_TCI + 1]!;
      vid = tci & 0xfff;
      if (vid === 0) {
        // A priority tag (802.1Q 6.9.1): the frame belongs to the PVID.
        if (port.pvid === 0) {
          c.rxVlanDropped++;
          return;
        }
        vid = port.pvid;
        tci = (tci & 0xf000) | vid;
        untagged = removeVlanTag(frame);
      } else if (vid !== port.pvid && !port.tagged.has(vid)) {
        c.rxVlanDropped++;
        return;
      } else {
        tagged = frame;
      }
    } else {
      if (port.pvid === 0) {
        c.rxVlanDropped++;
        return;
      }
      if (len > port.maxFrame) {
        c.rxOversize++;
        return;
      }
      vid = port.pvid;
      tci = vid;
      untagged = frame;
    }

    const now = this.#time();
    const sw = this.counters;
    const table = this.macTable;
    if ((frame[ETHERNET.SRC]! & 1) === 0) {
      const key = macKey(frame, ETHERNET.SRC);
      const e = port.srcEntry;
      if (e !== null && !e.dead && port.srcKey === key && port.srcVid === vid && e.port === port) {
        e.seen = now;
      } else {
        const r = table.learn(vid, key, port, now);
        if (r === 1) sw.learned++;
        else if (r === 2) sw.moved++;
        else if (r === -1) sw.tableFull++;
        port.srcEntry = table.learnt;
        port.srcKey = key;
        port.srcVid = vid;
      }
    }
    let to: SwitchPort | null = null;
    if ((frame[ETHERNET.DST]! & 1) === 0) {
      const key = macKey(frame, ETHERNET.DST);
      let e = port.dstEntry;
      if (e === null || e.dead || port.dstKey !== key || port.dstVid !== vid || (!e.static && now - e.seen > table.ageingMs)) {
        e = table.lookup(vid, key, now);
        port.dstEntry = e;
        port.dstKey = key;
        port.dstVid = vid;
      }
      if (e !== null) to = e.port;
    }
    if (to) {
      if (to === port) {
        sw.filtered++;
        return;
      }
      sw.forwarded++;
      if (to.pvid === vid) this.#output(to, (untagged ??= removeVlanTag(tagged!)), to.maxFrame);
      else if (to.tagged.has(vid)) this.#output(to, (tagged ??= addVlanTag(untagged!, tci)), to.maxFrame + VLAN_TAG_LEN);
      return;
    }
    sw.flooded++;
    const members = this.#members.get(vid);
    if (!members) return;
    for (let i = 0; i < members.length; i++) {
      const out = members[i]!;
      if (out === port) continue;
      if (out.pvid === vid) this.#output(out, (untagged ??= removeVlanTag(tagged!)), out.maxFrame);
      else this.#output(out, (tagged ??= addVlanTag(untagged!, tci)), out.maxFrame + VLAN_TAG_LEN);
    }
  }

  /**
   * The clock read once per burst of frames (until the microtasks run): the
   * table's times need seconds, not a clock call per frame.
   */
  #now = 0;
  #nowValid = false;
  readonly #forgetNow = (): void => {
    this.#nowValid = false;
  };

  #time(): number {
    if (!this.#nowValid) {
      this.#now = this.clock.now();
      this.#nowValid = true;
      queueMicrotask(this.#forgetNow);
    }
    return this.#now;
  }

  #output(port: SwitchPort, frame: Uint8Array, max: number): void {
    const c = port.counters;
    if (frame.length > max) {
      c.txOversize++;
      return;
    }
    c.txFrames++;
    c.txBytes += frame.length;
    port.link.send(frame);
    if (port.link.flush) {
      // Links batch writes until flush(); one flush per port after the
      // burst of frames this event-loop turn delivers.
      this.#dirty.add(port);
      if (!this.#flushQueued) {
        this.#flushQueued = true;
        queueMicrotask(() => this.#flush());
      }
    }
  }

  #flush(): void {
    this.#flushQueued = false;
    for (const p of this.#dirty) p.link.flush!();
    this.#dirty.clear();
  }
}

/**
 * A learning Ethernet switch. Ports attach to Ethernet links
 * (`sw.addPort(link, { vlan, trunk, mtu })`) or come with a cable whose
 * other end is returned for a stack (`sw.createLink()`); `sw.macTable`
 * lists, adds (static), deletes and flushes entries.
 *
 * @example
 * const sw = createSwitch();
 * for (let i = 1; i <= 8; i++) createStack().addInterface({ link: sw.createLink(), ipv4: `10.0.0.${i}/24` });
 */
export function createSwitch(options: SwitchOptions = {}): Switch {
  return new Switch(options);
}
