/**
 * Protocol-aware mutation of captured frames: each operator aims at one
 * field of one layer (a length, a flag, an option, a checksum, a fragment
 * offset, a sequence number relative to a live connection), then lengths
 * and checksums are fixed up, or on purpose not, so that most mutants get
 * past the first checks and reach the code that parses what was changed.
 * Every choice comes from the Rng given, so a campaign is reproducible from
 * its seed.
 */
import { Rng } from '../support/frames.js';
import { IpProtocol } from '../../src/wire/ipv4.js';
import { EtherType } from '../../src/wire/ethernet.js';
import {
  classify, dissect, ETH_HEADER, fixChecksums, fixLengths, getU16, getU32, setU16, setU32, type Dissection, type Protocol,
} from './dissect.js';

export { Rng };

/** A captured frame sent by the peer to the victim: what mutations start from. */
export interface Seed {
  protocol: Protocol;
  frame: Uint8Array;
}

/** A TCP connection from the peer to the victim, as the peer last saw it. */
export interface LiveTcp {
  family: 4 | 6;
  /** Peer's and victim's IP addresses and ports, as on the peer's segments. */
  src: Uint8Array;
  dst: Uint8Array;
  srcPort: number;
  dstPort: number;
  /** The next sequence number the peer sends. */
  seq: number;
  /** The next sequence number the peer expects from the victim (what it acknowledges). */
  ack: number;
  window: number;
}

export interface MutationContext {
  rng: Rng;
  /** A live connection of the frame's family, if one is up. */
  live(family: 4 | 6): LiveTcp | undefined;
  victim: { mac: Uint8Array; ipv4: Uint8Array; ipv6: Uint8Array };
}

export interface Mutant {
  frame: Uint8Array;
  /** The operators applied, for the corpus and for reading a failure. */
  ops: string[];
  /** A checksum was left wrong on purpose (the frame must be dropped). */
  badChecksum: boolean;
}

/** A frame being mutated, with its dissection kept current. */
class Work {
  d: Dissection;
  ops: string[] = [];
  lengthsDone = false;
  checksumBroken = false;
  noFixChecksum = false;
  constructor(public frame: Uint8Array) {
    this.d = dissect(frame);
  }
  redissect(): void {
    this.d = dissect(this.frame);
  }
  /** Replaces bytes [at, at + remove) with `insert`. */
  splice(at: number, remove: number, insert: Uint8Array = new Uint8Array(0)): void {
    at = Math.max(0, Math.min(at, this.frame.length));
    remove = Math.max(0, Math.min(remove, this.frame.length - at));
    const out = new Uint8Array(this.frame.length - remove + insert.length);
    out.set(this.frame.subarray(0, at));
    out.set(insert, at);
    out.set(this.frame.subarray(at + remove), at + insert.length);
    this.frame = out;
    this.redissect();
  }
}

type Op = (w: Work, ctx: MutationContext) => void;

const pick = <T>(rng: Rng, xs: readonly T[]): T => rng.pick(xs);

/** Values at and around the edges a parser checks. */
function edgy16(rng: Rng, actual: number): number {
  return pick(rng, [0, 1, 2, 7, 8, 19, 20, 39, 40, 0x7fff, 0x8000, 0xffff, rng.int(0x10000), Math.max(0, actual - rng.range(1, 8)), Math.min(0xffff, actual + rng.range(1, 8))]);
}

/** A 32-bit value near `base`: the boundaries of a receive window. */
function near32(rng: Rng, base: number, window: number): number {
  const w = Math.max(1, window);
  const delta = pick(rng, [0, 0, 1, -1, 2, -2, rng.range(-1460, 1460), w - 1, w, w + 1, -w, rng.int(w), 0x7fffffff, 0x80000000, -0x10000, 0x10000, rng.u32()]);
  return (base + delta) >>> 0;
}

// ------------------------------------------------------------------ Ethernet

const ethOps: Op[] = [
  function ethDst(w, { rng, victim }) {
    const mac = pick(rng, [[0xff, 0xff, 0xff, 0xff, 0xff, 0xff], [0x33, 0x33, 0, 0, 0, 1], [0x33, 0x33, 0xff, ...rng.bytes(3)], [0x01, 0x00, 0x5e, 0, 0, 1], [...rng.bytes(6)], [...victim.mac]]);
    w.frame.set(mac, 0);
  },
  function ethType(w, { rng }) {
    setU16(w.frame, 12, pick(rng, [EtherType.IPv4, EtherType.IPv6, EtherType.ARP, 0x0600, 0x05dc, 0x88cc, rng.int(0x10000)]));
    w.redissect();
  },
  function vlanTag(w, { rng }) {
    // An 802.1Q tag the stack does not expect (lwIP without VLAN support drops it).
    w.splice(12, 0, Uint8Array.from([0x81, 0x00, rng.int(256), rng.int(256)]));
  },
];

// ------------------------------------------------------------------ ARP

const arpOps: Op[] = [
  function arpField(w, { rng, victim }) {
    const a = w.d.arp!.offset;
    const field = rng.int(9);
    if (field === 0) setU16(w.frame, a, pick(rng, [0, 1, 6, rng.int(0x10000)])); // hardware type
    else if (field === 1) setU16(w.frame, a + 2, pick(rng, [0x0800, 0x86dd, rng.int(0x10000)]));
    else if (field === 2) w.frame[a + 4] = pick(rng, [0, 5, 6, 7, 16, 255]); // hardware length
    else if (field === 3) w.frame[a + 5] = pick(rng, [0, 3, 4, 5, 16, 255]); // protocol length
    else if (field === 4) setU16(w.frame, a + 6, pick(rng, [0, 1, 2, 3, 4, 8, 9, rng.int(0x10000)]));
    else if (field === 5) w.frame.set(pick(rng, [[0, 0, 0, 0, 0, 0], [0xff, 0xff, 0xff, 0xff, 0xff, 0xff], [0x01, 0, 0x5e, 0, 0, 1], [...victim.mac], [...rng.bytes(6)]]), a + 8);
    // Sender IP: the victim's own (an address conflict), zero (a probe, RFC 5227), broadcast, random.
    else if (field === 6) w.frame.set(pick(rng, [[...victim.ipv4], [0, 0, 0, 0], [255, 255, 255, 255], [224, 0, 0, 1], [...rng.bytes(4)]]), a + 14);
    else if (field === 7) w.frame.set(pick(rng, [[...victim.ipv4], [0, 0, 0, 0], [...rng.bytes(4)]]), a + 24);
    else w.frame.set(rng.bytes(6), a + 18);
  },
  function arpTruncate(w, { rng }) {
    w.frame = w.frame.slice(0, ETH_HEADER + rng.int(28));
    w.redissect();
  },
];

// ------------------------------------------------------------------ IPv4

/** IPv4 options with lengths and pointers at their edges (RFC 791 section 3.1, RFC 2113). */
function ipv4Options(rng: Rng): Uint8Array {
  const out: number[] = [];
  for (let n = rng.range(1, 4); n > 0 && out.length < 40; n--) {
    const kind = pick(rng, [0, 1, 7, 68, 131, 137, 148, 130, 0x1e, rng.int(256)]);
    if (kind <= 1) {
      out.push(kind);
      continue;
    }
    const len = pick(rng, [0, 1, 2, 3, 4, 7, 11, 39, 40, 255, rng.range(2, 12)]);
    out.push(kind, len);
    if (kind === 7 || kind === 68 || kind === 131 || kind === 137) out.push(pick(rng, [0, 1, 3, 4, 5, 8, 255])); // pointer
    for (let i = out.length; i < Math.min(40, out.length + Math.max(0, len - 3)); i++) out.push(rng.int(256));
  }
  while (out.length % 4 !== 0) out.push(0);
  return Uint8Array.from(out.slice(0, 40));
}

const ipv4Ops: Op[] = [
  function ip4Version(w, { rng }) {
    const o = w.d.ip!.offset;
    w.frame[o] = (pick(rng, [0, 5, 6, 15]) << 4) | (w.frame[o]! & 0x0f);
  },
  function ip4Ihl(w, { rng }) {
    const o = w.d.ip!.offset;
    w.frame[o] = 0x40 | rng.int(16);
    w.lengthsDone = true;
  },
  function ip4Options(w, { rng }) {
    const ip = w.d.ip!;
    const opts = ipv4Options(rng);
    w.splice(ip.offset + ip.headerLength, 0, opts);
    const ihl = Math.min(15, (ip.headerLength + opts.length) / 4);
    w.frame[ip.offset] = 0x40 | ihl;
    w.redissect();
  },
  function ip4TotalLength(w, { rng }) {
    const o = w.d.ip!.offset;
    setU16(w.frame, o + 2, edgy16(rng, getU16(w.frame, o + 2)));
    w.lengthsDone = true;
  },
  function ip4Flags(w, { rng }) {
    const o = w.d.ip!.offset + 6;
    const v = getU16(w.frame, o);
    setU16(w.frame, o, v ^ pick(rng, [0x8000, 0x4000, 0x2000, 0x6000, 0xe000]));
    w.redissect();
  },
  function ip4FragmentOffset(w, { rng }) {
    const o = w.d.ip!.offset + 6;
    setU16(w.frame, o, (getU16(w.frame, o) & 0xe000) | pick(rng, [0, 1, 2, 8, 0x1fff, 0x1ff0, rng.int(0x2000)]));
    w.redissect();
  },
  function ip4Ttl(w, { rng }) {
    w.frame[w.d.ip!.offset + 8] = pick(rng, [0, 1, 255]);
  },
  function ip4Protocol(w, { rng }) {
    w.frame[w.d.ip!.offset + 9] = pick(rng, [0, 1, 2, 4, 6, 17, 41, 47, 50, 58, 132, 255, rng.int(256)]);
    w.redissect();
  },
  function ip4Address(w, { rng, victim }) {
    const o = w.d.ip!.offset + (rng.bool() ? 12 : 16);
    w.frame.set(pick(rng, [[...victim.ipv4], [0, 0, 0, 0], [255, 255, 255, 255], [127, 0, 0, 1], [224, 0, 0, 1], [239, 255, 255, 250], [victim.ipv4[0]!, victim.ipv4[1]!, victim.ipv4[2]!, 255], [...rng.bytes(4)]]), o);
  },
  function ip4HeaderChecksum(w, { rng }) {
    const o = w.d.ip!.offset + 10;
    setU16(w.frame, o, getU16(w.frame, o) ^ rng.range(1, 0xffff));
    w.checksumBroken = true;
  },
];

// ------------------------------------------------------------------ IPv6

/** One extension header of `type` whose next header is `next`, with options at their edges (RFC 8200 section 4). */
function extensionHeader(rng: Rng, type: number, next: number): Uint8Array {
  if (type === IpProtocol.IPv6Fragment) {
    const h = new Uint8Array(8);
    h[0] = next;
    setU16(h, 2, pick(rng, [0, 0, 1, 8, 0xfff8, rng.int(0x10000)]));
    setU32(h, 4, rng.u32());
    return h;
  }
  if (type === IpProtocol.IPv6Route) {
    // Type 0 is deprecated (RFC 5095): with segments left it must draw a parameter problem.
    const h = new Uint8Array(8 * rng.range(1, 3));
    h[0] = next;
    h[1] = h.length / 8 - 1;
    h[2] = pick(rng, [0, 2, 3, 4, 253, 254, rng.int(256)]);
    h[3] = pick(rng, [0, 0, 1, 2, 255]);
    h.set(rng.bytes(h.length - 4), 4);
    return h;
  }
  // Hop-by-hop or destination options: Pad1, PadN, router alert, jumbo, and unknown
  // types whose top bits ask for skip (00), discard (01), or an ICMP error (10, 11).
  const body: number[] = [];
  for (let n = rng.range(0, 4); n > 0; n--) {
    const t = pick(rng, [0, 1, 5, 0xc2, 0x1e, 0x3e, 0x5e, 0x9e, 0xde, rng.int(256)]);
    if (t === 0) {
      body.push(0);
      continue;
    }
    const len = t === 5 ? pick(rng, [2, 2, 0, 3]) : t === 0xc2 ? pick(rng, [4, 4, 0, 5]) : rng.int(12);
    body.push(t, len, ...rng.bytes(len));
  }
  const total = Math.ceil((body.length + 2) / 8) * 8;
  const h = new Uint8Array(total);
  h[0] = next;
  h[1] = total / 8 - 1;
  h.set(body, 2);
  // PadN over the rest, or leave zeros (Pad1s), or junk to overrun an option.
  if (total - 2 - body.length >= 2 && rng.bool(0.7)) {
    h[2 + body.length] = 1;
    h[3 + body.length] = total - 4 - body.length;
  } else if (rng.bool(0.3)) h.set(rng.bytes(total - 2 - body.length), 2 + body.length);
  return h;
}

const ipv6Ops: Op[] = [
  function ip6Version(w, { rng }) {
    const o = w.d.ip!.offset;
    w.frame[o] = (pick(rng, [0, 4, 7, 15]) << 4) | (w.frame[o]! & 0x0f);
  },
  function ip6PayloadLength(w, { rng }) {
    const o = w.d.ip!.offset + 4;
    setU16(w.frame, o, edgy16(rng, getU16(w.frame, o)));
    w.lengthsDone = true;
  },
  function ip6NextHeader(w, { rng }) {
    w.frame[w.d.ip!.protocolAt] = pick(rng, [0, 6, 17, 43, 44, 50, 51, 58, 59, 60, 135, 139, 255, rng.int(256)]);
    w.redissect();
  },
  function ip6HopLimit(w, { rng }) {
    w.frame[w.d.ip!.offset + 7] = pick(rng, [0, 1, 64, 254, 255]);
  },
  function ip6Address(w, { rng, victim }) {
    const o = w.d.ip!.offset + (rng.bool() ? 8 : 24);
    const sn = [0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, victim.ipv6[13]!, victim.ipv6[14]!, victim.ipv6[15]!];
    w.frame.set(pick(rng, [
      [...victim.ipv6], new Array(16).fill(0), [...new Array(15).fill(0), 1], [0xff, 0x02, ...new Array(13).fill(0), 1], sn,
      [0xfe, 0x80, 0, 0, 0, 0, 0, 0, ...rng.bytes(8)], [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, ...victim.ipv4], [...rng.bytes(16)],
    ]), o);
  },
  function ip6InsertExtension(w, { rng }) {
    const ip = w.d.ip!;
    const type = pick(rng, [IpProtocol.HopByHop, IpProtocol.IPv6DestOpts, IpProtocol.IPv6Route, IpProtocol.IPv6Fragment, IpProtocol.HopByHop]);
    // First in the chain (where hop-by-hop must be), or after the headers already there.
    const first = rng.bool(0.6);
    const at = first ? ip.offset + 40 : ip.offset + ip.headerLength;
    const byteAt = first ? ip.offset + 6 : ip.protocolAt;
    const header = extensionHeader(rng, type, w.frame[byteAt]!);
    w.frame[byteAt] = type;
    w.splice(at, 0, header);
  },
  function ip6ExtensionLength(w, { rng }) {
    const ext = w.d.ip!.extensions;
    if (ext.length === 0) return ipv6Ops[5]!(w, { rng } as MutationContext);
    const e = pick(rng, ext);
    w.frame[e.offset + 1] = pick(rng, [0, 1, 2, 31, 255, rng.int(256)]);
    w.lengthsDone = true;
  },
];

// ------------------------------------------------------------------ fragments

/** Fragment IDs shared across frames, so that reassembly meets pieces of several datagrams and mutants. */
const FRAGMENT_IDS = [0x1111, 0x2222, 0x3333, 0x4444];

/**
 * Cuts an unfragmented IP packet into fragments (RFC 791 section 3.2,
 * RFC 8200 section 4.5), then disturbs the train: overlapping or gapped
 * offsets, a lost or repeated piece, the order, a wrong MF bit, an offset
 * past 65535, an ID shared with other trains.
 */
export function fragmentTrain(frame: Uint8Array, d: Dissection, rng: Rng): { frames: Uint8Array[]; ops: string[] } | null {
  const ip = d.ip;
  if (!ip || ip.fragment || !d.l4) return null;
  const ops: string[] = [];
  const v4 = ip.family === 4;
  // IPv6: the fragment header goes after the hop-by-hop header if there is one (the unfragmentable part).
  const hbh = !v4 && ip.extensions[0]?.type === IpProtocol.HopByHop ? ip.extensions[0] : undefined;
  const headerEnd = v4 ? ip.offset + ip.headerLength : hbh ? hbh.offset + hbh.length : ip.offset + 40;
  const nextByteAt = v4 ? -1 : hbh ? hbh.offset : ip.offset + 6;
  const payload = frame.slice(headerEnd, ip.end);
  if (payload.length < 2) return null;
  const size = pick(rng, [8, 16, 24, 64, 256, 512, 1024, 8 * rng.range(1, 180)]);
  const id = rng.bool(0.5) ? pick(rng, FRAGMENT_IDS) : rng.u32();
  let pieces: { offset: number; data: Uint8Array; more: boolean }[] = [];
  for (let off = 0; off < payload.length; off += size) {
    pieces.push({ offset: off, data: payload.subarray(off, Math.min(payload.length, off + size)), more: off + size < payload.length });
  }
  const disturb = rng.int(10);
  if (disturb === 0 && pieces.length > 1) {
    pieces.splice(rng.int(pieces.length), 1);
    ops.push('frag-lose');
  } else if (disturb === 1) {
    pieces.push(pieces[rng.int(pieces.length)]!);
    ops.push('frag-repeat');
  } else if (disturb === 2) {
    const p = pieces[rng.int(pieces.length)]!;
    p.offset = Math.max(0, p.offset + pick(rng, [-8, -16, 8, 16, -size, size]));
    ops.push('frag-overlap');
  } else if (disturb === 3) {
    const p = pieces[rng.int(pieces.length)]!;
    p.more = !p.more;
    ops.push('frag-mf');
  } else if (disturb === 4) {
    pieces[pieces.length - 1]!.offset = pick(rng, [0xfff8, 0xffe0, 65536 - 8 * rng.range(1, 4)]);
    ops.push('frag-beyond-64k');
  } else if (disturb === 5) {
    // Odd-sized middle pieces (RFC 791: all but the last a multiple of 8).
    const p = pieces[rng.int(pieces.length)]!;
    p.data = p.data.subarray(0, Math.max(1, p.data.length - rng.range(1, 7)));
    ops.push('frag-odd-size');
  } else if (disturb === 6) {
    pieces = pieces.reverse();
    ops.push('frag-reverse');
  } else if (disturb === 7) {
    // A tiny first fragment that splits the transport header (RFC 1858, RFC 7112).
    ops.push('frag-tiny');
  } else ops.push('frag-train');
  const frames = pieces.map((p) => {
    const header = frame.slice(0, headerEnd);
    let out: Uint8Array;
    if (v4) {
      out = new Uint8Array(header.length + p.data.length);
      out.set(header);
      out.set(p.data, header.length);
      const o = ip.offset;
      setU16(out, o + 4, id & 0xffff);
      const units = Math.min(0x1fff, p.offset >> 3);
      setU16(out, o + 6, (getU16(out, o + 6) & 0x4000 & (rng.bool(0.9) ? 0 : 0xffff)) | (p.more ? 0x2000 : 0) | units);
      setU16(out, o + 2, out.length - o);
    } else {
      const fh = new Uint8Array(8);
      fh[0] = frame[nextByteAt]!;
      setU16(fh, 2, (Math.min(0xfff8, p.offset) & 0xfff8) | (p.more ? 1 : 0));
      setU32(fh, 4, id);
      out = new Uint8Array(header.length + 8 + p.data.length);
      out.set(header);
      out[nextByteAt] = IpProtocol.IPv6Fragment;
      out.set(fh, header.length);
      out.set(p.data, header.length + 8);
      setU16(out, ip.offset + 4, out.length - ip.offset - 40);
    }
    fixChecksums(out, dissect(out));
    return out;
  });
  return { frames, ops };
}

const fragmentOps: Op[] = [
  function fragOffset(w, { rng }) {
    const f = w.d.ip!.fragment;
    if (!f) return;
    const v4 = w.d.ip!.family === 4;
    const v = getU16(w.frame, f.at);
    if (v4) setU16(w.frame, f.at, (v & 0xe000) | pick(rng, [0, 1, 0x1fff, ((f.offset >> 3) + pick(rng, [-1, 1, -2, 2])) & 0x1fff, rng.int(0x2000)]));
    else setU16(w.frame, f.at, (v & 0x0007) | (pick(rng, [0, 8, 0xfff8, (f.offset + pick(rng, [-8, 8, -16, 16])) & 0xfff8, rng.int(0x10000)]) & 0xfff8));
    w.redissect();
  },
  function fragMore(w) {
    const f = w.d.ip!.fragment;
    if (!f) return;
    const v = getU16(w.frame, f.at);
    setU16(w.frame, f.at, v ^ (w.d.ip!.family === 4 ? 0x2000 : 1));
    w.redissect();
  },
  function fragId(w, { rng }) {
    const ip = w.d.ip!;
    const f = ip.fragment;
    if (!f) return;
    if (ip.family === 4) setU16(w.frame, ip.offset + 4, pick(rng, FRAGMENT_IDS) & 0xffff);
    else setU32(w.frame, f.at + 2, pick(rng, FRAGMENT_IDS));
  },
  function fragTrim(w, { rng }) {
    const ip = w.d.ip!;
    const cut = rng.range(1, Math.max(1, Math.min(64, ip.end - ip.offset - ip.headerLength)));
    w.frame = w.frame.slice(0, Math.max(ip.offset + ip.headerLength, ip.end - cut));
    w.redissect();
  },
];

// ------------------------------------------------------------------ TCP

/** TCP options, valid and not: lengths at their edges, SACK blocks around the live window (RFC 9293, 7323, 2018). */
function tcpOptions(rng: Rng, live: LiveTcp | undefined): Uint8Array {
  const out: number[] = [];
  const room = () => 40 - out.length;
  for (let n = rng.range(1, 6); n > 0 && room() > 0; n--) {
    const k = rng.int(11);
    if (k === 0) out.push(1);
    else if (k === 1 && room() >= 4) out.push(2, pick(rng, [4, 4, 3, 5, 0]), ...pick(rng, [[0, 0], [0, 1], [0x05, 0xb4], [0xff, 0xff], [...rng.bytes(2)]]));
    else if (k === 2 && room() >= 3) out.push(3, pick(rng, [3, 3, 2, 4]), pick(rng, [0, 7, 14, 15, 255]));
    else if (k === 3 && room() >= 2) out.push(4, pick(rng, [2, 2, 3]));
    else if ((k === 4 || k === 5) && room() >= 10) {
      // SACK blocks (kind 5, 8 bytes each) around what the victim has sent: edges past, before and inside.
      const blocks = Math.min(4, Math.floor((room() - 2) / 8), rng.range(1, 4));
      const len = pick(rng, [2 + 8 * blocks, 2 + 8 * blocks, 10 + 8 * blocks, 3, 2]);
      out.push(5, len);
      const base = live?.ack ?? rng.u32();
      for (let b = 0; b < blocks; b++) {
        const left = near32(rng, base, 65535);
        const right = rng.bool(0.8) ? (left + rng.range(1, 3000)) >>> 0 : near32(rng, left, 65535);
        for (const v of [left, right]) out.push(v >>> 24, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff);
      }
    } else if (k === 6 && room() >= 10) {
      out.push(8, pick(rng, [10, 10, 9, 11]));
      for (const v of [rng.u32(), pick(rng, [0, rng.u32()])]) out.push(v >>> 24, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff);
    } else if (k === 7 && room() >= 2) {
      const len = pick(rng, [0, 1, 2, 18, 40, 255, rng.range(2, Math.min(room(), 20))]);
      out.push(pick(rng, [19, 28, 29, 30, 34, 253, 254, rng.int(256)]), len);
      for (let i = 2; i < Math.min(len, room() + 2); i++) out.push(rng.int(256));
    } else if (k === 8) {
      out.push(0, ...rng.bytes(rng.int(room())));
      break;
    } else if (room() >= 1) out.push(rng.int(256));
  }
  while (out.length % 4 !== 0) out.push(rng.bool(0.8) ? 1 : 0);
  return Uint8Array.from(out.slice(0, 40));
}

/** Moves a TCP segment onto a live connection: its 4-tuple, sequence and acknowledgement numbers near the peer's own. */
function onLive(w: Work, live: LiveTcp, rng: Rng): void {
  const ip = w.d.ip!;
  const t = w.d.l4!.offset;
  const alen = ip.family === 4 ? 4 : 16;
  w.frame.set(live.src, ip.offset + (ip.family === 4 ? 12 : 8));
  w.frame.set(live.dst, ip.offset + (ip.family === 4 ? 16 : 8 + alen));
  setU16(w.frame, t, live.srcPort);
  setU16(w.frame, t + 2, live.dstPort);
  setU32(w.frame, t + 4, rng.bool(0.3) ? live.seq : near32(rng, live.seq, live.window));
  setU32(w.frame, t + 8, rng.bool(0.3) ? live.ack : near32(rng, live.ack, 65535));
  w.redissect();
}

const tcpOps: Op[] = [
  function tcpLive(w, { rng, live }) {
    const l = live(w.d.ip!.family);
    if (l) onLive(w, l, rng);
  },
  function tcpFlags(w, { rng }) {
    const t = w.d.l4!.offset;
    // SYN+FIN, SYN+RST, RST, FIN, URG, ECE/CWR, the reserved bits and NS, or anything.
    w.frame[t + 13] = pick(rng, [0x03, 0x06, 0x04, 0x14, 0x11, 0x01, 0x20, 0x30, 0xc2, 0x12, 0x02, 0x00, 0x3f, 0xff, rng.int(256)]);
    if (rng.bool(0.2)) w.frame[t + 12] = (w.frame[t + 12]! & 0xf0) | rng.int(16);
    w.redissect();
  },
  function tcpSeq(w, { rng, live }) {
    const t = w.d.l4!.offset;
    const l = live(w.d.ip!.family);
    setU32(w.frame, t + 4, near32(rng, l?.seq ?? getU32(w.frame, t + 4), l?.window ?? 65535));
    if (rng.bool()) setU32(w.frame, t + 8, near32(rng, l?.ack ?? getU32(w.frame, t + 8), 65535));
  },
  function tcpWindow(w, { rng }) {
    setU16(w.frame, w.d.l4!.offset + 14, pick(rng, [0, 1, 2, 536, 0xffff, rng.int(0x10000)]));
  },
  function tcpDataOffset(w, { rng }) {
    const t = w.d.l4!.offset;
    w.frame[t + 12] = (rng.int(16) << 4) | (w.frame[t + 12]! & 0x0f);
    w.redissect();
  },
  function tcpOptionsReplace(w, { rng, live }) {
    const t = w.d.l4!.offset;
    const hl = Math.max(20, Math.min(w.d.tcp!.headerLength, w.d.l4!.end - t));
    const opts = tcpOptions(rng, live(w.d.ip!.family));
    w.splice(t + 20, hl - 20, opts);
    w.frame[t + 12] = (((20 + opts.length) / 4) << 4) | (w.frame[t + 12]! & 0x0f);
    w.redissect();
  },
  function tcpPayload(w, { rng }) {
    const l4 = w.d.l4!;
    const start = l4.offset + Math.max(20, w.d.tcp!.headerLength);
    if (rng.bool()) w.splice(l4.end, 0, rng.bytes(pick(rng, [1, 7, 536, 1460, rng.int(2000)])));
    else w.splice(Math.min(start, l4.end), l4.end - Math.min(start, l4.end) - rng.int(Math.max(1, l4.end - start)));
  },
  function tcpUrgent(w, { rng }) {
    const t = w.d.l4!.offset;
    w.frame[t + 13] = w.frame[t + 13]! | 0x20;
    setU16(w.frame, t + 18, pick(rng, [0, 1, w.d.tcp!.payloadLength, w.d.tcp!.payloadLength + 1, 0xffff, rng.int(0x10000)]));
  },
  function tcpPorts(w, { rng }) {
    const t = w.d.l4!.offset;
    setU16(w.frame, t + (rng.bool() ? 0 : 2), pick(rng, [0, 1, 7, 53, 80, 65535, rng.int(0x10000)]));
  },
  function tcpChecksum(w, { rng }) {
    const at = w.d.l4!.offset + 16;
    setU16(w.frame, at, getU16(w.frame, at) ^ rng.range(1, 0xffff));
    w.checksumBroken = true;
  },
];

// ------------------------------------------------------------------ UDP

const udpOps: Op[] = [
  function udpLength(w, { rng }) {
    const at = w.d.l4!.offset + 4;
    setU16(w.frame, at, edgy16(rng, getU16(w.frame, at)));
    w.lengthsDone = true;
  },
  function udpChecksum(w, { rng }) {
    const at = w.d.l4!.offset + 6;
    if (rng.bool(0.3)) {
      // No checksum: allowed over IPv4, not over IPv6 (RFC 8200 section 8.1).
      setU16(w.frame, at, 0);
      w.noFixChecksum = true;
    } else {
      setU16(w.frame, at, getU16(w.frame, at) ^ rng.range(1, 0xffff));
      w.checksumBroken = true;
    }
  },
  function udpPorts(w, { rng }) {
    const u = w.d.l4!.offset;
    setU16(w.frame, u + (rng.bool() ? 0 : 2), pick(rng, [0, 7, 53, 67, 68, 123, 5353, 65535, rng.int(0x10000)]));
  },
  function udpPayload(w, { rng }) {
    const l4 = w.d.l4!;
    if (rng.bool()) w.splice(l4.end, 0, rng.bytes(pick(rng, [1, 8, 600, rng.int(1400)])));
    else w.splice(l4.offset + 8 + rng.int(Math.max(1, l4.end - l4.offset - 8)), l4.end);
  },
];

// ------------------------------------------------------------------ ICMP and ICMPv6

/** The TCP header of a live connection as the victim would have sent it, for ICMP errors to quote (RFC 5927). */
function quotedLive(w: Work, ctx: MutationContext): Uint8Array {
  const family = w.d.ip!.family;
  const l = ctx.live(family);
  const ipLen = family === 4 ? 20 : 40;
  const q = new Uint8Array(ipLen + 20);
  if (family === 4) {
    q[0] = 0x45;
    setU16(q, 2, ctx.rng.pick([40, 1500, 65535]));
    q[8] = 64;
    q[9] = IpProtocol.TCP;
    if (l) {
      q.set(l.dst, 12);
      q.set(l.src, 16);
    }
  } else {
    q[0] = 0x60;
    setU16(q, 4, ctx.rng.pick([20, 1460, 65495]));
    q[6] = IpProtocol.TCP;
    q[7] = 64;
    if (l) {
      q.set(l.dst, 8);
      q.set(l.src, 24);
    }
  }
  if (l) {
    setU16(q, ipLen, l.dstPort);
    setU16(q, ipLen + 2, l.srcPort);
    setU32(q, ipLen + 4, near32(ctx.rng, l.ack, 65535));
  } else q.set(ctx.rng.bytes(20), ipLen);
  return q;
}

const icmpOps: Op[] = [
  function icmpTypeCode(w, { rng }) {
    const o = w.d.l4!.offset;
    const v6 = w.d.ip!.family === 6;
    w.frame[o] = v6 ? pick(rng, [1, 2, 3, 4, 100, 127, 128, 129, 130, 133, 134, 135, 136, 137, 139, 143, 200, 255, rng.int(256)])
      : pick(rng, [0, 3, 4, 5, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 30, 255, rng.int(256)]);
    w.frame[o + 1] = pick(rng, [0, 0, 1, 2, 3, 4, 13, 255, rng.int(256)]);
    w.redissect();
  },
  function icmpError(w, ctx) {
    // An error quoting a live connection: port unreachable, fragmentation needed / packet too big with MTUs at their edges.
    const { rng } = ctx;
    const o = w.d.l4!.offset;
    const v6 = w.d.ip!.family === 6;
    const body = new Uint8Array(8);
    if (v6) {
      body[0] = pick(rng, [1, 2, 2, 3, 4]);
      body[1] = pick(rng, [0, 1, 3, 4, 5]);
      setU32(body, 4, pick(rng, [0, 68, 576, 1279, 1280, 1500, 65535, 0xffffffff, rng.u32()]));
    } else {
      body[0] = pick(rng, [3, 3, 4, 11, 12, 5]);
      body[1] = pick(rng, [0, 1, 2, 3, 4, 4, 13]);
      setU16(body, 6, pick(rng, [0, 1, 68, 296, 576, 1500, 65535, rng.int(0x10000)]));
    }
    w.splice(o, w.d.l4!.end - o, Uint8Array.from([...body, ...quotedLive(w, ctx)]));
  },
  function icmpTruncate(w, { rng }) {
    const l4 = w.d.l4!;
    w.frame = w.frame.slice(0, l4.offset + rng.int(Math.max(1, l4.end - l4.offset)));
    w.redissect();
  },
  function icmpChecksum(w, { rng }) {
    const at = w.d.l4!.offset + 2;
    setU16(w.frame, at, getU16(w.frame, at) ^ rng.range(1, 0xffff));
    w.checksumBroken = true;
  },
];

/** ND options (RFC 4861 section 4.6): link-layer addresses, prefixes, MTU, RDNSS, redirected header, with lengths 0 and overrunning. */
function ndOptions(rng: Rng): Uint8Array {
  const out: number[] = [];
  for (let n = rng.range(1, 4); n > 0; n--) {
    const type = pick(rng, [1, 2, 3, 4, 5, 24, 25, 31, rng.int(256)]);
    const units = pick(rng, [0, 1, 1, 2, 3, 4, 5, 255]);
    const len = Math.min(units * 8, 256);
    const o = new Uint8Array(Math.max(2, len));
    o[0] = type;
    o[1] = units;
    o.set(rng.bytes(o.length - 2), 2);
    if (type === 3 && o.length >= 32) {
      o[2] = pick(rng, [0, 1, 64, 127, 128, 129, 255]);
      o[3] = pick(rng, [0xc0, 0x80, 0x40, 0, 0xff]);
    }
    out.push(...o);
    if (units === 0 && rng.bool(0.5)) break; // what follows a zero-length option is never reached by a correct parser
  }
  return Uint8Array.from(out);
}

const ndpOps: Op[] = [
  function ndOptionsReplace(w, { rng }) {
    const o = w.d.l4!.offset;
    const type = w.frame[o]!;
    // The fixed part before options: RS 8, RA 16, NS/NA 24, redirect 40 (RFC 4861 section 4).
    const fixed = type === 133 ? 8 : type === 134 ? 16 : type === 137 ? 40 : type === 135 || type === 136 ? 24 : 8;
    const end = w.d.l4!.end;
    w.splice(Math.min(o + fixed, end), Math.max(0, end - o - fixed), ndOptions(rng));
  },
  function ndField(w, { rng, victim }) {
    const o = w.d.l4!.offset;
    const type = w.frame[o]!;
    if (type === 136) w.frame[o + 4] = pick(rng, [0x20, 0x40, 0x60, 0xa0, 0xe0, 0x00]); // NA flags: router, solicited, override
    if (type === 135 || type === 136 || type === 137) {
      w.frame.set(pick(rng, [[...victim.ipv6], [0xff, 0x02, ...new Array(13).fill(0), 1], new Array(16).fill(0), [0xfe, 0x80, 0, 0, 0, 0, 0, 0, ...rng.bytes(8)], [...rng.bytes(16)]]), o + 8);
    }
    if (type === 134) {
      w.frame[o + 4] = pick(rng, [0, 1, 64, 255]); // current hop limit
      w.frame[o + 5] = rng.int(256);
      setU16(w.frame, o + 6, pick(rng, [0, 1, 1800, 9000, 0xffff]));
      setU32(w.frame, o + 8, pick(rng, [0, 1, 3_600_000, 0xffffffff]));
      setU32(w.frame, o + 12, pick(rng, [0, 1, 1000, 0xffffffff]));
    }
  },
  function ndAsType(w, { rng }) {
    // Re-type the message as another ND message, so each parser meets the others' layouts.
    const o = w.d.l4!.offset;
    w.frame[o] = pick(rng, [133, 134, 135, 136, 137]);
    w.frame[o + 1] = rng.bool(0.9) ? 0 : rng.int(256);
    if (w.d.l4!.end - o < 40) w.splice(w.d.l4!.end, 0, rng.bytes(40 - (w.d.l4!.end - o)));
  },
  function ndHopLimit(w, { rng }) {
    // ND must come with hop limit 255 (RFC 4861 section 7.1); anything else is to be dropped.
    w.frame[w.d.ip!.offset + 7] = pick(rng, [0, 1, 64, 254]);
  },
];

// ------------------------------------------------------------------ DHCP

/** Splits DHCP options into TLVs (tolerantly). */
function dhcpOptions(b: Uint8Array): { code: number; data: Uint8Array }[] {
  const out: { code: number; data: Uint8Array }[] = [];
  for (let i = 0; i < b.length;) {
    const code = b[i]!;
    if (code === 0) {
      i++;
      continue;
    }
    if (code === 255) break;
    const len = b[i + 1] ?? 0;
    out.push({ code, data: b.slice(i + 2, i + 2 + len) });
    i += 2 + len;
  }
  return out;
}

const dhcpOps: Op[] = [
  function dhcpHeader(w, { rng }) {
    const p = w.d.l4!.offset + 8;
    const field = rng.int(7);
    if (field === 0) w.frame[p] = pick(rng, [0, 2, 3, 255]); // op
    else if (field === 1) w.frame[p + 1] = pick(rng, [0, 6, 32, 255]); // htype
    else if (field === 2) w.frame[p + 2] = pick(rng, [0, 1, 5, 7, 16, 17, 255]); // hlen
    else if (field === 3) w.frame[p + 3] = pick(rng, [1, 16, 255]); // hops
    else if (field === 4) setU16(w.frame, p + 10, rng.int(0x10000)); // flags
    else if (field === 5) w.frame.set(pick(rng, [[10, 0, 2, 100], [10, 0, 2, 2], [255, 255, 255, 255], [0, 0, 0, 0], [...rng.bytes(4)]]), p + 12 + 4 * rng.int(4));
    else setU32(w.frame, p + 236, pick(rng, [0, 0x63825362, rng.u32()])); // magic cookie
  },
  function dhcpOptionsRewrite(w, { rng }) {
    const p = w.d.l4!.offset + 8;
    const end = w.d.l4!.end;
    if (end - p < 240) return;
    const opts = dhcpOptions(w.frame.subarray(p + 240, end));
    const k = rng.int(9);
    if (k === 0 && opts.length > 0) opts.splice(rng.int(opts.length), 1);
    else if (k === 1 && opts.length > 0) opts.push(opts[rng.int(opts.length)]!); // repeated: concatenated (RFC 3396)
    else if (k === 2) opts.unshift({ code: 53, data: Uint8Array.from([pick(rng, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 13, 18, 255])]) });
    else if (k === 3) opts.push({ code: 52, data: Uint8Array.from([rng.range(0, 4)]) }); // overload
    else if (k === 4) opts.push({ code: 50, data: pick(rng, [Uint8Array.from([10, 0, 2, 100]), Uint8Array.from([10, 0, 2, 2]), rng.bytes(4), rng.bytes(3)]) });
    else if (k === 5) opts.push({ code: 61, data: rng.bytes(pick(rng, [0, 1, 2, 7, 255])) });
    else if (k === 6) opts.push({ code: 55, data: rng.bytes(pick(rng, [0, 1, 255])) });
    else if (k === 7) opts.push({ code: rng.range(1, 254), data: rng.bytes(rng.int(256)) });
    else if (opts.length > 0) opts[rng.int(opts.length)]!.data = rng.bytes(pick(rng, [0, 1, 3, 5, 255]));
    const bytes: number[] = [];
    for (const o of opts) bytes.push(o.code, o.data.length & 0xff, ...o.data.subarray(0, 255));
    // The end option, or not; padding, or garbage after it; or a length byte that overruns.
    const tail = rng.int(4);
    if (tail === 0) bytes.push(255);
    else if (tail === 1) bytes.push(255, ...rng.bytes(rng.int(64)));
    else if (tail === 2 && bytes.length > 1) bytes[1] = 255;
    w.splice(p + 240, end - p - 240, Uint8Array.from(bytes));
    if (rng.bool(0.3)) {
      // Options in sname and file too (RFC 2132 section 9.3).
      w.frame.set(rng.bytes(64), p + 44);
      if (rng.bool()) w.frame.set([1, 4, 255, 255, 255, 0, 255], p + 108);
    }
  },
  function dhcpTruncate(w, { rng }) {
    const p = w.d.l4!.offset + 8;
    w.frame = w.frame.slice(0, Math.min(w.d.l4!.end, p + pick(rng, [0, 1, 27, 28, 44, 236, 239, 240, 241, 243, rng.int(600)])));
    w.redissect();
  },
];

// ------------------------------------------------------------------ DNS

/** A DNS name in wire form with labels and pointers at their edges (RFC 1035 section 4.1.4). */
function dnsName(rng: Rng): number[] {
  const k = rng.int(7);
  if (k === 0) return [0xc0, 12]; // a pointer to the question itself: a loop when it is the question
  if (k === 1) return [0xc0, rng.int(256)];
  if (k === 2) return [64, ...rng.bytes(64), 0]; // label over 63
  if (k === 3) {
    const out: number[] = [];
    while (out.length < 260) out.push(63, ...new Array(63).fill(0x61));
    return [...out, 0]; // name over 255
  }
  if (k === 4) return [3, 0x61, 0x62, 0x63, 0xc0, 0x0c];
  if (k === 5) return [0];
  return [4, 0x68, 0x6f, 0x73, 0x74, 4, 0x74, 0x65, 0x73, 0x74, 0]; // host.test
}

const dnsOps: Op[] = [
  function dnsHeader(w, { rng }) {
    const p = dnsStart(w);
    if (p < 0) return;
    const field = rng.int(5);
    if (field === 0) setU16(w.frame, p + 2, pick(rng, [0x8180, 0x0100, 0x7800, 0x0200, 0x2800, 0xffff, rng.int(0x10000)])); // QR, opcode, TC
    else setU16(w.frame, p + 2 + 2 * field, pick(rng, [0, 1, 2, 100, 0xffff, rng.int(0x10000)]));
  },
  function dnsQuestion(w, { rng }) {
    const p = dnsStart(w);
    if (p < 0) return;
    const end = w.d.l4!.end;
    const q = [...dnsName(rng), ...rng.bytes(0), 0, pick(rng, [1, 28, 5, 12, 16, 41, 255, rng.int(256)]), 0, pick(rng, [1, 1, 3, 255])];
    if (rng.bool(0.3)) {
      // An additional record: EDNS OPT (RFC 6891) with sizes at their edges, or a record with a lying rdlength.
      q.push(0, 0, 41, ...pick(rng, [[0, 0], [0x10, 0], [0xff, 0xff]]), 0, 0, 0, 0, ...pick(rng, [[0, 0], [0, 4, 0, 10, 0, 0], [0xff, 0xff]]));
      setU16(w.frame, p + 10, 1);
    }
    w.splice(p + 12, end - p - 12, Uint8Array.from(q));
  },
  function dnsTruncate(w, { rng }) {
    const p = dnsStart(w);
    if (p < 0) return;
    w.frame = w.frame.slice(0, Math.min(w.d.l4!.end, p + rng.int(Math.max(1, w.d.l4!.end - p))));
    w.redissect();
  },
];

/** Where the DNS message starts: after the UDP header, or after the TCP header and the 2-byte length (RFC 1035 section 4.2.2). */
function dnsStart(w: Work): number {
  const l4 = w.d.l4!;
  if (w.d.udp) return l4.offset + 8;
  if (w.d.tcp && w.d.tcp.payloadLength >= 2) return l4.offset + w.d.tcp.headerLength + 2;
  return -1;
}

// ------------------------------------------------------------------ the mutator

function opsFor(w: Work, protocol: Protocol): { layer: Op[]; weight: number }[] {
  const d = w.d;
  const sets: { layer: Op[]; weight: number }[] = [{ layer: ethOps, weight: 1 }];
  if (d.arp) sets.push({ layer: arpOps, weight: 10 });
  if (d.ip?.family === 4) sets.push({ layer: ipv4Ops, weight: protocol === 'ipv4-frag' ? 3 : 2 });
  if (d.ip?.family === 6) sets.push({ layer: ipv6Ops, weight: protocol === 'ipv6-frag' ? 3 : 2 });
  if (d.ip?.fragment) sets.push({ layer: fragmentOps, weight: 8 });
  if (d.tcp) sets.push({ layer: tcpOps, weight: 8 });
  if (d.udp) sets.push({ layer: udpOps, weight: protocol === 'udp' ? 8 : 2 });
  if (d.icmp && protocol !== 'ndp') sets.push({ layer: icmpOps, weight: 8 });
  if (d.icmp && protocol === 'ndp') sets.push({ layer: ndpOps, weight: 8 }, { layer: icmpOps, weight: 1 });
  if (protocol === 'dhcp' && d.udp) sets.push({ layer: dhcpOps, weight: 10 });
  if (protocol === 'dns' && (d.udp || d.tcp)) sets.push({ layer: dnsOps, weight: 10 });
  return sets;
}

function pickOp(rng: Rng, sets: { layer: Op[]; weight: number }[]): Op {
  let total = 0;
  for (const s of sets) total += s.weight;
  let r = rng.float() * total;
  for (const s of sets) {
    if ((r -= s.weight) < 0) return rng.pick(s.layer);
  }
  return rng.pick(sets[sets.length - 1]!.layer);
}

/**
 * One or more frames from a seed. Most get one to three field mutations
 * with lengths and checksums fixed up after; some are left as captured
 * (the valid exchange goes on), and packets of the fragment campaigns are
 * cut into disturbed trains.
 */
export function mutate(seed: Seed, ctx: MutationContext): Mutant[] {
  const { rng } = ctx;
  const w = new Work(seed.frame.slice());
  // Fragment campaigns: cut a whole packet into a train (each piece then mutated lightly, or not).
  if ((seed.protocol === 'ipv4-frag' || seed.protocol === 'ipv6-frag') && !w.d.ip?.fragment && rng.bool(0.6)) {
    if (w.d.tcp && rng.bool(0.5)) {
      const l = ctx.live(w.d.ip!.family);
      if (l) onLive(w, l, rng);
      fixChecksums(w.frame, w.d);
    }
    const train = fragmentTrain(w.frame, w.d, rng);
    if (train) return train.frames.map((frame) => ({ frame, ops: train.ops, badChecksum: false }));
  }
  // TCP campaigns: most segments go onto a live connection, where they meet established-state code.
  if (w.d.tcp && seed.protocol !== 'dns' && rng.bool(0.6)) {
    const l = ctx.live(w.d.ip!.family);
    if (l) {
      onLive(w, l, rng);
      w.ops.push('tcpLive');
    }
  }
  if (!rng.bool(0.1)) {
    for (let n = pick(rng, [1, 1, 1, 2, 2, 3]); n > 0; n--) {
      const sets = opsFor(w, seed.protocol);
      const op = pickOp(rng, sets);
      const before = w.frame;
      try {
        op(w, ctx);
      } catch (err) {
        // An operator that met a frame an earlier one had cut short: a fuzzer bug, not the stack's.
        if (!(err instanceof TypeError || err instanceof RangeError)) throw err;
        w.frame = before;
        w.redissect();
        continue;
      }
      w.ops.push(op.name);
      if (w.frame.length > 9000) w.frame = w.frame.slice(0, 9000);
    }
  } else w.ops.push('none');
  // Lengths follow the bytes unless a length was the mutation (or by chance, to test that too).
  if (!w.lengthsDone && rng.bool(0.85)) {
    w.redissect();
    fixLengths(w.frame, w.d);
  }
  w.redissect();
  if (!w.checksumBroken && !w.noFixChecksum && rng.bool(0.9)) fixChecksums(w.frame, w.d);
  // A checksum left wrong on purpose, after the fix-up that would have repaired it.
  return [{ frame: w.frame, ops: w.ops, badChecksum: w.checksumBroken }];
}

/** Seeds sorted into campaigns by what they carry. */
export function sortSeeds(frames: Uint8Array[], fromMac: Uint8Array): Map<Protocol, Seed[]> {
  const out = new Map<Protocol, Seed[]>();
  for (const frame of frames) {
    if (frame.length < ETH_HEADER || !fromMac.every((b, i) => frame[6 + i] === b)) continue;
    const protocol = classify(dissect(frame));
    if (!protocol) continue;
    if (!out.has(protocol)) out.set(protocol, []);
    out.get(protocol)!.push({ protocol, frame: frame.slice() });
  }
  return out;
}
