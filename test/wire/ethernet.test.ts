import { describe, expect, it } from 'vitest';
import { formatMac, parseMac } from '../../src/wire/address.js';
import { BROADCAST_MAC, buildEthernetFrame, emitEthernetHeader, EtherType, parseEthernetFrame } from '../../src/wire/ethernet.js';
import { hex } from '../support/frames.js';

// Broadcast ARP from 02:00:00:aa:bb:cc; the payload is the first bytes of an ARP request.
const ARP_FRAME = hex('ffff ffff ffff 0200 00aa bbcc 0806 0001 0800');
// The same, tagged for VLAN 100 with priority 5 (TCI a064).
const TAGGED = hex('ffff ffff ffff 0200 00aa bbcc 8100 a064 0806 0001 0800');

describe('parseEthernetFrame', () => {
  it('parses an untagged frame', () => {
    const f = parseEthernetFrame(ARP_FRAME)!;
    expect(formatMac(f.dst)).toBe('ff:ff:ff:ff:ff:ff');
    expect(formatMac(f.src)).toBe('02:00:00:aa:bb:cc');
    expect(f.etherType).toBe(EtherType.ARP);
    expect(f.headerLength).toBe(14);
    expect(f.vlanTci).toBeUndefined();
    expect([...f.payload]).toEqual([0, 1, 8, 0]);
  });

  it('parses one 802.1Q tag', () => {
    const f = parseEthernetFrame(TAGGED)!;
    expect(f.etherType).toBe(EtherType.ARP);
    expect(f.vlanTci).toBe(0xa064);
    expect(f.vlanTci! & 0x0fff).toBe(100);
    expect(f.headerLength).toBe(18);
    expect([...f.payload]).toEqual([0, 1, 8, 0]);
  });

  it('gives a payload view and MAC copies', () => {
    const bytes = ARP_FRAME.slice();
    const f = parseEthernetFrame(bytes)!;
    bytes[14] = 0x99;
    bytes[6] = 0x99;
    expect(f.payload[0]).toBe(0x99);
    expect(f.src[0]).toBe(0x02);
  });

  it('rejects short frames and 802.3 length fields', () => {
    expect(parseEthernetFrame(ARP_FRAME.subarray(0, 13))).toBeNull();
    expect(parseEthernetFrame(TAGGED.subarray(0, 17))).toBeNull();
    expect(parseEthernetFrame(hex('ffff ffff ffff 0200 00aa bbcc 0026 aaaa 03'))).toBeNull();
    expect(parseEthernetFrame(ARP_FRAME.subarray(0, 14))!.payload.length).toBe(0);
  });
});

describe('buildEthernetFrame / emitEthernetHeader', () => {
  it('reproduces both frames', () => {
    const src = parseMac('02:00:00:aa:bb:cc')!;
    expect(buildEthernetFrame({ dst: BROADCAST_MAC, src, etherType: EtherType.ARP }, hex('0001 0800'))).toEqual(ARP_FRAME);
    expect(buildEthernetFrame({ dst: BROADCAST_MAC, src, etherType: EtherType.ARP, vlanTci: 0xa064 }, hex('0001 0800'))).toEqual(TAGGED);
  });

  it('emits at an offset and checks its inputs', () => {
    const buf = new Uint8Array(16);
    expect(emitEthernetHeader({ dst: BROADCAST_MAC, src: parseMac('02-00-00-aa-bb-cc')!, etherType: 0x0806 }, buf, 2)).toBe(14);
    expect(buf.subarray(2)).toEqual(ARP_FRAME.subarray(0, 14));
    expect(() => emitEthernetHeader({ dst: BROADCAST_MAC, src: new Uint8Array(6), etherType: 0x0800 }, new Uint8Array(13))).toThrow(RangeError);
    expect(() => emitEthernetHeader({ dst: new Uint8Array(4), src: new Uint8Array(6), etherType: 0x0800 }, new Uint8Array(14))).toThrow(RangeError);
  });
});
