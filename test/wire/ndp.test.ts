import { describe, expect, it } from 'vitest';
import { formatIp, formatMac, parseIp, parseMac, type IpAddress } from '../../src/wire/address.js';
import {
  buildRouterAdvertisement, buildRouterSolicitation, parseRouterAdvertisement, parseRouterSolicitation, type RouterAdvertisement,
} from '../../src/wire/ndp.js';
import { hex } from '../support/frames.js';

const ip = (s: string): IpAddress => parseIp(s)!;
const RA_ADDRS = { src: ip('fe80::1'), dst: ip('ff02::1') };
const RS_ADDRS = { src: ip('fe80::aa'), dst: ip('ff02::2') };

// fe80::1 → ff02::1: hop limit 64, no M/O, router lifetime 1800 s; source
// link-layer 02:00:00:00:00:02, MTU 1500, prefix fd00::/64 on-link and
// autonomous (valid 86400 s, preferred 14400 s), RDNSS fd00::3 for 1800 s.
// Checksum 0x3f69 computed independently over the RFC 8200 pseudo header.
const RA = hex(`
  86 00 3f69  40 00 0708  00000000  00000000
  01 01 0200 0000 0002
  05 01 0000 000005dc
  03 04 40 c0 00015180 00003840 00000000
  fd00 0000 0000 0000 0000 0000 0000 0000
  19 03 0000 00000708
  fd00 0000 0000 0000 0000 0000 0000 0003`);

// fe80::aa → ff02::2 with source link-layer 02:00:00:00:00:aa.
const RS = hex(`
  85 00 78da 00000000
  01 01 0200 0000 00aa`);

const ADVERTISEMENT: RouterAdvertisement = {
  curHopLimit: 64,
  managed: false,
  other: false,
  routerLifetime: 1800,
  reachableTime: 0,
  retransTimer: 0,
  sourceLinkLayerAddress: parseMac('02:00:00:00:00:02')!,
  mtu: 1500,
  prefixes: [{ prefix: ip('fd00::'), prefixLength: 64, onLink: true, autonomous: true, validLifetime: 86400, preferredLifetime: 14400 }],
  dnsServers: { lifetime: 1800, servers: [ip('fd00::3')] },
};

describe('router advertisements (RFC 4861 section 4.2, RFC 8106)', () => {
  it('emits the literal bytes, checksum included', () => {
    expect(buildRouterAdvertisement(ADVERTISEMENT, RA_ADDRS)).toEqual(RA);
  });

  it('parses them back, checking the checksum against the addresses', () => {
    const ra = parseRouterAdvertisement(RA, RA_ADDRS)!;
    expect(ra).toMatchObject({ curHopLimit: 64, managed: false, other: false, routerLifetime: 1800, reachableTime: 0, retransTimer: 0, mtu: 1500 });
    expect(formatMac(ra.sourceLinkLayerAddress!)).toBe('02:00:00:00:00:02');
    expect(ra.prefixes).toHaveLength(1);
    expect(formatIp(ra.prefixes[0]!.prefix)).toBe('fd00::');
    expect(ra.prefixes[0]).toMatchObject({ prefixLength: 64, onLink: true, autonomous: true, validLifetime: 86400, preferredLifetime: 14400 });
    expect(ra.dnsServers!.lifetime).toBe(1800);
    expect(ra.dnsServers!.servers.map(formatIp)).toEqual(['fd00::3']);
    expect(parseRouterAdvertisement(RA, { src: ip('fe80::2'), dst: ip('ff02::1') })).toBeNull();
  });

  it('sets the M and O flags and omits absent options', () => {
    const bare = buildRouterAdvertisement({ ...ADVERTISEMENT, managed: true, other: true, sourceLinkLayerAddress: undefined, mtu: undefined, prefixes: [], dnsServers: undefined }, RA_ADDRS);
    expect(bare).toHaveLength(16);
    expect(bare[5]).toBe(0xc0);
    expect(parseRouterAdvertisement(bare, RA_ADDRS)).toMatchObject({ managed: true, other: true, prefixes: [] });
  });

  it('rejects malformed messages: other types, a zero-length option, an option past the end, a short RDNSS', () => {
    expect(parseRouterAdvertisement(RS)).toBeNull();
    const zero = RA.slice(0, 24);
    zero[17] = 0;
    expect(parseRouterAdvertisement(zero)).toBeNull();
    expect(parseRouterAdvertisement(RA.slice(0, RA.length - 8))).toBeNull();
    const shortRdnss = hex('86 00 0000 40 00 0708 00000000 00000000 19 01 0000 00000708');
    expect(parseRouterAdvertisement(shortRdnss)).toBeNull();
  });

  it('skips unknown options', () => {
    const withUnknown = hex('86 00 0000 40 00 0708 00000000 00000000 fe 01 0000 0000 0000');
    expect(parseRouterAdvertisement(withUnknown)).toMatchObject({ routerLifetime: 1800, prefixes: [] });
  });
});

describe('router solicitations (RFC 4861 section 4.1)', () => {
  it('emits and parses the literal bytes', () => {
    expect(buildRouterSolicitation({ sourceLinkLayerAddress: parseMac('02:00:00:00:00:aa')! }, RS_ADDRS)).toEqual(RS);
    const rs = parseRouterSolicitation(RS, RS_ADDRS)!;
    expect(formatMac(rs.sourceLinkLayerAddress!)).toBe('02:00:00:00:00:aa');
    expect(parseRouterSolicitation(RS.slice(0, 8))).toEqual({}); // from ::, without the option (RFC 4861 section 4.1)
  });

  it('rejects a bad checksum, a nonzero code and a short message', () => {
    const bad = RS.slice();
    bad[3] ^= 1;
    expect(parseRouterSolicitation(bad, RS_ADDRS)).toBeNull();
    const code = RS.slice();
    code[1] = 1;
    expect(parseRouterSolicitation(code)).toBeNull();
    expect(parseRouterSolicitation(RS.slice(0, 7))).toBeNull();
  });
});
