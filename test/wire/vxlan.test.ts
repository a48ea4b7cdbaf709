import { describe, expect, it } from 'vitest';
import { buildVxlan, emitVxlanHeader, parseVxlan, VXLAN_OVERHEAD_IPV4, VXLAN_OVERHEAD_IPV6 } from '../../src/wire/vxlan.js';
import { addVlanTag, removeVlanTag, vlanTci } from '../../src/wire/vlan.js';
import { hex } from '../support/frames.js';

// RFC 7348 section 5: I flag, VNI 42 (0x00002a); then an ARP broadcast's Ethernet header.
const INNER = hex('ffff ffff ffff 0200 00aa bbcc 0806 0001');
const PACKET = hex('0800 0000 0000 2a00 ffff ffff ffff 0200 00aa bbcc 0806 0001');

describe('VXLAN header', () => {
  it('parses the VNI and hands back the inner frame as a view', () => {
    const p = parseVxlan(PACKET)!;
    expect(p.vni).toBe(42);
    expect([...p.frame]).toEqual([...INNER]);
    expect(p.frame.buffer).toBe(PACKET.buffer);
  });
  it('emits what it parses, with the largest VNI too', () => {
    expect([...buildVxlan(42, INNER)]).toEqual([...PACKET]);
    const out = new Uint8Array(8);
    emitVxlanHeader(0xffffff, out);
    expect([...out]).toEqual([0x08, 0, 0, 0, 0xff, 0xff, 0xff, 0]);
    expect(() => emitVxlanHeader(0x1000000, out)).toThrow(RangeError);
  });
  it('refuses packets without the I flag or too short; ignores reserved bits', () => {
    const noI = PACKET.slice();
    noI[0] = 0;
    expect(parseVxlan(noI)).toBeNull();
    expect(parseVxlan(PACKET.subarray(0, 21))).toBeNull();
    const reserved = PACKET.slice();
    reserved[1] = 0xff;
    reserved[7] = 0xff;
    expect(parseVxlan(reserved)?.vni).toBe(42);
  });
  it('costs 50 bytes over IPv4 and 70 over IPv6, as Linux reduces the MTU', () => {
    expect([VXLAN_OVERHEAD_IPV4, VXLAN_OVERHEAD_IPV6]).toEqual([50, 70]);
  });
});

describe('802.1Q tags', () => {
  it('adds and removes a tag after the MAC addresses', () => {
    const tagged = addVlanTag(INNER, 0xa064);
    expect([...tagged]).toEqual([...hex('ffff ffff ffff 0200 00aa bbcc 8100 a064 0806 0001')]);
    expect(vlanTci(tagged)).toBe(0xa064);
    expect(vlanTci(INNER)).toBe(-1);
    expect([...removeVlanTag(tagged)]).toEqual([...INNER]);
  });
});
