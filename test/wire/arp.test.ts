import { describe, expect, it } from 'vitest';
import { formatIp, formatMac, parseIp, parseMac, type IpAddress } from '../../src/wire/address.js';
import { ArpOperation, buildArpPacket, emitArpPacket, parseArpPacket } from '../../src/wire/arp.js';
import { hex } from '../support/frames.js';

const ip = (s: string): IpAddress => parseIp(s)!;

// Who has 192.168.1.1? Tell 192.168.1.100 (at 02:00:00:aa:bb:cc), RFC 826 layout.
const REQUEST = hex(`
  0001 0800 06 04 0001
  0200 00aa bbcc c0a8 0164
  0000 0000 0000 c0a8 0101`);
// 192.168.1.1 is at 02:00:00:11:22:33.
const REPLY = hex(`
  0001 0800 06 04 0002
  0200 0011 2233 c0a8 0101
  0200 00aa bbcc c0a8 0164`);

describe('parseArpPacket', () => {
  it('parses a request', () => {
    const p = parseArpPacket(REQUEST)!;
    expect(p.operation).toBe(ArpOperation.Request);
    expect(formatMac(p.senderMac)).toBe('02:00:00:aa:bb:cc');
    expect(formatIp(p.senderIp)).toBe('192.168.1.100');
    expect(formatMac(p.targetMac)).toBe('00:00:00:00:00:00');
    expect(formatIp(p.targetIp)).toBe('192.168.1.1');
  });

  it('parses a reply padded to the Ethernet minimum', () => {
    const padded = new Uint8Array(46);
    padded.set(REPLY);
    const p = parseArpPacket(padded)!;
    expect(p.operation).toBe(ArpOperation.Reply);
    expect(formatMac(p.senderMac)).toBe('02:00:00:11:22:33');
    expect(formatIp(p.targetIp)).toBe('192.168.1.100');
  });

  it('copies addresses out of the frame', () => {
    const bytes = REQUEST.slice();
    const p = parseArpPacket(bytes)!;
    bytes.fill(0);
    expect(formatIp(p.senderIp)).toBe('192.168.1.100');
  });

  it('rejects other hardware, protocols, lengths and operations', () => {
    const mutate = (at: number, v: number) => {
      const b = REQUEST.slice();
      b[at] = v;
      return parseArpPacket(b);
    };
    expect(parseArpPacket(REQUEST.subarray(0, 27))).toBeNull();
    expect(mutate(1, 6)).toBeNull(); // IEEE 802 hardware
    expect(mutate(2, 0x86)).toBeNull(); // protocol 0x8600
    expect(mutate(4, 8)).toBeNull(); // hardware length
    expect(mutate(5, 16)).toBeNull(); // protocol length
    expect(mutate(7, 3)).toBeNull(); // RARP request
    expect(mutate(7, 0)).toBeNull();
  });
});

describe('buildArpPacket / emitArpPacket', () => {
  it('reproduces the request and reply', () => {
    expect(
      buildArpPacket({ operation: 1, senderMac: parseMac('02:00:00:aa:bb:cc')!, senderIp: ip('192.168.1.100'), targetMac: new Uint8Array(6), targetIp: ip('192.168.1.1') }),
    ).toEqual(REQUEST);
    expect(buildArpPacket(parseArpPacket(REPLY)!)).toEqual(REPLY);
  });

  it('emits at an offset and rejects bad input', () => {
    const buf = new Uint8Array(30);
    expect(emitArpPacket(parseArpPacket(REPLY)!, buf, 2)).toBe(28);
    expect(buf.subarray(2)).toEqual(REPLY);
    const p = parseArpPacket(REPLY)!;
    expect(() => emitArpPacket(p, new Uint8Array(27))).toThrow(RangeError);
    expect(() => buildArpPacket({ ...p, senderIp: ip('::1') })).toThrow(RangeError);
    expect(() => buildArpPacket({ ...p, senderMac: new Uint8Array(5) })).toThrow(RangeError);
  });
});
