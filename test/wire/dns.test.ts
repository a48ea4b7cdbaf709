import { describe, expect, it } from 'vitest';
import {
  decodeDnsMessage,
  DnsRcode,
  DnsType,
  encodeDnsMessage,
  encodeDnsQuery,
  encodeDnsResponse,
} from '../../src/wire/dns.js';
import { hex, Rng } from '../support/frames.js';

const QUERY_EXAMPLE_A = hex(`
  1234 0100 0001 0000 0000 0000
  07 6578616d706c65 03 636f6d 00 0001 0001`);

// A recursive resolver's answer for www.example.com A, laid out as on the
// wire (RFC 1035 section 4.1): the CNAME's owner points at the question name
// (c00c), its target and the A record's owner at "example.com" inside it (c010),
// then an EDNS OPT record (RFC 6891) with a 1232-byte UDP size.
const RESPONSE_CNAME_A = hex(`
  beef 8180 0001 0002 0000 0001
  03 777777 07 6578616d706c65 03 636f6d 00 0001 0001
  c00c 0005 0001 00000e10 0002 c010
  c010 0001 0001 0000003c 0004 c0000201
  00 0029 04d0 00000000 0000`);

/** A header with one question, followed by `tail` as the question's name and beyond. */
const withQuestion = (tail: string) => hex(`0001 0100 0001 0000 0000 0000 ${tail}`);

describe('encodeDnsQuery', () => {
  it('encodes a standard A query with recursion desired', () => {
    expect(encodeDnsQuery({ id: 0x1234, name: 'example.com', type: DnsType.A })).toEqual(QUERY_EXAMPLE_A);
  });

  it('accepts a trailing dot and clears RD on request', () => {
    const q = encodeDnsQuery({ id: 0x1234, name: 'example.com.', type: DnsType.AAAA, recursionDesired: false });
    expect([q[2], q[3]]).toEqual([0, 0]);
    expect([...q.subarray(-4)]).toEqual([0, 28, 0, 1]);
  });

  it('rejects invalid names', () => {
    expect(() => encodeDnsQuery({ id: 1, name: 'a..b', type: 1 })).toThrow(RangeError);
    expect(() => encodeDnsQuery({ id: 1, name: 'x'.repeat(64) + '.com', type: 1 })).toThrow(RangeError);
    expect(() => encodeDnsQuery({ id: 1, name: Array(4).fill('x'.repeat(63)).join('.'), type: 1 })).toThrow(RangeError);
    expect(() => encodeDnsQuery({ id: 1, name: 'bücher.example', type: 1 })).toThrow(RangeError);
    // 3 × 63 + 61 is exactly 255 bytes on the wire.
    const longest = [...Array(3).fill('x'.repeat(63)), 'y'.repeat(61)].join('.');
    expect(encodeDnsQuery({ id: 1, name: longest, type: 1 }).length).toBe(12 + 255 + 4);
  });
});

describe('decodeDnsMessage', () => {
  it('decodes a query', () => {
    const m = decodeDnsMessage(QUERY_EXAMPLE_A)!;
    expect(m).toMatchObject({ id: 0x1234, qr: false, opcode: 0, recursionDesired: true, rcode: 0 });
    expect(m.questions).toEqual([{ name: 'example.com', type: 1, class: 1 }]);
    expect(m.answers).toEqual([]);
  });

  it('decodes a response, following compression pointers', () => {
    const m = decodeDnsMessage(RESPONSE_CNAME_A)!;
    expect(m).toMatchObject({ id: 0xbeef, qr: true, recursionDesired: true, recursionAvailable: true, authoritative: false, truncated: false, rcode: 0 });
    expect(m.questions).toEqual([{ name: 'www.example.com', type: 1, class: 1 }]);
    expect(m.answers.map(({ name, type, ttl, value }) => ({ name, type, ttl, value }))).toEqual([
      { name: 'www.example.com', type: DnsType.CNAME, ttl: 3600, value: 'example.com' },
      { name: 'example.com', type: DnsType.A, ttl: 60, value: '192.0.2.1' },
    ]);
    expect([...m.answers[1]!.data]).toEqual([192, 0, 2, 1]);
    expect(m.additionals).toHaveLength(1);
    expect(m.additionals[0]).toMatchObject({ name: '.', type: DnsType.OPT, class: 1232 });
  });

  it('decodes AAAA into RFC 5952 text', () => {
    const m = encodeDnsMessage({ id: 1, qr: true, answers: [{ name: 'v6.example', type: DnsType.AAAA, value: '2001:0DB8:0:0:0:0:0:0001' }] });
    expect(decodeDnsMessage(m)!.answers[0]!.value).toBe('2001:db8::1');
  });

  it('escapes dots, backslashes and non-printable bytes in labels (RFC 4343)', () => {
    const m = decodeDnsMessage(withQuestion('04 612e625c 02 0020 00 0001 0001'))!;
    expect(m.questions[0]!.name).toBe('a\\.b\\\\.\\000\\032');
    // And the escaped form encodes back to the same bytes.
    expect(encodeDnsQuery({ id: 1, name: m.questions[0]!.name, type: 1 }).subarray(12)).toEqual(hex('04 612e625c 02 0020 00 0001 0001'));
  });

  it('rejects pointer loops', () => {
    expect(decodeDnsMessage(withQuestion('c00c 0001 0001'))).toBeNull(); // points at itself
    expect(decodeDnsMessage(withQuestion('c00e c00c 0001 0001'))).toBeNull(); // two pointers at each other
    // A label then a pointer back to it: "a.a.a..." until the 255-byte limit.
    expect(decodeDnsMessage(withQuestion('0161 c00c 0001 0001'))).toBeNull();
  });

  it('rejects pointers past the end, reserved label types and names over 255 bytes', () => {
    expect(decodeDnsMessage(withQuestion('c0ff 0001 0001'))).toBeNull();
    expect(decodeDnsMessage(withQuestion('c0'))).toBeNull(); // half a pointer
    expect(decodeDnsMessage(withQuestion('4100 0001 0001'))).toBeNull(); // 0x40: extended label type
    expect(decodeDnsMessage(withQuestion('8100 0001 0001'))).toBeNull(); // 0x80: reserved
    const label63 = '3f' + '78'.repeat(63);
    expect(decodeDnsMessage(withQuestion(`${label63.repeat(4)} 00 0001 0001`))).toBeNull(); // 257 bytes
    expect(decodeDnsMessage(withQuestion(`${label63.repeat(3)} 3d${'79'.repeat(61)} 00 0001 0001`))).not.toBeNull(); // 255
  });

  it('rejects truncation and counts the bytes cannot hold', () => {
    expect(decodeDnsMessage(QUERY_EXAMPLE_A.subarray(0, 11))).toBeNull();
    expect(decodeDnsMessage(QUERY_EXAMPLE_A.subarray(0, QUERY_EXAMPLE_A.length - 1))).toBeNull();
    expect(decodeDnsMessage(RESPONSE_CNAME_A.subarray(0, RESPONSE_CNAME_A.length - 1))).toBeNull();
    const many = RESPONSE_CNAME_A.slice();
    many[7] = 0xff; // 255 answers promised
    expect(decodeDnsMessage(many)).toBeNull();
  });

  it('rejects A and CNAME RDATA of the wrong shape', () => {
    const badA = hex(`0001 8180 0000 0001 0000 0000  00 0001 0001 00000000 0003 010203`);
    expect(decodeDnsMessage(badA)).toBeNull();
    // A CNAME whose name is shorter than its RDLENGTH.
    const badCname = hex(`0001 8180 0000 0001 0000 0000  00 0005 0001 00000000 0003 00 0000`);
    expect(decodeDnsMessage(badCname)).toBeNull();
  });

  it('keeps unknown record types as raw data', () => {
    const m = encodeDnsMessage({ id: 7, qr: true, answers: [{ name: 'example', type: DnsType.TXT, data: hex('05 68656c6c6f') }] });
    const r = decodeDnsMessage(m)!.answers[0]!;
    expect(r.value).toBeUndefined();
    expect([...r.data]).toEqual([5, 0x68, 0x65, 0x6c, 0x6c, 0x6f]);
  });

  it('never throws or hangs on mutated messages', () => {
    const rng = new Rng(1035);
    const seeds = [QUERY_EXAMPLE_A, RESPONSE_CNAME_A];
    let decoded = 0;
    for (let i = 0; i < 5000; i++) {
      let b: Uint8Array = rng.pick(seeds).slice();
      const how = rng.int(4);
      if (how === 0) for (let k = rng.range(1, 6); k > 0; k--) b[rng.int(b.length)]! ^= 1 << rng.int(8);
      else if (how === 1) b = b.slice(0, rng.int(b.length));
      else if (how === 2) b[rng.range(12, b.length - 1)] = 0xc0 | rng.int(4); // a pointer-ish byte
      else b = rng.bytes(rng.int(600));
      const m = decodeDnsMessage(b);
      if (m) decoded++;
    }
    expect(decoded).toBeGreaterThan(0);
  });
});

describe('encodeDnsResponse', () => {
  it('answers a query with compressed names', () => {
    const query = decodeDnsMessage(encodeDnsQuery({ id: 0x1234, name: 'example.com', type: DnsType.AAAA }))!;
    const r = encodeDnsResponse(query, [{ type: DnsType.AAAA, ttl: 60, value: '2001:db8::1' }]);
    expect(r).toEqual(
      hex(`
        1234 8180 0001 0001 0000 0000
        07 6578616d706c65 03 636f6d 00 001c 0001
        c00c 001c 0001 0000003c 0010 20010db8000000000000000000000001`),
    );
  });

  it('reproduces the resolver response above', () => {
    const query = decodeDnsMessage(encodeDnsQuery({ id: 0xbeef, name: 'www.example.com', type: DnsType.A }))!;
    const r = encodeDnsResponse(query, [
      { type: DnsType.CNAME, ttl: 3600, value: 'example.com' },
      { name: 'example.com', type: DnsType.A, ttl: 60, value: '192.0.2.1' },
    ], { additionals: [{ name: '.', type: DnsType.OPT, class: 1232, ttl: 0, data: new Uint8Array(0) }] });
    expect(r).toEqual(RESPONSE_CNAME_A);
  });

  it('compresses case-insensitively (RFC 4343)', () => {
    const query = decodeDnsMessage(encodeDnsQuery({ id: 1, name: 'Example.COM', type: DnsType.A }))!;
    const r = encodeDnsResponse(query, [{ name: 'example.com', type: DnsType.A, value: '192.0.2.7' }]);
    expect([r[29], r[30]]).toEqual([0xc0, 0x0c]);
    expect(decodeDnsMessage(r)!.answers[0]).toMatchObject({ name: 'Example.COM', value: '192.0.2.7' });
  });

  it('sends NXDOMAIN with no answers and copies RD', () => {
    const query = decodeDnsMessage(encodeDnsQuery({ id: 9, name: 'nope.test', type: DnsType.A, recursionDesired: false }))!;
    const m = decodeDnsMessage(encodeDnsResponse(query, [], { rcode: DnsRcode.NXDomain, authoritative: true }))!;
    expect(m).toMatchObject({ id: 9, qr: true, rcode: 3, authoritative: true, recursionDesired: false, answers: [] });
    expect(m.questions).toEqual(query.questions);
  });

  it('refuses values it cannot encode', () => {
    const query = decodeDnsMessage(QUERY_EXAMPLE_A)!;
    expect(() => encodeDnsResponse(query, [{ type: DnsType.A, value: '::1' }])).toThrow(RangeError);
    expect(() => encodeDnsResponse(query, [{ type: DnsType.AAAA, value: '1.2.3.4' }])).toThrow(RangeError);
    expect(() => encodeDnsResponse(query, [{ type: DnsType.MX, value: 'mail.example.com' }])).toThrow(RangeError);
  });
});
