import { describe, expect, it } from 'vitest';
import { parseIp, type IpAddress } from '../../src/wire/address.js';
import { pseudoHeaderSum } from '../../src/wire/checksum.js';
import { buildUdpDatagram, emitUdpDatagram, parseUdpDatagram } from '../../src/wire/udp.js';
import { hex } from '../support/frames.js';

const ip = (s: string): IpAddress => parseIp(s)!;
const LO = { src: ip('127.0.0.1'), dst: ip('127.0.0.1') };
const LO6 = { src: ip('::1'), dst: ip('::1') };

// Captured on Linux loopback: 127.0.0.1:52650 -> 127.0.0.1:5353 "udp-payload".
// The kernel left the checksum for offload: fe26 is the pseudo-header sum.
const LINUX_PARTIAL = hex('cdaa 14e9 0013 fe26 7564 702d 7061 796c 6f61 64');
// The same datagram with its full checksum (computed independently: 7c70).
const FULL = hex('cdaa 14e9 0013 7c70 7564 702d 7061 796c 6f61 64');

describe('parseUdpDatagram', () => {
  it('parses ports, length and payload', () => {
    const d = parseUdpDatagram(FULL, LO)!;
    expect(d.srcPort).toBe(52650);
    expect(d.dstPort).toBe(5353);
    expect(d.length).toBe(19);
    expect(d.checksum).toBe(0x7c70);
    expect(d.checksumOk).toBe(true);
    expect(new TextDecoder().decode(d.payload)).toBe('udp-payload');
  });

  it('does not accept a checksum left for offload', () => {
    expect(pseudoHeaderSum(LO.src, LO.dst, 17, 19)).toBe(0xfe26);
    expect(parseUdpDatagram(LINUX_PARTIAL, LO)!.checksumOk).toBe(false);
  });

  it('leaves checksumOk null without a pseudo header', () => {
    expect(parseUdpDatagram(LINUX_PARTIAL)!.checksumOk).toBeNull();
  });

  it('detects a checksum for the wrong addresses', () => {
    expect(parseUdpDatagram(FULL, { src: ip('127.0.0.2'), dst: ip('127.0.0.1') })!.checksumOk).toBe(false);
  });

  it('treats a zero checksum as none over IPv4 but invalid over IPv6', () => {
    const zero = FULL.slice();
    zero[6] = 0;
    zero[7] = 0;
    expect(parseUdpDatagram(zero, LO)!.checksumOk).toBe(true); // RFC 768
    expect(parseUdpDatagram(zero, LO6)!.checksumOk).toBe(false); // RFC 8200 section 8.1
  });

  it('takes the payload from the length field, ignoring trailing bytes', () => {
    const padded = new Uint8Array(30);
    padded.set(FULL);
    const d = parseUdpDatagram(padded, LO)!;
    expect(d.payload.length).toBe(11);
    expect(d.checksumOk).toBe(true);
  });

  it('rejects bad lengths', () => {
    expect(parseUdpDatagram(FULL.subarray(0, 7))).toBeNull();
    const short = FULL.slice();
    short[5] = 7; // below the header size
    expect(parseUdpDatagram(short)).toBeNull();
    const long = FULL.slice();
    long[5] = 20; // past the bytes
    expect(parseUdpDatagram(long)).toBeNull();
  });
});

describe('buildUdpDatagram / emitUdpDatagram', () => {
  it('reproduces the checksummed datagram', () => {
    const d = buildUdpDatagram({ srcPort: 52650, dstPort: 5353, payload: new TextEncoder().encode('udp-payload'), ...LO });
    expect(d).toEqual(FULL);
  });

  it('leaves the checksum 0 without addresses', () => {
    const d = buildUdpDatagram({ srcPort: 1, dstPort: 2, payload: hex('aa') });
    expect([...d]).toEqual([0, 1, 0, 2, 0, 9, 0, 0, 0xaa]);
  });

  it('sends a computed zero checksum as ffff (RFC 768)', () => {
    // Choose the payload word that brings the sum to ffff, so the checksum computes to 0.
    const probe = buildUdpDatagram({ srcPort: 1000, dstPort: 2000, payload: hex('0000'), ...LO6 });
    const word = (probe[6]! << 8) | probe[7]!;
    const d = buildUdpDatagram({ srcPort: 1000, dstPort: 2000, payload: new Uint8Array([word >> 8, word & 0xff]), ...LO6 });
    expect((d[6]! << 8) | d[7]!).toBe(0xffff);
    expect(parseUdpDatagram(d, LO6)!.checksumOk).toBe(true);
  });

  it('checksums over IPv6 and verifies', () => {
    const d = buildUdpDatagram({ srcPort: 5353, dstPort: 5353, payload: new Uint8Array(100).fill(7), src: ip('fe80::1'), dst: ip('ff02::fb') });
    expect(parseUdpDatagram(d, { src: ip('fe80::1'), dst: ip('ff02::fb') })!.checksumOk).toBe(true);
  });

  it('emits in place when the payload is already in the buffer', () => {
    const buf = new Uint8Array(8 + 11);
    buf.set(new TextEncoder().encode('udp-payload'), 8);
    const n = emitUdpDatagram({ srcPort: 52650, dstPort: 5353, payload: buf.subarray(8), ...LO }, buf);
    expect(n).toBe(19);
    expect(buf).toEqual(FULL);
  });

  it('rejects oversized payloads and small buffers', () => {
    expect(() => buildUdpDatagram({ srcPort: 1, dstPort: 2, payload: new Uint8Array(65528) })).toThrow(RangeError);
    expect(() => emitUdpDatagram({ srcPort: 1, dstPort: 2, payload: hex('aa') }, new Uint8Array(8))).toThrow(RangeError);
  });
});
