import { describe, expect, it } from 'vitest';
import { formatIp, parseIp, type IpAddress } from '../../src/wire/address.js';
import { buildIPv4Packet, emitIPv4Header, IpProtocol, parseIPv4Packet } from '../../src/wire/ipv4.js';
import { hex } from '../support/frames.js';

const ip = (s: string): IpAddress => parseIp(s)!;

// 192.168.0.1 -> 192.168.0.199, UDP, total length 115 (0x73), DF, TTL 64, checksum b861.
const KNOWN_HEADER = '4500 0073 0000 4000 4011 b861 c0a8 0001 c0a8 00c7';

// Captured on Linux loopback: the kernel's echo reply to our request, IPv4 header
// and ICMP checksum both computed by the kernel.
const LINUX_ECHO_REPLY = hex(`
  4500 0029 18c7 0000 4001 640b 7f00 0001 7f00 0001
  0000 0181 4242 0001 7463 7069 702d 7473 2065 6368 6f`);

describe('parseIPv4Packet', () => {
  it('parses a known header with its checksum', () => {
    const bytes = new Uint8Array(115);
    bytes.set(hex(KNOWN_HEADER));
    const p = parseIPv4Packet(bytes)!;
    expect(p).not.toBeNull();
    expect(p.headerLength).toBe(20);
    expect(p.totalLength).toBe(115);
    expect(p.dontFragment).toBe(true);
    expect(p.moreFragments).toBe(false);
    expect(p.fragmentOffset).toBe(0);
    expect(p.ttl).toBe(64);
    expect(p.protocol).toBe(IpProtocol.UDP);
    expect(p.checksum).toBe(0xb861);
    expect(p.checksumOk).toBe(true);
    expect(formatIp(p.src)).toBe('192.168.0.1');
    expect(formatIp(p.dst)).toBe('192.168.0.199');
    expect(p.payload.length).toBe(95);
  });

  it('parses a packet captured from Linux', () => {
    const p = parseIPv4Packet(LINUX_ECHO_REPLY)!;
    expect(p.checksumOk).toBe(true);
    expect(p.identification).toBe(0x18c7);
    expect(p.protocol).toBe(IpProtocol.ICMP);
    expect(formatIp(p.src)).toBe('127.0.0.1');
    expect(new TextDecoder().decode(p.payload.subarray(8))).toBe('tcpip-ts echo');
  });

  it('returns views for the payload and copies for addresses', () => {
    const bytes = LINUX_ECHO_REPLY.slice();
    const p = parseIPv4Packet(bytes)!;
    bytes[20] = 0x08;
    bytes[12] = 10;
    expect(p.payload[0]).toBe(0x08);
    expect(p.src.bytes[0]).toBe(127);
  });

  it('excludes link-layer padding past the total length', () => {
    const padded = new Uint8Array(60);
    padded.set(LINUX_ECHO_REPLY);
    const p = parseIPv4Packet(padded)!;
    expect(p.payload.length).toBe(0x29 - 20);
  });

  it('reports a bad checksum without rejecting the packet', () => {
    const bytes = LINUX_ECHO_REPLY.slice();
    bytes[8] = 63; // TTL changed, checksum not updated
    const p = parseIPv4Packet(bytes)!;
    expect(p.checksumOk).toBe(false);
    expect(p.ttl).toBe(63);
  });

  it('decodes flags and the fragment offset in bytes', () => {
    const pkt = buildIPv4Packet({ src: ip('10.0.0.1'), dst: ip('10.0.0.2'), protocol: 17, payload: new Uint8Array(8), moreFragments: true, fragmentOffset: 1480, identification: 0xbeef });
    expect(pkt[6]! << 8 | pkt[7]!).toBe(0x2000 | 185);
    const p = parseIPv4Packet(pkt)!;
    expect(p.moreFragments).toBe(true);
    expect(p.dontFragment).toBe(false);
    expect(p.fragmentOffset).toBe(1480);
    expect(p.identification).toBe(0xbeef);
  });

  it('exposes options when IHL is above 5', () => {
    const pkt = buildIPv4Packet({ src: ip('10.0.0.1'), dst: ip('10.0.0.2'), protocol: 1, payload: hex('aa'), options: hex('94 04 00 00') });
    expect(pkt[0]).toBe(0x46);
    const p = parseIPv4Packet(pkt)!;
    expect(p.headerLength).toBe(24);
    expect([...p.options]).toEqual([0x94, 0x04, 0, 0]); // Router Alert (RFC 2113)
    expect([...p.payload]).toEqual([0xaa]);
    expect(p.checksumOk).toBe(true);
  });

  it('rejects malformed headers', () => {
    const base = LINUX_ECHO_REPLY;
    const mutate = (f: (b: Uint8Array) => void) => {
      const b = base.slice();
      f(b);
      return parseIPv4Packet(b);
    };
    expect(parseIPv4Packet(base.subarray(0, 19))).toBeNull(); // shorter than a header
    expect(parseIPv4Packet(hex(KNOWN_HEADER))).toBeNull(); // total length 115 > 20 bytes
    expect(mutate((b) => (b[0] = 0x65))).toBeNull(); // version 6
    expect(mutate((b) => (b[0] = 0x44))).toBeNull(); // IHL 4
    expect(mutate((b) => (b[0] = 0x4f))).toBeNull(); // IHL 15: 60 bytes > 41
    expect(mutate((b) => (b[3] = 19))).toBeNull(); // total length < header
    expect(mutate((b) => (b[3] = 0x2a))).toBeNull(); // total length past the bytes
    expect(parseIPv4Packet(new Uint8Array(0))).toBeNull();
  });
});

describe('emitIPv4Header / buildIPv4Packet', () => {
  it('reproduces the known header byte for byte', () => {
    const buf = new Uint8Array(20);
    const n = emitIPv4Header({ src: ip('192.168.0.1'), dst: ip('192.168.0.199'), protocol: 17, payloadLength: 95, dontFragment: true, ttl: 64 }, buf);
    expect(n).toBe(20);
    expect(buf).toEqual(hex(KNOWN_HEADER));
  });

  it('reproduces the Linux echo reply', () => {
    const pkt = buildIPv4Packet({ src: ip('127.0.0.1'), dst: ip('127.0.0.1'), protocol: 1, identification: 0x18c7, ttl: 64, payload: LINUX_ECHO_REPLY.subarray(20) });
    expect(pkt).toEqual(LINUX_ECHO_REPLY);
  });

  it('writes at an offset without touching the bytes around it', () => {
    const buf = new Uint8Array(24).fill(0xee);
    emitIPv4Header({ src: ip('192.168.0.1'), dst: ip('192.168.0.199'), protocol: 17, payloadLength: 95, dontFragment: true }, buf, 2);
    expect(buf.subarray(2, 22)).toEqual(hex(KNOWN_HEADER));
    expect([buf[0], buf[1], buf[22], buf[23]]).toEqual([0xee, 0xee, 0xee, 0xee]);
  });

  it('rejects what cannot be encoded', () => {
    const base = { src: ip('10.0.0.1'), dst: ip('10.0.0.2'), protocol: 17 };
    expect(() => emitIPv4Header({ ...base, payloadLength: 65516 }, new Uint8Array(20))).toThrow(RangeError);
    expect(() => emitIPv4Header({ ...base, payloadLength: 0, fragmentOffset: 3 }, new Uint8Array(20))).toThrow(RangeError);
    expect(() => emitIPv4Header({ ...base, payloadLength: 0, options: new Uint8Array(44) }, new Uint8Array(64))).toThrow(RangeError);
    expect(() => emitIPv4Header({ ...base, dst: ip('::1'), payloadLength: 0 }, new Uint8Array(20))).toThrow(RangeError);
    expect(() => emitIPv4Header({ ...base, payloadLength: 0 }, new Uint8Array(19))).toThrow(RangeError);
  });
});
