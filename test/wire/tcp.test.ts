import { describe, expect, it } from 'vitest';
import { parseIp, type IpAddress } from '../../src/wire/address.js';
import {
  buildTcpSegment,
  emitTcpSegment,
  encodeTcpOptions,
  parseTcpOptions,
  parseTcpSegment,
  TcpFlags,
} from '../../src/wire/tcp.js';
import { hex } from '../support/frames.js';

const ip = (s: string): IpAddress => parseIp(s)!;
const LO = { src: ip('127.0.0.1'), dst: ip('127.0.0.1') };
const LO6 = { src: ip('::1'), dst: ip('::1') };

// Captured on Linux loopback, a SYN 127.0.0.1:57396 -> :41449 with the options
// Linux sends: MSS 65495, SACK-permitted, timestamps, NOP, window scale 10.
// Its checksum fe30 is the pseudo-header sum left for offload.
const LINUX_SYN = hex(`
  e034 a1e9 aaa8 0b3a 0000 0000 a002 ffd7 fe30 0000
  0204 ffd7 0402 080a 1999 e127 0000 0000 0103 030a`);
const SYN_FULL_CHECKSUM = 0x1d3d; // computed independently

// Captured on Linux loopback, the SYN-ACK of an IPv6 connection ::1 -> ::1.
const LINUX_SYN_ACK_V6 = hex(`
  922d 9dae be66 9294 ff2c 8854 a012 ffb8 0030 0000
  0204 ffc4 0402 080a c9a2 47d3 fea4 79b5 0103 030a`);
const SYN_ACK_V6_FULL_CHECKSUM = 0xbbf8;

const withChecksum = (seg: Uint8Array, sum: number) => {
  const out = seg.slice();
  out[16] = sum >> 8;
  out[17] = sum & 0xff;
  return out;
};

describe('parseTcpSegment', () => {
  it('parses the Linux SYN and its options', () => {
    const s = parseTcpSegment(LINUX_SYN, LO)!;
    expect(s.srcPort).toBe(57396);
    expect(s.dstPort).toBe(41449);
    expect(s.seqNumber).toBe(0xaaa80b3a);
    expect(s.ackNumber).toBe(0);
    expect(s.headerLength).toBe(40);
    expect(s.flags).toBe(TcpFlags.SYN);
    expect(s.window).toBe(65495);
    expect(s.options).toEqual({
      mss: 65495,
      sackPermitted: true,
      timestamps: { value: 0x1999e127, echo: 0 },
      windowScale: 10,
      sackBlocks: [],
      unknown: [],
    });
    expect(s.payload.length).toBe(0);
    expect(s.checksumOk).toBe(false); // fe30 is only the pseudo-header sum
    expect(parseTcpSegment(withChecksum(LINUX_SYN, SYN_FULL_CHECKSUM), LO)!.checksumOk).toBe(true);
  });

  it('parses the Linux IPv6 SYN-ACK', () => {
    const s = parseTcpSegment(withChecksum(LINUX_SYN_ACK_V6, SYN_ACK_V6_FULL_CHECKSUM), LO6)!;
    expect(s.flags).toBe(TcpFlags.SYN | TcpFlags.ACK);
    expect(s.ackNumber).toBe(0xff2c8854);
    expect(s.options.mss).toBe(65476);
    expect(s.options.timestamps).toEqual({ value: 0xc9a247d3, echo: 0xfea479b5 });
    expect(s.checksumOk).toBe(true);
    expect(parseTcpSegment(LINUX_SYN_ACK_V6)!.checksumOk).toBeNull();
  });

  it('carries payload after the options', () => {
    const seg = buildTcpSegment({ srcPort: 1, dstPort: 2, seqNumber: 3, ackNumber: 4, flags: TcpFlags.ACK | TcpFlags.PSH, payload: hex('68 69'), ...LO });
    const s = parseTcpSegment(seg, LO)!;
    expect([...s.payload]).toEqual([0x68, 0x69]);
    expect(s.checksumOk).toBe(true);
  });

  it('rejects bad data offsets', () => {
    expect(parseTcpSegment(LINUX_SYN.subarray(0, 19))).toBeNull();
    const small = LINUX_SYN.slice();
    small[12] = 0x40; // 16 bytes
    expect(parseTcpSegment(small)).toBeNull();
    expect(parseTcpSegment(LINUX_SYN.subarray(0, 36))).toBeNull(); // offset 40 > 36 bytes
  });

  it('rejects a segment whose options are malformed', () => {
    const bad = LINUX_SYN.slice();
    bad[21] = 3; // MSS with length 3
    expect(parseTcpSegment(bad)).toBeNull();
  });
});

describe('parseTcpOptions', () => {
  it('skips NOPs and stops at End of Option List, ignoring what follows', () => {
    expect(parseTcpOptions(hex('0101 0303 0700 0204 05b4 ffff'))).toEqual({ windowScale: 7, sackPermitted: false, sackBlocks: [], unknown: [] });
  });

  it('parses SACK blocks (RFC 2018)', () => {
    expect(parseTcpOptions(hex('0101 0512 0000 0064 0000 00c8 0000 012c 0000 0190'))!.sackBlocks).toEqual([
      [100, 200],
      [300, 400],
    ]);
  });

  it('keeps unknown options and lets the last duplicate win', () => {
    const o = parseTcpOptions(hex('1e04 abcd 0204 0218 0204 05b4 fe02'))!;
    expect(o.mss).toBe(1460);
    expect(o.unknown.map((u) => [u.kind, [...u.data]])).toEqual([
      [30, [0xab, 0xcd]],
      [254, []],
    ]);
  });

  it('rejects malformed options', () => {
    expect(parseTcpOptions(hex('02'))).toBeNull(); // kind without length
    expect(parseTcpOptions(hex('1e01'))).toBeNull(); // length below 2
    expect(parseTcpOptions(hex('1e00'))).toBeNull(); // length 0: would never advance
    expect(parseTcpOptions(hex('1e05 0000'))).toBeNull(); // runs past the end
    expect(parseTcpOptions(hex('0803 0000'))).toBeNull(); // timestamps must be 10
    expect(parseTcpOptions(hex('050b 0000 0000 0000 0000 00'))).toBeNull(); // SACK not 2 + 8n
  });
});

describe('encodeTcpOptions / buildTcpSegment', () => {
  it('lays out SYN options as Linux does', () => {
    const opts = encodeTcpOptions({ mss: 65495, sackPermitted: true, timestamps: { value: 0x1999e127, echo: 0 }, windowScale: 10 });
    expect(opts).toEqual(LINUX_SYN.subarray(20));
  });

  it('reproduces the Linux SYN with a full checksum', () => {
    const seg = buildTcpSegment({
      srcPort: 57396,
      dstPort: 41449,
      seqNumber: 0xaaa80b3a,
      flags: TcpFlags.SYN,
      window: 65495,
      options: { mss: 65495, sackPermitted: true, timestamps: { value: 0x1999e127, echo: 0 }, windowScale: 10 },
      ...LO,
    });
    expect(seg).toEqual(withChecksum(LINUX_SYN, SYN_FULL_CHECKSUM));
  });

  it('reproduces the IPv6 SYN-ACK', () => {
    const seg = buildTcpSegment({
      srcPort: 0x922d,
      dstPort: 0x9dae,
      seqNumber: 0xbe669294,
      ackNumber: 0xff2c8854,
      flags: TcpFlags.SYN | TcpFlags.ACK,
      window: 0xffb8,
      options: { mss: 65476, sackPermitted: true, timestamps: { value: 0xc9a247d3, echo: 0xfea479b5 }, windowScale: 10 },
      ...LO6,
    });
    expect(seg).toEqual(withChecksum(LINUX_SYN_ACK_V6, SYN_ACK_V6_FULL_CHECKSUM));
  });

  it('NOP-aligns lone options and pads to 4 bytes', () => {
    expect(encodeTcpOptions({ sackPermitted: true })).toEqual(hex('0101 0402'));
    expect(encodeTcpOptions({ timestamps: { value: 1, echo: 2 } })).toEqual(hex('0101 080a 0000 0001 0000 0002'));
    expect(encodeTcpOptions({ unknown: [{ kind: 254, data: hex('aa') }] })).toEqual(hex('fe03 aa00'));
    expect(encodeTcpOptions({})).toEqual(new Uint8Array(0));
  });

  it('round-trips SACK blocks', () => {
    const seg = buildTcpSegment({ srcPort: 1, dstPort: 2, seqNumber: 0, flags: TcpFlags.ACK, options: { sackBlocks: [[1, 2], [0xfffffff0, 0x10]] } });
    expect(parseTcpSegment(seg)!.options.sackBlocks).toEqual([[1, 2], [0xfffffff0, 0x10]]);
  });

  it('uses raw options as given, zero-padded', () => {
    const seg = buildTcpSegment({ srcPort: 1, dstPort: 2, seqNumber: 0, flags: TcpFlags.SYN, rawOptions: hex('01 01 01 00 ff ff') });
    expect(seg[12]).toBe(0x70); // 28 bytes
    expect([...seg.subarray(20)]).toEqual([1, 1, 1, 0, 0xff, 0xff, 0, 0]);
    expect(parseTcpSegment(seg)!.options.unknown).toEqual([]);
  });

  it('leaves the checksum 0 without addresses and emits at an offset', () => {
    const buf = new Uint8Array(24).fill(0xee);
    const n = emitTcpSegment({ srcPort: 80, dstPort: 1234, seqNumber: 1, flags: TcpFlags.RST }, buf, 2);
    expect(n).toBe(20);
    expect([buf[18], buf[19]]).toEqual([0, 0]);
    expect([buf[0], buf[1], buf[22], buf[23]]).toEqual([0xee, 0xee, 0xee, 0xee]);
  });

  it('rejects options over 40 bytes', () => {
    expect(() => encodeTcpOptions({ mss: 1, timestamps: { value: 0, echo: 0 }, sackBlocks: [[0, 1], [2, 3], [4, 5]] })).toThrow(RangeError);
  });
});
