import { describe, expect, it } from 'vitest';
import { parseIp, type IpAddress } from '../../src/wire/address.js';
import {
  buildEchoReply,
  buildEchoRequest,
  buildIcmpMessage,
  icmpChecksum,
  Icmpv6Type,
  parseEcho,
  parseIcmpHeader,
} from '../../src/wire/icmp.js';
import { hex } from '../support/frames.js';

const ip = (s: string): IpAddress => parseIp(s)!;
const LO6 = { src: ip('::1'), dst: ip('::1') };
const PAYLOAD = new TextEncoder().encode('tcpip-ts echo');

// Captured on Linux loopback, id 4242 seq 1 "tcpip-ts echo". The kernel
// answered our ICMPv4 request (so accepted its checksum) with the reply below,
// and computed both ICMPv6 checksums itself.
const V4_REQUEST = hex('0800 f980 4242 0001 7463 7069 702d 7473 2065 6368 6f');
const V4_REPLY = hex('0000 0181 4242 0001 7463 7069 702d 7473 2065 6368 6f');
const V6_REQUEST = hex('8000 812f 4242 0001 7463 7069 702d 7473 2065 6368 6f');
const V6_REPLY = hex('8100 802f 4242 0001 7463 7069 702d 7473 2065 6368 6f');

describe('buildEchoRequest / buildEchoReply', () => {
  it('matches the ICMPv4 messages seen on the wire', () => {
    expect(buildEchoRequest({ family: 4, id: 0x4242, seq: 1, payload: PAYLOAD })).toEqual(V4_REQUEST);
    expect(buildEchoReply({ family: 4, id: 0x4242, seq: 1, payload: PAYLOAD })).toEqual(V4_REPLY);
  });

  it('matches the kernel-checksummed ICMPv6 messages when given src and dst', () => {
    expect(buildEchoRequest({ family: 6, id: 0x4242, seq: 1, payload: PAYLOAD, ...LO6 })).toEqual(V6_REQUEST);
    expect(buildEchoReply({ family: 6, id: 0x4242, seq: 1, payload: PAYLOAD, ...LO6 })).toEqual(V6_REPLY);
  });

  it('leaves the ICMPv6 checksum 0 for the stack without src and dst', () => {
    const m = buildEchoRequest({ family: 6, id: 0x4242, seq: 1, payload: PAYLOAD });
    expect([m[2], m[3]]).toEqual([0, 0]);
    expect(m.subarray(4)).toEqual(V6_REQUEST.subarray(4));
  });

  it('builds an empty echo', () => {
    const m = buildEchoRequest({ family: 4, id: 1, seq: 2 });
    expect(m.length).toBe(8);
    expect(parseEcho(m)!.checksumOk).toBe(true);
  });
});

describe('parseEcho', () => {
  it('infers the family from the type', () => {
    expect(parseEcho(V4_REPLY)).toMatchObject({ family: 4, kind: 'reply', id: 0x4242, seq: 1, checksum: 0x0181, checksumOk: true });
    expect(parseEcho(V6_REQUEST)).toMatchObject({ family: 6, kind: 'request', id: 0x4242, seq: 1, checksumOk: null });
    expect(new TextDecoder().decode(parseEcho(V4_REQUEST)!.payload)).toBe('tcpip-ts echo');
  });

  it('verifies ICMPv6 checksums when given src and dst', () => {
    expect(parseEcho(V6_REPLY, LO6)!.checksumOk).toBe(true);
    expect(parseEcho(V6_REPLY, { src: ip('::2'), dst: ip('::1') })!.checksumOk).toBe(false);
  });

  it('reports a corrupted ICMPv4 checksum', () => {
    const bad = V4_REQUEST.slice();
    bad[9]! ^= 1;
    expect(parseEcho(bad)!.checksumOk).toBe(false);
  });

  it('returns null for other types, short input, or a family mismatch', () => {
    expect(parseEcho(hex('0300 0000 0000 0000'))).toBeNull(); // destination unreachable
    expect(parseEcho(V4_REPLY.subarray(0, 7))).toBeNull();
    expect(parseEcho(V4_REPLY, { family: 6 })).toBeNull();
    expect(parseEcho(V6_REPLY, { src: ip('127.0.0.1'), dst: ip('127.0.0.1') })).toBeNull();
  });
});

describe('generic ICMP messages', () => {
  it('parses the common header', () => {
    expect(parseIcmpHeader(V6_REPLY)).toMatchObject({ type: 129, code: 0, checksum: 0x802f });
    expect(parseIcmpHeader(hex('0300 00'))).toBeNull();
  });

  it('builds a neighbor solicitation whose checksum verifies (RFC 4861 section 4.3)', () => {
    const src = ip('fe80::1');
    const dst = ip('ff02::1:ff00:2');
    const body = new Uint8Array([0, 0, 0, 0, ...ip('fe80::2').bytes, 1, 1, 2, 0, 0, 0, 0, 1]);
    const ns = buildIcmpMessage({ family: 6, type: Icmpv6Type.NeighborSolicitation, body, src, dst });
    expect(ns[0]).toBe(135);
    expect(ns.length).toBe(32);
    expect(icmpChecksum(ns, 6, src, dst)).toBe(0);
    expect(() => icmpChecksum(ns, 6)).toThrow(RangeError);
  });
});
