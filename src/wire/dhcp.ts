/**
 * DHCP messages (RFC 2131) with their options (RFC 2132): the BOOTP fixed
 * header (RFC 951), the magic cookie, then options. Parsing never throws and
 * always ends (every step consumes at least one byte); a message that is
 * truncated, lacks the cookie, has an option running past its field, or a
 * known option of the wrong length parses as null. Options that appear more
 * than once are concatenated (RFC 3396), and option overload (option 52)
 * moves options into the `file` and `sname` fields (RFC 2132 section 9.3).
 * Addresses are dotted-quad strings, as DHCP carries IPv4 only.
 */

import { formatIPv4, parseIPv4 } from './address.js';

/** Field offsets and sizes of the fixed header (RFC 2131 section 2, figure 1). */
export const DHCP = {
  OP: 0,
  HTYPE: 1,
  HLEN: 2,
  HOPS: 3,
  XID: 4,
  SECS: 8,
  FLAGS: 10,
  CIADDR: 12,
  YIADDR: 16,
  SIADDR: 20,
  GIADDR: 24,
  CHADDR: 28,
  CHADDR_LEN: 16,
  SNAME: 44,
  SNAME_LEN: 64,
  FILE: 108,
  FILE_LEN: 128,
  COOKIE: 236,
  OPTIONS: 240,
  MAGIC_COOKIE: 0x63825363,
  /** The only flag RFC 2131 defines: the client cannot take unicast before it is configured. */
  BROADCAST_FLAG: 0x8000,
  /** A BOOTP message is at least 300 bytes (RFC 951's 64-byte vendor field); some relays and clients insist (RFC 1542 section 2.1). */
  BOOTP_MIN_LEN: 300,
  /** Every client must accept a 576-byte IP datagram, so 548 bytes of DHCP (RFC 2131 section 2). */
  MIN_MAX_MESSAGE_SIZE: 576,
  SERVER_PORT: 67,
  CLIENT_PORT: 68,
  HTYPE_ETHERNET: 1,
} as const;

export const BootpOp = {
  Request: 1,
  Reply: 2,
} as const;

/** Option 53's values (RFC 2132 section 9.6). */
export const DhcpMessageType = {
  Discover: 1,
  Offer: 2,
  Request: 3,
  Decline: 4,
  Ack: 5,
  Nak: 6,
  Release: 7,
  Inform: 8,
} as const;

/** Option codes (RFC 2132). */
export const DhcpOption = {
  Pad: 0,
  SubnetMask: 1,
  Router: 3,
  DnsServers: 6,
  Hostname: 12,
  DomainName: 15,
  InterfaceMtu: 26,
  BroadcastAddress: 28,
  RequestedAddress: 50,
  LeaseTime: 51,
  Overload: 52,
  MessageType: 53,
  ServerId: 54,
  ParameterRequestList: 55,
  Message: 56,
  MaxMessageSize: 57,
  RenewalTime: 58,
  RebindingTime: 59,
  VendorClassId: 60,
  ClientId: 61,
  End: 255,
} as const;

/** The options this module decodes; everything else is in `rawOptions`. */
export interface DhcpOptions {
  /** 53 */
  messageType?: number;
  /** 1 */
  subnetMask?: string;
  /** 3 */
  routers?: string[];
  /** 6 */
  dnsServers?: string[];
  /** 12 */
  hostname?: string;
  /** 15 */
  domainName?: string;
  /** 26 */
  mtu?: number;
  /** 28 */
  broadcastAddress?: string;
  /** 50 */
  requestedAddress?: string;
  /** 51, seconds (0xffffffff is infinite) */
  leaseTime?: number;
  /** 54 */
  serverId?: string;
  /** 55 */
  parameterRequestList?: number[];
  /** 56: why a NAK, for people. */
  message?: string;
  /** 57 */
  maxMessageSize?: number;
  /** 58, T1 in seconds */
  renewalTime?: number;
  /** 59, T2 in seconds */
  rebindingTime?: number;
  /** 60 */
  vendorClassId?: string;
  /** 61: a type byte, then (for type 1) the hardware address, or anything. */
  clientId?: Uint8Array;
}

export interface DhcpMessage {
  op: number;
  htype: number;
  hlen: number;
  hops: number;
  xid: number;
  secs: number;
  flags: number;
  ciaddr: string;
  yiaddr: string;
  siaddr: string;
  giaddr: string;
  /** The client's hardware address: the first `hlen` bytes of the field (a copy). */
  chaddr: Uint8Array;
  /** Up to the first NUL; empty when the field is overloaded with options. */
  sname: string;
  file: string;
  options: DhcpOptions;
  /** Every option as received, instances of one code concatenated (RFC 3396), pad and end excluded. Views into the input. */
  rawOptions: Map<number, Uint8Array>;
}

export interface DhcpMessageInit {
  op: number;
  xid: number;
  /** Up to 16 bytes. */
  chaddr: Uint8Array;
  /** Default 1 (Ethernet). */
  htype?: number;
  /** Default chaddr.length. */
  hlen?: number;
  hops?: number;
  secs?: number;
  flags?: number;
  /** Default '0.0.0.0'. */
  ciaddr?: string;
  yiaddr?: string;
  siaddr?: string;
  giaddr?: string;
  sname?: string;
  file?: string;
  options?: DhcpOptions;
  /** Further options, raw; values over 255 bytes are split into several instances (RFC 3396). */
  extraOptions?: Array<{ code: number; data: Uint8Array }>;
  /**
   * Codes to place first, in this order, after the message type and server
   * id: a client's parameter request list, which RFC 2132 section 9.8 asks
   * servers to follow. Other options follow in code order.
   */
  optionOrder?: readonly number[];
  /** Pad the message with zeros to at least this many bytes; default 300 (BOOTP_MIN_LEN). */
  minLength?: number;
}

// ---------------------------------------------------------------- parsing

const textDecoder = new TextDecoder('utf-8');

/** Text of an option or field: NVT ASCII in the RFC, UTF-8 in practice; trailing NULs (some clients count one) dropped. */
function text(bytes: Uint8Array): string {
  let end = bytes.length;
  while (end > 0 && bytes[end - 1] === 0) end--;
  return textDecoder.decode(bytes.subarray(0, end));
}

/** A NUL-terminated field (sname, file). */
function cString(bytes: Uint8Array): string {
  const nul = bytes.indexOf(0);
  return textDecoder.decode(nul >= 0 ? bytes.subarray(0, nul) : bytes);
}

/**
 * Collects the options in bytes[start, end) into `into` (RFC 3396:
 * instances of one code are kept in order, to be concatenated). Returns false
 * when an option's length runs past the end. Stops at the end option; running
 * out of bytes without one is accepted, as most stacks do.
 */
function scanOptions(bytes: Uint8Array, start: number, end: number, into: Map<number, Uint8Array[]>): boolean {
  let i = start;
  while (i < end) {
    const code = bytes[i]!;
    if (code === DhcpOption.Pad) {
      i++;
      continue;
    }
    if (code === DhcpOption.End) return true;
    if (i + 1 >= end) return false;
    const len = bytes[i + 1]!;
    if (i + 2 + len > end) return false;
    const data = bytes.subarray(i + 2, i + 2 + len);
    const list = into.get(code);
    if (list) list.push(data); else into.set(code, [data]);
    i += 2 + len;
  }
  return true;
}

function concat(parts: Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0]!;
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function u16(b: Uint8Array): number {
  return (b[0]! << 8) | b[1]!;
}

function u32(b: Uint8Array): number {
  return ((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0;
}

function addressList(b: Uint8Array): string[] {
  const out: string[] = [];
  for (let i = 0; i < b.length; i += 4) out.push(formatIPv4(b, i));
  return out;
}

/** Decodes the known options; null when one has a length RFC 2132 does not allow. */
function decodeOptions(raw: Map<number, Uint8Array>): DhcpOptions | null {
  const o: DhcpOptions = {};
  for (const [code, b] of raw) {
    const n = b.length;
    switch (code) {
      case DhcpOption.MessageType:
        if (n !== 1) return null;
        o.messageType = b[0]!;
        break;
      case DhcpOption.SubnetMask:
      case DhcpOption.BroadcastAddress:
      case DhcpOption.RequestedAddress:
      case DhcpOption.ServerId: {
        if (n !== 4) return null;
        const a = formatIPv4(b);
        if (code === DhcpOption.SubnetMask) o.subnetMask = a;
        else if (code === DhcpOption.BroadcastAddress) o.broadcastAddress = a;
        else if (code === DhcpOption.RequestedAddress) o.requestedAddress = a;
        else o.serverId = a;
        break;
      }
      case DhcpOption.Router:
      case DhcpOption.DnsServers:
        if (n === 0 || n % 4 !== 0) return null;
        if (code === DhcpOption.Router) o.routers = addressList(b);
        else o.dnsServers = addressList(b);
        break;
      case DhcpOption.InterfaceMtu:
      case DhcpOption.MaxMessageSize:
        if (n !== 2) return null;
        if (code === DhcpOption.InterfaceMtu) o.mtu = u16(b);
        else o.maxMessageSize = u16(b);
        break;
      case DhcpOption.LeaseTime:
      case DhcpOption.RenewalTime:
      case DhcpOption.RebindingTime:
        if (n !== 4) return null;
        if (code === DhcpOption.LeaseTime) o.leaseTime = u32(b);
        else if (code === DhcpOption.RenewalTime) o.renewalTime = u32(b);
        else o.rebindingTime = u32(b);
        break;
      case DhcpOption.Hostname:
      case DhcpOption.DomainName:
      case DhcpOption.Message:
      case DhcpOption.VendorClassId:
      case DhcpOption.ParameterRequestList:
        if (n === 0) return null;
        if (code === DhcpOption.Hostname) o.hostname = text(b);
        else if (code === DhcpOption.DomainName) o.domainName = text(b);
        else if (code === DhcpOption.Message) o.message = text(b);
        else if (code === DhcpOption.VendorClassId) o.vendorClassId = text(b);
        else o.parameterRequestList = [...b];
        break;
      case DhcpOption.ClientId:
        if (n < 2) return null; // a type and at least one byte (RFC 2132 section 9.14)
        o.clientId = b.slice();
        break;
      case DhcpOption.Overload:
        if (n !== 1 || b[0]! < 1 || b[0]! > 3) return null;
        break;
      default:
        break;
    }
  }
  return o;
}

/**
 * Parses a DHCP message (a UDP payload). Returns null when shorter than the
 * fixed header and cookie, without the magic cookie (plain BOOTP), with hlen
 * over 16, or with malformed options (see the module comment). Trailing bytes
 * after the end option are ignored.
 */
export function parseDhcpMessage(bytes: Uint8Array): DhcpMessage | null {
  if (!(bytes instanceof Uint8Array) || bytes.length < DHCP.OPTIONS) return null;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(DHCP.COOKIE) !== DHCP.MAGIC_COOKIE) return null;
  const hlen = bytes[DHCP.HLEN]!;
  if (hlen > DHCP.CHADDR_LEN) return null;

  const parts = new Map<number, Uint8Array[]>();
  if (!scanOptions(bytes, DHCP.OPTIONS, bytes.length, parts)) return null;
  // Overload is read from the options field only, then file before sname (RFC 3396 section 5).
  const overloadPart = parts.get(DhcpOption.Overload);
  let overload = 0;
  if (overloadPart) {
    if (overloadPart.length !== 1 || overloadPart[0]!.length !== 1) return null;
    overload = overloadPart[0]![0]!;
    if (overload < 1 || overload > 3) return null;
    if (overload & 1 && !scanOptions(bytes, DHCP.FILE, DHCP.FILE + DHCP.FILE_LEN, parts)) return null;
    if (overload & 2 && !scanOptions(bytes, DHCP.SNAME, DHCP.SNAME + DHCP.SNAME_LEN, parts)) return null;
  }
  const rawOptions = new Map<number, Uint8Array>();
  for (const [code, list] of parts) rawOptions.set(code, concat(list));
  const options = decodeOptions(rawOptions);
  if (!options) return null;

  return {
    op: bytes[DHCP.OP]!,
    htype: bytes[DHCP.HTYPE]!,
    hlen,
    hops: bytes[DHCP.HOPS]!,
    xid: view.getUint32(DHCP.XID),
    secs: view.getUint16(DHCP.SECS),
    flags: view.getUint16(DHCP.FLAGS),
    ciaddr: formatIPv4(bytes, DHCP.CIADDR),
    yiaddr: formatIPv4(bytes, DHCP.YIADDR),
    siaddr: formatIPv4(bytes, DHCP.SIADDR),
    giaddr: formatIPv4(bytes, DHCP.GIADDR),
    chaddr: bytes.slice(DHCP.CHADDR, DHCP.CHADDR + hlen),
    sname: overload & 2 ? '' : cString(bytes.subarray(DHCP.SNAME, DHCP.SNAME + DHCP.SNAME_LEN)),
    file: overload & 1 ? '' : cString(bytes.subarray(DHCP.FILE, DHCP.FILE + DHCP.FILE_LEN)),
    options,
    rawOptions,
  };
}

// ---------------------------------------------------------------- emitting

const textEncoder = new TextEncoder();

function ipv4Bytes(value: string, what: string): Uint8Array {
  const b = typeof value === 'string' ? parseIPv4(value) : null;
  if (!b) throw new RangeError(`${what} must be an IPv4 address, got ${String(value)}`);
  return b;
}

function uint(value: number, bits: 8 | 16 | 32, what: string): number {
  const max = 2 ** bits - 1;
  if (!Number.isInteger(value) || value < 0 || value > max) throw new RangeError(`${what} must be an integer from 0 to ${max}, got ${value}`);
  return value;
}

function be(value: number, bytes: 2 | 4): Uint8Array {
  const out = new Uint8Array(bytes);
  for (let i = bytes - 1; i >= 0; i--) {
    out[i] = value & 0xff;
    value = Math.floor(value / 256);
  }
  return out;
}

function addresses(list: readonly string[], what: string): Uint8Array {
  if (!Array.isArray(list) || list.length === 0) throw new RangeError(`${what} must be a non-empty list of IPv4 addresses`);
  const out = new Uint8Array(list.length * 4);
  list.forEach((a, i) => out.set(ipv4Bytes(a, what), i * 4));
  return out;
}

function nonEmptyText(value: string, what: string): Uint8Array {
  const b = typeof value === 'string' ? textEncoder.encode(value) : new Uint8Array(0);
  if (b.length === 0) throw new RangeError(`${what} must be a non-empty string`);
  return b;
}

/** The typed options as (code, bytes) pairs, validated. */
function encodeTyped(o: DhcpOptions): Map<number, Uint8Array> {
  const m = new Map<number, Uint8Array>();
  if (o.messageType !== undefined) m.set(DhcpOption.MessageType, Uint8Array.of(uint(o.messageType, 8, 'messageType')));
  if (o.serverId !== undefined) m.set(DhcpOption.ServerId, ipv4Bytes(o.serverId, 'serverId'));
  if (o.subnetMask !== undefined) m.set(DhcpOption.SubnetMask, ipv4Bytes(o.subnetMask, 'subnetMask'));
  if (o.routers !== undefined) m.set(DhcpOption.Router, addresses(o.routers, 'routers'));
  if (o.dnsServers !== undefined) m.set(DhcpOption.DnsServers, addresses(o.dnsServers, 'dnsServers'));
  if (o.hostname !== undefined) m.set(DhcpOption.Hostname, nonEmptyText(o.hostname, 'hostname'));
  if (o.domainName !== undefined) m.set(DhcpOption.DomainName, nonEmptyText(o.domainName, 'domainName'));
  if (o.mtu !== undefined) {
    // RFC 2132 section 5.1: at least 68.
    if (!Number.isInteger(o.mtu) || o.mtu < 68 || o.mtu > 0xffff) throw new RangeError(`mtu must be an integer from 68 to 65535, got ${o.mtu}`);
    m.set(DhcpOption.InterfaceMtu, be(o.mtu, 2));
  }
  if (o.broadcastAddress !== undefined) m.set(DhcpOption.BroadcastAddress, ipv4Bytes(o.broadcastAddress, 'broadcastAddress'));
  if (o.requestedAddress !== undefined) m.set(DhcpOption.RequestedAddress, ipv4Bytes(o.requestedAddress, 'requestedAddress'));
  if (o.leaseTime !== undefined) m.set(DhcpOption.LeaseTime, be(uint(o.leaseTime, 32, 'leaseTime'), 4));
  if (o.parameterRequestList !== undefined) {
    const list = o.parameterRequestList;
    if (!Array.isArray(list) || list.length === 0) throw new RangeError('parameterRequestList must be a non-empty list of option codes');
    m.set(DhcpOption.ParameterRequestList, Uint8Array.from(list, (c) => uint(c, 8, 'parameterRequestList')));
  }
  if (o.message !== undefined) m.set(DhcpOption.Message, nonEmptyText(o.message, 'message'));
  if (o.maxMessageSize !== undefined) {
    if (!Number.isInteger(o.maxMessageSize) || o.maxMessageSize < DHCP.MIN_MAX_MESSAGE_SIZE || o.maxMessageSize > 0xffff) {
      throw new RangeError(`maxMessageSize must be an integer from 576 to 65535, got ${o.maxMessageSize}`);
    }
    m.set(DhcpOption.MaxMessageSize, be(o.maxMessageSize, 2));
  }
  if (o.renewalTime !== undefined) m.set(DhcpOption.RenewalTime, be(uint(o.renewalTime, 32, 'renewalTime'), 4));
  if (o.rebindingTime !== undefined) m.set(DhcpOption.RebindingTime, be(uint(o.rebindingTime, 32, 'rebindingTime'), 4));
  if (o.vendorClassId !== undefined) m.set(DhcpOption.VendorClassId, nonEmptyText(o.vendorClassId, 'vendorClassId'));
  if (o.clientId !== undefined) {
    if (!(o.clientId instanceof Uint8Array) || o.clientId.length < 2) throw new RangeError('clientId must be at least 2 bytes');
    m.set(DhcpOption.ClientId, o.clientId);
  }
  return m;
}

/** All options of init, in emission order. */
function orderedOptions(init: DhcpMessageInit): Array<[number, Uint8Array]> {
  const all = encodeTyped(init.options ?? {});
  for (const { code, data } of init.extraOptions ?? []) {
    if (!Number.isInteger(code) || code <= DhcpOption.Pad || code >= DhcpOption.End) throw new RangeError(`option code must be from 1 to 254, got ${code}`);
    if (!(data instanceof Uint8Array)) throw new RangeError(`option ${code} data must be a Uint8Array`);
    if (all.has(code)) throw new RangeError(`option ${code} is given twice`);
    all.set(code, data);
  }
  const out: Array<[number, Uint8Array]> = [];
  const take = (code: number) => {
    const data = all.get(code);
    if (data === undefined) return;
    out.push([code, data]);
    all.delete(code);
  };
  // The message type first: some clients look for it there.
  take(DhcpOption.MessageType);
  take(DhcpOption.ServerId);
  for (const code of init.optionOrder ?? []) take(code);
  for (const code of [...all.keys()].sort((a, b) => a - b)) take(code);
  return out;
}

/** Bytes an option takes on the wire, split into instances of at most 255 bytes (RFC 3396). */
function optionSize(len: number): number {
  const instances = Math.max(1, Math.ceil(len / 255));
  return instances * 2 + len;
}

function fixedText(value: string | undefined, max: number, what: string): Uint8Array {
  const b = textEncoder.encode(value ?? '');
  // Room for the terminating NUL.
  if (b.length >= max) throw new RangeError(`${what} must be shorter than ${max} bytes`);
  return b;
}

/** The bytes emitDhcpMessage writes for init. */
export function dhcpMessageLength(init: DhcpMessageInit): number {
  let n = DHCP.OPTIONS + 1; // the end option
  for (const [, data] of orderedOptions(init)) n += optionSize(data.length);
  return Math.max(n, init.minLength ?? DHCP.BOOTP_MIN_LEN);
}

/** Writes the message at `offset`; returns the bytes written (dhcpMessageLength). */
export function emitDhcpMessage(init: DhcpMessageInit, buf: Uint8Array, offset = 0): number {
  const chaddr = init.chaddr;
  if (!(chaddr instanceof Uint8Array) || chaddr.length > DHCP.CHADDR_LEN) throw new RangeError('chaddr must be a Uint8Array of at most 16 bytes');
  const hlen = uint(init.hlen ?? chaddr.length, 8, 'hlen');
  if (hlen > DHCP.CHADDR_LEN) throw new RangeError('hlen must be at most 16');
  const sname = fixedText(init.sname, DHCP.SNAME_LEN, 'sname');
  const file = fixedText(init.file, DHCP.FILE_LEN, 'file');
  const options = orderedOptions(init);
  let length = DHCP.OPTIONS + 1;
  for (const [, data] of options) length += optionSize(data.length);
  const minLength = init.minLength ?? DHCP.BOOTP_MIN_LEN;
  if (!Number.isInteger(minLength) || minLength < 0) throw new RangeError(`minLength must be a non-negative integer, got ${minLength}`);
  const total = Math.max(length, minLength);
  if (offset < 0 || buf.length - offset < total) throw new RangeError('buffer too small for the DHCP message');

  const out = buf.subarray(offset, offset + total);
  out.fill(0);
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  view.setUint8(DHCP.OP, uint(init.op, 8, 'op'));
  view.setUint8(DHCP.HTYPE, uint(init.htype ?? DHCP.HTYPE_ETHERNET, 8, 'htype'));
  view.setUint8(DHCP.HLEN, hlen);
  view.setUint8(DHCP.HOPS, uint(init.hops ?? 0, 8, 'hops'));
  view.setUint32(DHCP.XID, uint(init.xid, 32, 'xid'));
  view.setUint16(DHCP.SECS, uint(init.secs ?? 0, 16, 'secs'));
  view.setUint16(DHCP.FLAGS, uint(init.flags ?? 0, 16, 'flags'));
  out.set(ipv4Bytes(init.ciaddr ?? '0.0.0.0', 'ciaddr'), DHCP.CIADDR);
  out.set(ipv4Bytes(init.yiaddr ?? '0.0.0.0', 'yiaddr'), DHCP.YIADDR);
  out.set(ipv4Bytes(init.siaddr ?? '0.0.0.0', 'siaddr'), DHCP.SIADDR);
  out.set(ipv4Bytes(init.giaddr ?? '0.0.0.0', 'giaddr'), DHCP.GIADDR);
  out.set(chaddr, DHCP.CHADDR);
  out.set(sname, DHCP.SNAME);
  out.set(file, DHCP.FILE);
  view.setUint32(DHCP.COOKIE, DHCP.MAGIC_COOKIE);
  let o = DHCP.OPTIONS;
  for (const [code, data] of options) {
    let at = 0;
    do {
      const chunk = data.subarray(at, at + 255);
      out[o] = code;
      out[o + 1] = chunk.length;
      out.set(chunk, o + 2);
      o += 2 + chunk.length;
      at += 255;
    } while (at < data.length);
  }
  out[o] = DhcpOption.End;
  return total;
}

export function buildDhcpMessage(init: DhcpMessageInit): Uint8Array {
  const out = new Uint8Array(dhcpMessageLength(init));
  emitDhcpMessage(init, out, 0);
  return out;
}
