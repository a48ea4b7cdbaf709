/**
 * DNS messages (RFC 1035 section 4): encode queries and responses, decode any
 * message. Names are in presentation form without the trailing dot ("." is
 * the root); bytes outside printable ASCII, "." and "\" inside labels are
 * escaped as \DDD or \X (RFC 4343 section 2.1). Decoding never throws and
 * always ends: compression pointers are followed at most MAX_POINTERS times
 * and names are capped at 255 bytes (RFC 1035 section 3.1).
 */

import { formatIPv4, formatIPv6, parseIPv4, parseIPv6 } from './address.js';

/** Header field offsets and limits (RFC 1035 sections 2.3.4, 4.1.1, 4.1.4). */
export const DNS = {
  ID: 0,
  FLAGS: 2,
  QDCOUNT: 4,
  ANCOUNT: 6,
  NSCOUNT: 8,
  ARCOUNT: 10,
  HEADER_LEN: 12,
  MAX_LABEL_LEN: 63,
  MAX_NAME_LEN: 255,
  /** A name holds at most 127 labels, so a longer pointer chain is a loop. */
  MAX_POINTERS: 128,
  POINTER_TAG: 0xc0,
  /** Pointers carry 14 bits of offset. */
  MAX_POINTER_OFFSET: 0x3fff,
  /** Flag bits of the second header word (RFC 1035 section 4.1.1, RFC 4035 section 3.2). */
  QR: 0x8000,
  AA: 0x0400,
  TC: 0x0200,
  RD: 0x0100,
  RA: 0x0080,
  AD: 0x0020,
  CD: 0x0010,
} as const;

export const DnsType = {
  A: 1,
  NS: 2,
  CNAME: 5,
  SOA: 6,
  PTR: 12,
  MX: 15,
  TXT: 16,
  AAAA: 28,
  OPT: 41,
  ANY: 255,
} as const;

export const DnsClass = { IN: 1 } as const;

export const DnsRcode = {
  NoError: 0,
  FormErr: 1,
  ServFail: 2,
  NXDomain: 3,
  NotImp: 4,
  Refused: 5,
} as const;

export interface DnsQuestion {
  name: string;
  type: number;
  class: number;
}

export interface DnsRecord {
  name: string;
  type: number;
  class: number;
  ttl: number;
  /** The raw RDATA (a view; names in it may point elsewhere in the message). */
  data: Uint8Array;
  /** Decoded RDATA for A, AAAA (address text) and CNAME, NS, PTR (a name). */
  value?: string;
}

export interface DnsHeader {
  id: number;
  /** True for a response. */
  qr: boolean;
  opcode: number;
  authoritative: boolean;
  truncated: boolean;
  recursionDesired: boolean;
  recursionAvailable: boolean;
  authenticData: boolean;
  checkingDisabled: boolean;
  rcode: number;
}

export interface DnsMessage extends DnsHeader {
  questions: DnsQuestion[];
  answers: DnsRecord[];
  authorities: DnsRecord[];
  additionals: DnsRecord[];
}

export interface DnsRecordInit {
  name: string;
  type: number;
  class?: number;
  /** Seconds; default 60. */
  ttl?: number;
  /** Text for A, AAAA, CNAME, NS, PTR. */
  value?: string;
  /** Raw RDATA, used as is instead of `value`. */
  data?: Uint8Array;
}

export type DnsMessageInit = Partial<DnsHeader> & {
  id: number;
  questions?: Array<{ name: string; type: number; class?: number }>;
  answers?: DnsRecordInit[];
  authorities?: DnsRecordInit[];
  additionals?: DnsRecordInit[];
};

// ---------------------------------------------------------------- decoding

function labelToText(msg: Uint8Array, start: number, len: number): string {
  let s = '';
  for (let i = start; i < start + len; i++) {
    const c = msg[i]!;
    if (c === 0x2e || c === 0x5c) s += '\\' + String.fromCharCode(c);
    else if (c > 0x20 && c < 0x7f) s += String.fromCharCode(c);
    else s += '\\' + String(c).padStart(3, '0');
  }
  return s;
}

/**
 * Reads a possibly compressed name at `offset`. `end` is where the name ends
 * in place (after its first pointer, if any). Null on truncation, reserved
 * label types (0x40, 0x80), too many pointers, or more than 255 bytes.
 */
function readName(msg: Uint8Array, offset: number): { name: string; end: number } | null {
  const labels: string[] = [];
  let pos = offset;
  let end = -1;
  let pointers = 0;
  let wireLength = 1; // the root label
  for (;;) {
    if (pos >= msg.length) return null;
    const len = msg[pos]!;
    const tag = len & DNS.POINTER_TAG;
    if (tag === DNS.POINTER_TAG) {
      if (pos + 1 >= msg.length) return null;
      if (++pointers > DNS.MAX_POINTERS) return null;
      if (end < 0) end = pos + 2;
      pos = ((len & 0x3f) << 8) | msg[pos + 1]!;
      continue;
    }
    if (tag !== 0) return null;
    if (len === 0) {
      if (end < 0) end = pos + 1;
      break;
    }
    wireLength += len + 1;
    if (wireLength > DNS.MAX_NAME_LEN || pos + 1 + len > msg.length) return null;
    labels.push(labelToText(msg, pos + 1, len));
    pos += 1 + len;
  }
  return { name: labels.length === 0 ? '.' : labels.join('.'), end };
}

function readRecord(msg: Uint8Array, view: DataView, offset: number): { record: DnsRecord; end: number } | null {
  const owner = readName(msg, offset);
  if (!owner) return null;
  let pos = owner.end;
  if (pos + 10 > msg.length) return null;
  const type = view.getUint16(pos);
  const cls = view.getUint16(pos + 2);
  const ttl = view.getUint32(pos + 4);
  const rdlength = view.getUint16(pos + 8);
  pos += 10;
  if (pos + rdlength > msg.length) return null;
  const data = msg.subarray(pos, pos + rdlength);
  const record: DnsRecord = { name: owner.name, type, class: cls, ttl, data };
  if (cls === DnsClass.IN && type === DnsType.A) {
    if (rdlength !== 4) return null;
    record.value = formatIPv4(data);
  } else if (cls === DnsClass.IN && type === DnsType.AAAA) {
    if (rdlength !== 16) return null;
    record.value = formatIPv6(data);
  } else if (type === DnsType.CNAME || type === DnsType.NS || type === DnsType.PTR) {
    const target = readName(msg, pos);
    if (!target || target.end !== pos + rdlength) return null;
    record.value = target.name;
  }
  return { record, end: pos + rdlength };
}

/**
 * Decodes a DNS message. Returns null when the header is short, a count
 * promises more entries than the bytes hold, a name is malformed or loops,
 * or an A/AAAA/CNAME/NS/PTR RDATA has the wrong shape. Bytes after the last
 * record are ignored.
 */
export function decodeDnsMessage(bytes: Uint8Array): DnsMessage | null {
  if (bytes.length < DNS.HEADER_LEN) return null;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const flags = view.getUint16(DNS.FLAGS);
  const message: DnsMessage = {
    id: view.getUint16(DNS.ID),
    qr: (flags & DNS.QR) !== 0,
    opcode: (flags >> 11) & 0x0f,
    authoritative: (flags & DNS.AA) !== 0,
    truncated: (flags & DNS.TC) !== 0,
    recursionDesired: (flags & DNS.RD) !== 0,
    recursionAvailable: (flags & DNS.RA) !== 0,
    authenticData: (flags & DNS.AD) !== 0,
    checkingDisabled: (flags & DNS.CD) !== 0,
    rcode: flags & 0x0f,
    questions: [],
    answers: [],
    authorities: [],
    additionals: [],
  };
  let pos: number = DNS.HEADER_LEN;
  // Every entry consumes bytes or fails, so large counts end at the buffer's end.
  const qdcount = view.getUint16(DNS.QDCOUNT);
  for (let i = 0; i < qdcount; i++) {
    const q = readName(bytes, pos);
    if (!q || q.end + 4 > bytes.length) return null;
    message.questions.push({ name: q.name, type: view.getUint16(q.end), class: view.getUint16(q.end + 2) });
    pos = q.end + 4;
  }
  const sections: Array<[number, DnsRecord[]]> = [
    [view.getUint16(DNS.ANCOUNT), message.answers],
    [view.getUint16(DNS.NSCOUNT), message.authorities],
    [view.getUint16(DNS.ARCOUNT), message.additionals],
  ];
  for (const [count, list] of sections) {
    for (let i = 0; i < count; i++) {
      const r = readRecord(bytes, view, pos);
      if (!r) return null;
      list.push(r.record);
      pos = r.end;
    }
  }
  return message;
}

// ---------------------------------------------------------------- encoding

/** Splits a presentation-form name into label bytes. Throws RangeError when invalid. */
function nameToLabels(name: string): Uint8Array[] {
  if (name === '' || name === '.') return [];
  const labels: Uint8Array[] = [];
  let current: number[] = [];
  let wireLength = 1;
  const finish = () => {
    if (current.length === 0) throw new RangeError(`empty label in DNS name ${JSON.stringify(name)}`);
    if (current.length > DNS.MAX_LABEL_LEN) throw new RangeError(`DNS label longer than 63 bytes in ${JSON.stringify(name)}`);
    wireLength += current.length + 1;
    labels.push(Uint8Array.from(current));
    current = [];
  };
  for (let i = 0; i < name.length; i++) {
    const ch = name.charCodeAt(i);
    if (ch > 0x7e || ch < 0x20) throw new RangeError(`DNS names are ASCII (use punycode): ${JSON.stringify(name)}`);
    if (ch === 0x5c) {
      const digits = /^\d{3}/.exec(name.slice(i + 1, i + 4));
      if (digits) {
        const v = Number(digits[0]);
        if (v > 255) throw new RangeError(`bad escape in DNS name ${JSON.stringify(name)}`);
        current.push(v);
        i += 3;
      } else if (i + 1 < name.length) {
        current.push(name.charCodeAt(++i));
      } else {
        throw new RangeError(`trailing backslash in DNS name ${JSON.stringify(name)}`);
      }
    } else if (ch === 0x2e) {
      finish();
    } else {
      current.push(ch);
    }
  }
  if (current.length > 0) finish(); // a trailing dot (fully qualified) adds nothing
  if (wireLength > DNS.MAX_NAME_LEN) throw new RangeError(`DNS name longer than 255 bytes: ${JSON.stringify(name)}`);
  return labels;
}

/** Case-insensitive key for name compression (RFC 4343: ASCII letters only). */
function suffixKey(labels: Uint8Array[], from: number): string {
  let key = '';
  for (let i = from; i < labels.length; i++) {
    const l = labels[i]!;
    key += String.fromCharCode(l.length);
    for (const c of l) key += String.fromCharCode(c >= 0x41 && c <= 0x5a ? c | 0x20 : c);
  }
  return key;
}

class Writer {
  private buf = new Uint8Array(512);
  private view = new DataView(this.buf.buffer);
  length = 0;
  /** Suffix key → offset of a name already written (RFC 1035 section 4.1.4). */
  private names = new Map<string, number>();

  private reserve(n: number): void {
    if (this.length + n > 0xffff) throw new RangeError('DNS message exceeds 65535 bytes');
    if (this.length + n <= this.buf.length) return;
    const next = new Uint8Array(Math.min(0x10000, Math.max(this.buf.length * 2, this.length + n)));
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }
  u8(v: number): void {
    this.reserve(1);
    this.buf[this.length++] = v;
  }
  u16(v: number): void {
    this.reserve(2);
    this.view.setUint16(this.length, v);
    this.length += 2;
  }
  u32(v: number): void {
    this.reserve(4);
    this.view.setUint32(this.length, v >>> 0);
    this.length += 4;
  }
  bytes(b: Uint8Array): void {
    this.reserve(b.length);
    this.buf.set(b, this.length);
    this.length += b.length;
  }
  setU16(at: number, v: number): void {
    this.view.setUint16(at, v);
  }
  name(name: string): void {
    const labels = nameToLabels(name);
    for (let i = 0; i < labels.length; i++) {
      const key = suffixKey(labels, i);
      const earlier = this.names.get(key);
      if (earlier !== undefined) {
        this.u16((DNS.POINTER_TAG << 8) | earlier);
        return;
      }
      if (this.length <= DNS.MAX_POINTER_OFFSET) this.names.set(key, this.length);
      this.u8(labels[i]!.length);
      this.bytes(labels[i]!);
    }
    this.u8(0);
  }
  finish(): Uint8Array {
    return this.buf.slice(0, this.length);
  }
}

function writeRecord(w: Writer, r: DnsRecordInit): void {
  w.name(r.name);
  w.u16(r.type);
  w.u16(r.class ?? DnsClass.IN);
  w.u32(r.ttl ?? 60);
  const lengthAt = w.length;
  w.u16(0);
  if (r.data) {
    w.bytes(r.data);
  } else if (r.value === undefined) {
    throw new RangeError(`DNS record of type ${r.type} needs value or data`);
  } else if (r.type === DnsType.A) {
    const a = parseIPv4(r.value);
    if (!a) throw new RangeError(`not an IPv4 address: ${r.value}`);
    w.bytes(a);
  } else if (r.type === DnsType.AAAA) {
    const a = parseIPv6(r.value);
    if (!a || a.zone !== '') throw new RangeError(`not an IPv6 address: ${r.value}`);
    w.bytes(a.bytes);
  } else if (r.type === DnsType.CNAME || r.type === DnsType.NS || r.type === DnsType.PTR) {
    // Compression inside RDATA is allowed for these RFC 1035 types (RFC 3597 section 4).
    w.name(r.value);
  } else {
    throw new RangeError(`cannot encode a value for DNS type ${r.type}; pass data`);
  }
  w.setU16(lengthAt, w.length - lengthAt - 2);
}

/** Encodes a message with name compression. Throws RangeError on invalid names or values. */
export function encodeDnsMessage(init: DnsMessageInit): Uint8Array {
  const w = new Writer();
  const questions = init.questions ?? [];
  const answers = init.answers ?? [];
  const authorities = init.authorities ?? [];
  const additionals = init.additionals ?? [];
  for (const n of [questions.length, answers.length, authorities.length, additionals.length]) {
    if (n > 0xffff) throw new RangeError('too many DNS entries');
  }
  w.u16(init.id & 0xffff);
  w.u16(
    (init.qr ? DNS.QR : 0) |
      (((init.opcode ?? 0) & 0x0f) << 11) |
      (init.authoritative ? DNS.AA : 0) |
      (init.truncated ? DNS.TC : 0) |
      (init.recursionDesired ? DNS.RD : 0) |
      (init.recursionAvailable ? DNS.RA : 0) |
      (init.authenticData ? DNS.AD : 0) |
      (init.checkingDisabled ? DNS.CD : 0) |
      ((init.rcode ?? 0) & 0x0f),
  );
  w.u16(questions.length);
  w.u16(answers.length);
  w.u16(authorities.length);
  w.u16(additionals.length);
  for (const q of questions) {
    w.name(q.name);
    w.u16(q.type);
    w.u16(q.class ?? DnsClass.IN);
  }
  for (const r of answers) writeRecord(w, r);
  for (const r of authorities) writeRecord(w, r);
  for (const r of additionals) writeRecord(w, r);
  return w.finish();
}

/** A standard query for one name (RFC 1035 section 4.1); recursion desired by default. */
export function encodeDnsQuery(query: {
  id: number;
  name: string;
  type: number;
  class?: number;
  recursionDesired?: boolean;
}): Uint8Array {
  return encodeDnsMessage({
    id: query.id,
    recursionDesired: query.recursionDesired ?? true,
    questions: [{ name: query.name, type: query.type, class: query.class ?? DnsClass.IN }],
  });
}

export interface DnsResponseOptions {
  rcode?: number;
  authoritative?: boolean;
  /** Default true: our servers answer as recursive resolvers would. */
  recursionAvailable?: boolean;
  authorities?: DnsRecordInit[];
  additionals?: DnsRecordInit[];
}

/**
 * A response to `query`: same id, opcode and questions, RD and CD copied
 * (RFC 1035 section 4.1.1, RFC 6840 section 5.9). Answers without a name take
 * the first question's name.
 */
export function encodeDnsResponse(
  query: DnsMessage,
  answers: Array<Omit<DnsRecordInit, 'name'> & { name?: string }>,
  options: DnsResponseOptions = {},
): Uint8Array {
  const defaultName = query.questions[0]?.name;
  return encodeDnsMessage({
    id: query.id,
    qr: true,
    opcode: query.opcode,
    authoritative: options.authoritative ?? false,
    recursionDesired: query.recursionDesired,
    recursionAvailable: options.recursionAvailable ?? true,
    checkingDisabled: query.checkingDisabled,
    rcode: options.rcode ?? DnsRcode.NoError,
    questions: query.questions,
    answers: answers.map((a) => {
      const name = a.name ?? defaultName;
      if (name === undefined) throw new RangeError('answer needs a name: the query has no question');
      return { ...a, name };
    }),
    authorities: options.authorities ?? [],
    additionals: options.additionals ?? [],
  });
}
