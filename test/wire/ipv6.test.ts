import { describe, expect, it } from 'vitest';
import { formatIp, parseIp, type IpAddress } from '../../src/wire/address.js';
import {
  buildIPv6ExtensionHeader,
  buildIPv6FragmentHeader,
  buildIPv6Packet,
  emitIPv6Header,
  IpProtocol,
  parseIPv6Packet,
} from '../../src/wire/ipv6.js';
import { hex } from '../support/frames.js';

const ip = (s: string): IpAddress => parseIp(s)!;

// Captured on Linux loopback: ICMPv6 echo request ::1 -> ::1 (flow label 7f5d3,
// checksum 812f computed by the kernel).
const LINUX_ECHO_REQUEST = hex(`
  6007 f5d3 0015 3a40
  0000 0000 0000 0000 0000 0000 0000 0001
  0000 0000 0000 0000 0000 0000 0000 0001
  8000 812f 4242 0001 7463 7069 702d 7473 2065 6368 6f`);

// Hand-assembled: Hop-by-Hop (PadN) -> Fragment (atomic) -> UDP, 2001:db8::1 -> 2001:db8::2.
const EXTENSION_CHAIN = hex(`
  6000 0000 001c 0040
  2001 0db8 0000 0000 0000 0000 0000 0001
  2001 0db8 0000 0000 0000 0000 0000 0002
  2c00 0104 0000 0000
  1100 0000 1234 5678
  04d2 0035 000c 0000 dead beef`);

describe('parseIPv6Packet', () => {
  it('parses a packet captured from Linux', () => {
    const p = parseIPv6Packet(LINUX_ECHO_REQUEST)!;
    expect(p.trafficClass).toBe(0);
    expect(p.flowLabel).toBe(0x7f5d3);
    expect(p.payloadLength).toBe(0x15);
    expect(p.nextHeader).toBe(IpProtocol.ICMPv6);
    expect(p.hopLimit).toBe(64);
    expect(formatIp(p.src)).toBe('::1');
    expect(formatIp(p.dst)).toBe('::1');
    expect(p.extensionHeaders).toEqual([]);
    expect(p.upperProtocol).toBe(IpProtocol.ICMPv6);
    expect(p.upperPayload.length).toBe(0x15);
    expect(p.upperPayload[0]).toBe(128);
  });

  it('walks an extension header chain to the upper layer', () => {
    const p = parseIPv6Packet(EXTENSION_CHAIN)!;
    expect(p.nextHeader).toBe(IpProtocol.HopByHop);
    expect(p.extensionHeaders.map((h) => [h.type, h.data.length])).toEqual([
      [IpProtocol.HopByHop, 8],
      [IpProtocol.IPv6Fragment, 8],
    ]);
    expect(p.fragment).toEqual({ offset: 0, moreFragments: false, identification: 0x12345678 });
    expect(p.upperProtocol).toBe(IpProtocol.UDP);
    expect([...p.upperPayload.subarray(0, 4)]).toEqual([0x04, 0xd2, 0x00, 0x35]);
    expect(p.upperPayload.length).toBe(12);
  });

  it('stops at a non-first fragment: the rest is data, not headers', () => {
    const pkt = buildIPv6Packet({
      src: ip('2001:db8::1'),
      dst: ip('2001:db8::2'),
      nextHeader: IpProtocol.IPv6Fragment,
      // The data happens to look like a Hop-by-Hop header; it must not be parsed as one.
      payload: new Uint8Array([...buildIPv6FragmentHeader(IpProtocol.HopByHop, 1480, true, 7), 0x3b, 0, 0, 0, 0, 0, 0, 0]),
    });
    expect(pkt[40 + 2]).toBe(0x05);
    expect(pkt[40 + 3]).toBe(0xc9); // 1480 | M
    const p = parseIPv6Packet(pkt)!;
    expect(p.fragment).toEqual({ offset: 1480, moreFragments: true, identification: 7 });
    expect(p.extensionHeaders.length).toBe(1);
    expect(p.upperProtocol).toBe(IpProtocol.HopByHop);
    expect(p.upperPayload.length).toBe(8);
  });

  it('treats No Next Header and unknown protocols as the end of the chain', () => {
    const pkt = buildIPv6Packet({ src: ip('::1'), dst: ip('::1'), nextHeader: IpProtocol.IPv6DestOpts, payload: buildIPv6ExtensionHeader(IpProtocol.IPv6NoNext) });
    const p = parseIPv6Packet(pkt)!;
    expect(p.upperProtocol).toBe(59);
    expect(p.upperPayload.length).toBe(0);
  });

  it('ignores bytes past the payload length', () => {
    const padded = new Uint8Array(LINUX_ECHO_REQUEST.length + 7);
    padded.set(LINUX_ECHO_REQUEST);
    expect(parseIPv6Packet(padded)!.payload.length).toBe(0x15);
  });

  it('rejects malformed packets', () => {
    const mutate = (base: Uint8Array, f: (b: Uint8Array) => void) => {
      const b = base.slice();
      f(b);
      return parseIPv6Packet(b);
    };
    expect(parseIPv6Packet(LINUX_ECHO_REQUEST.subarray(0, 39))).toBeNull();
    expect(mutate(LINUX_ECHO_REQUEST, (b) => (b[0] = 0x40))).toBeNull(); // version 4
    expect(mutate(LINUX_ECHO_REQUEST, (b) => (b[5] = 0x16))).toBeNull(); // payload length past the bytes
    // Hop-by-Hop length 3 (32 bytes) runs past the 28-byte payload.
    expect(mutate(EXTENSION_CHAIN, (b) => (b[41] = 3))).toBeNull();
    // Fragment header cut short by the payload length.
    expect(parseIPv6Packet(new Uint8Array([...EXTENSION_CHAIN.subarray(0, 4), 0x00, 0x0c, ...EXTENSION_CHAIN.subarray(6, 52)]))).toBeNull();
    // Hop-by-Hop after another header (RFC 8200 section 4.1).
    expect(mutate(EXTENSION_CHAIN, (b) => (b[48] = IpProtocol.HopByHop))).toBeNull();
  });
});

describe('emitIPv6Header / builders', () => {
  it('reproduces the Linux packet', () => {
    const pkt = buildIPv6Packet({ src: ip('::1'), dst: ip('::1'), nextHeader: 58, hopLimit: 64, flowLabel: 0x7f5d3, payload: LINUX_ECHO_REQUEST.subarray(40) });
    expect(pkt).toEqual(LINUX_ECHO_REQUEST);
  });

  it('writes traffic class and flow label across the first word', () => {
    const buf = new Uint8Array(40);
    emitIPv6Header({ src: ip('::'), dst: ip('::'), nextHeader: 17, payloadLength: 0, trafficClass: 0xb8, flowLabel: 0xfffff }, buf);
    expect([...buf.subarray(0, 4)]).toEqual([0x6b, 0x8f, 0xff, 0xff]);
    const p = parseIPv6Packet(buf)!;
    expect(p.trafficClass).toBe(0xb8);
    expect(p.flowLabel).toBe(0xfffff);
  });

  it('pads extension headers to 8 bytes with Pad1 or PadN (RFC 8200 section 4.2)', () => {
    expect(buildIPv6ExtensionHeader(44)).toEqual(hex('2c00 0104 0000 0000'));
    expect(buildIPv6ExtensionHeader(17, hex('1e03 aabbcc'))).toEqual(hex('1100 1e03 aabb cc00')); // Pad1
    expect(buildIPv6ExtensionHeader(17, hex('1e06 0102 0304 0506'))).toEqual(hex('1101 1e06 0102 0304 0506 0104 0000 0000'));
  });

  it('builds the chain parsed above', () => {
    const payload = new Uint8Array([...buildIPv6ExtensionHeader(44), ...buildIPv6FragmentHeader(17, 0, false, 0x12345678), ...hex('04d2 0035 000c 0000 dead beef')]);
    const pkt = buildIPv6Packet({ src: ip('2001:db8::1'), dst: ip('2001:db8::2'), nextHeader: 0, payload });
    expect(pkt).toEqual(EXTENSION_CHAIN);
  });

  it('rejects IPv4 addresses and bad fragment offsets', () => {
    expect(() => emitIPv6Header({ src: ip('10.0.0.1'), dst: ip('::1'), nextHeader: 17, payloadLength: 0 }, new Uint8Array(40))).toThrow(RangeError);
    expect(() => buildIPv6FragmentHeader(17, 12, false, 0)).toThrow(RangeError);
  });
});
