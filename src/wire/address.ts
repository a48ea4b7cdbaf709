/**
 * IP and MAC addresses: parsing and formatting, with no I/O.
 *
 * Addresses are kept as bytes (4 or 16) because that is what crosses into
 * wasm; strings are for users. IPv6 text follows RFC 5952 (lowercase, longest
 * zero run compressed, IPv4-mapped shown dotted).
 */

export type Family = 4 | 6;

export interface IpAddress {
  readonly family: Family;
  /** 4 bytes for IPv4, 16 for IPv6, network order. */
  readonly bytes: Uint8Array;
  /** IPv6 zone (interface index), 0 when none. */
  readonly zone: number;
}

export interface IpPrefix {
  readonly address: IpAddress;
  readonly prefixLength: number;
}

const IPV4_RE = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

export function parseIPv4(text: string): Uint8Array | null {
  const m = IPV4_RE.exec(text);
  if (!m) return null;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const part = m[i + 1]!;
    if (part.length > 1 && part[0] === '0') return null; // no octal ambiguity
    const v = Number(part);
    if (v > 255) return null;
    out[i] = v;
  }
  return out;
}

export function parseIPv6(text: string): { bytes: Uint8Array; zone: string } | null {
  let zone = '';
  const pct = text.indexOf('%');
  if (pct >= 0) {
    zone = text.slice(pct + 1);
    text = text.slice(0, pct);
    if (zone === '') return null;
  }
  if (text.startsWith('[') && text.endsWith(']')) text = text.slice(1, -1);
  const halves = text.split('::');
  if (halves.length > 2) return null;
  const parseGroups = (s: string): number[] | null => {
    if (s === '') return [];
    const parts = s.split(':');
    const words: number[] = [];
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i]!;
      if (i === parts.length - 1 && p.includes('.')) {
        const v4 = parseIPv4(p);
        if (!v4) return null;
        words.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
      } else {
        if (!/^[0-9a-fA-F]{1,4}$/.test(p)) return null;
        words.push(parseInt(p, 16));
      }
    }
    return words;
  };
  const head = parseGroups(halves[0]!);
  const tail = halves.length === 2 ? parseGroups(halves[1]!) : [];
  if (!head || !tail) return null;
  let words: number[];
  if (halves.length === 2) {
    const fill = 8 - head.length - tail.length;
    if (fill < 1) return null;
    words = [...head, ...new Array<number>(fill).fill(0), ...tail];
  } else {
    words = head;
  }
  if (words.length !== 8) return null;
  const bytes = new Uint8Array(16);
  words.forEach((w, i) => {
    bytes[i * 2] = w >> 8;
    bytes[i * 2 + 1] = w & 0xff;
  });
  return { bytes, zone };
}

/** Parses an IPv4 or IPv6 address; `zone` resolves an IPv6 zone name to an index. */
export function parseIp(text: string, resolveZone?: (name: string) => number): IpAddress | null {
  const v4 = parseIPv4(text);
  if (v4) return { family: 4, bytes: v4, zone: 0 };
  const v6 = parseIPv6(text);
  if (!v6) return null;
  let zone = 0;
  if (v6.zone !== '') {
    zone = /^\d+$/.test(v6.zone) ? Number(v6.zone) : resolveZone?.(v6.zone) ?? -1;
    if (!(zone >= 0 && zone <= 255)) return null;
  }
  return { family: 6, bytes: v6.bytes, zone };
}

export function isIP(text: string): 0 | 4 | 6 {
  const a = parseIp(text);
  return a ? a.family : 0;
}

export function formatIPv4(bytes: Uint8Array, offset = 0): string {
  return `${bytes[offset]}.${bytes[offset + 1]}.${bytes[offset + 2]}.${bytes[offset + 3]}`;
}

export function formatIPv6(bytes: Uint8Array, offset = 0): string {
  const words: number[] = [];
  for (let i = 0; i < 8; i++) words.push((bytes[offset + i * 2]! << 8) | bytes[offset + i * 2 + 1]!);
  // IPv4-mapped (::ffff:a.b.c.d), RFC 5952 section 5.
  if (words.slice(0, 5).every((w) => w === 0) && words[5] === 0xffff) {
    return `::ffff:${formatIPv4(bytes, offset + 12)}`;
  }
  let bestStart = -1, bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (words[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLen) { bestStart = i; bestLen = j - i; }
    i = j;
  }
  const hex = words.map((w) => w.toString(16));
  if (bestLen < 2) return hex.join(':'); // a single zero group is not compressed
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
}

export function formatIp(a: IpAddress): string {
  if (a.family === 4) return formatIPv4(a.bytes);
  return a.zone ? `${formatIPv6(a.bytes)}%${a.zone}` : formatIPv6(a.bytes);
}

/** Parses 'a.b.c.d/len' or 'x::y/len'. A bare address gets the full length. */
export function parsePrefix(text: string): IpPrefix | null {
  const slash = text.lastIndexOf('/');
  const addr = parseIp(slash >= 0 ? text.slice(0, slash) : text);
  if (!addr) return null;
  const max = addr.family === 4 ? 32 : 128;
  if (slash < 0) return { address: addr, prefixLength: max };
  const lenText = text.slice(slash + 1);
  if (!/^\d{1,3}$/.test(lenText)) return null;
  const len = Number(lenText);
  if (len > max) return null;
  return { address: addr, prefixLength: len };
}

export function formatPrefix(p: IpPrefix): string {
  return `${formatIp(p.address)}/${p.prefixLength}`;
}

/** The prefix's network mask as bytes. */
export function prefixMask(family: Family, prefixLength: number): Uint8Array {
  const out = new Uint8Array(family === 4 ? 4 : 16);
  for (let i = 0; i < out.length; i++) {
    const bits = Math.max(0, Math.min(8, prefixLength - i * 8));
    out[i] = (0xff00 >> bits) & 0xff;
  }
  return out;
}

/** The address with host bits cleared. */
export function networkOf(p: IpPrefix): IpAddress {
  const mask = prefixMask(p.address.family, p.prefixLength);
  const bytes = p.address.bytes.map((b, i) => b & mask[i]!);
  return { family: p.address.family, bytes, zone: 0 };
}

export function prefixContains(p: IpPrefix, a: IpAddress): boolean {
  if (p.address.family !== a.family) return false;
  const mask = prefixMask(a.family, p.prefixLength);
  for (let i = 0; i < mask.length; i++) {
    if ((p.address.bytes[i]! & mask[i]!) !== (a.bytes[i]! & mask[i]!)) return false;
  }
  return true;
}

export function ipEquals(a: IpAddress, b: IpAddress): boolean {
  return a.family === b.family && a.bytes.every((v, i) => v === b.bytes[i]);
}

export function isLinkLocalIPv6(bytes: Uint8Array): boolean {
  return bytes[0] === 0xfe && (bytes[1]! & 0xc0) === 0x80;
}

export const IPV4_ANY: IpAddress = { family: 4, bytes: new Uint8Array(4), zone: 0 };
export const IPV6_ANY: IpAddress = { family: 6, bytes: new Uint8Array(16), zone: 0 };

const MAC_RE = /^([0-9a-fA-F]{2})[:-]([0-9a-fA-F]{2})[:-]([0-9a-fA-F]{2})[:-]([0-9a-fA-F]{2})[:-]([0-9a-fA-F]{2})[:-]([0-9a-fA-F]{2})$/;

export function parseMac(text: string): Uint8Array | null {
  const m = MAC_RE.exec(text);
  if (!m) return null;
  return Uint8Array.from(m.slice(1, 7), (h) => parseInt(h, 16));
}

export function formatMac(bytes: Uint8Array, offset = 0): string {
  const parts: string[] = [];
  for (let i = 0; i < 6; i++) parts.push(bytes[offset + i]!.toString(16).padStart(2, '0'));
  return parts.join(':');
}
