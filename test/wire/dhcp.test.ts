import { describe, expect, it } from 'vitest';
import {
  BootpOp,
  buildDhcpMessage,
  DHCP,
  dhcpMessageLength,
  DhcpMessageType,
  DhcpOption,
  emitDhcpMessage,
  parseDhcpMessage,
} from '../../src/wire/dhcp.js';
import { hex, Rng } from '../support/frames.js';

const zeros = (n: number) => '00'.repeat(n);

/** The fixed header of a client request from 52:54:00:12:34:56 with the given xid, secs and flags. */
const requestHeader = (xid: string, secsFlags = '0000 0000') => `
  01 01 06 00  ${xid}  ${secsFlags}
  00000000 00000000 00000000 00000000
  525400123456 ${zeros(10)}
  ${zeros(64)} ${zeros(128)}
  63825363`;

// busybox udhcpc 1.35 `-x hostname:sandbox`, captured with tcpdump (UDP
// payload): message type, max message size 576, its parameter request list,
// hostname, vendor class, client id (type 1 + MAC), end, zero padding to the
// BOOTP minimum of 300 bytes.
const UDHCPC_DISCOVER = hex(`${requestHeader('9d22ad64')}
  35 01 01
  39 02 0240
  37 07 01 03 06 0c 0f 1c 2a
  0c 07 73616e64626f78
  3c 0c 756468637020312e33352e30
  3d 07 01 525400123456
  ff ${zeros(11)}`);

// ISC dhclient 4.4 as it starts with a remembered lease: no client id, the
// address it had (option 50), its hostname and its longer request list
// (which includes the interface MTU, 26), with the broadcast flag set.
const DHCLIENT_DISCOVER = hex(`${requestHeader('3903f326', '0004 8000')}
  35 01 01
  32 04 0a00020f
  0c 07 73616e64626f78
  37 0d 01 1c 02 03 0f 06 77 0c 2c 2f 1a 79 2a
  ff ${zeros(36)}`);

const CHADDR = hex('525400123456');

describe('parseDhcpMessage', () => {
  it('parses a DISCOVER from busybox udhcpc', () => {
    expect(UDHCPC_DISCOVER.length).toBe(300);
    const m = parseDhcpMessage(UDHCPC_DISCOVER)!;
    expect(m).not.toBeNull();
    expect(m).toMatchObject({
      op: BootpOp.Request, htype: 1, hlen: 6, hops: 0, xid: 0x9d22ad64, secs: 0, flags: 0,
      ciaddr: '0.0.0.0', yiaddr: '0.0.0.0', siaddr: '0.0.0.0', giaddr: '0.0.0.0', sname: '', file: '',
    });
    expect(m.chaddr).toEqual(CHADDR);
    expect(m.options).toEqual({
      messageType: DhcpMessageType.Discover,
      maxMessageSize: 576,
      parameterRequestList: [1, 3, 6, 12, 15, 28, 42],
      hostname: 'sandbox',
      vendorClassId: 'udhcp 1.35.0',
      clientId: hex('01525400123456'),
    });
    expect([...m.rawOptions.keys()]).toEqual([53, 57, 55, 12, 60, 61]);
  });

  it('parses a DISCOVER from ISC dhclient: requested address, broadcast flag, no client id', () => {
    const m = parseDhcpMessage(DHCLIENT_DISCOVER)!;
    expect(m.xid).toBe(0x3903f326);
    expect(m.secs).toBe(4);
    expect(m.flags & DHCP.BROADCAST_FLAG).toBe(DHCP.BROADCAST_FLAG);
    expect(m.options.requestedAddress).toBe('10.0.2.15');
    expect(m.options.clientId).toBeUndefined();
    expect(m.options.parameterRequestList).toContain(DhcpOption.InterfaceMtu);
  });

  it('concatenates repeated options (RFC 3396) and reads overloaded file and sname fields (option 52)', () => {
    // Two instances of option 6 in the options field; the file field carries
    // the router, the sname field the lease time, in that order.
    const file = hex('03 04 0a000202 ff').reduce((s, b) => s + b.toString(16).padStart(2, '0'), '');
    const sname = hex('33 04 00000e10 ff').reduce((s, b) => s + b.toString(16).padStart(2, '0'), '');
    const bytes = hex(`
      02 01 06 00  00000001  0000 0000
      00000000 0a00020f 00000000 00000000
      525400123456 ${zeros(10)}
      ${sname}${zeros(64 - 7)} ${file}${zeros(128 - 7)}
      63825363
      35 01 05
      34 01 03
      06 04 0a000203
      06 04 08080808
      ff`);
    const m = parseDhcpMessage(bytes)!;
    expect(m.options.messageType).toBe(DhcpMessageType.Ack);
    expect(m.options.dnsServers).toEqual(['10.0.2.3', '8.8.8.8']);
    expect(m.options.routers).toEqual(['10.0.2.2']);
    expect(m.options.leaseTime).toBe(3600);
    expect(m.sname).toBe('');
    expect(m.file).toBe('');
  });

  it('reads sname and file as text when not overloaded, and accepts options without an end option', () => {
    const bytes = hex(`
      02 01 06 00  00000002  0000 0000
      00000000 00000000 0a000202 00000000
      525400123456 ${zeros(10)}
      ${'62 6f 6f 74'.replace(/ /g, '')}${zeros(60)} ${'70 78 65'.replace(/ /g, '')}${zeros(125)}
      63825363
      35 01 02`);
    const m = parseDhcpMessage(bytes)!;
    expect(m.sname).toBe('boot');
    expect(m.file).toBe('pxe');
    expect(m.siaddr).toBe('10.0.2.2');
    expect(m.options.messageType).toBe(DhcpMessageType.Offer);
  });

  it('returns null for malformed messages', () => {
    const base = UDHCPC_DISCOVER;
    // Every truncation inside the header, and inside an option.
    for (let n = 0; n < DHCP.OPTIONS; n++) expect(parseDhcpMessage(base.subarray(0, n))).toBeNull();
    expect(parseDhcpMessage(base.subarray(0, DHCP.OPTIONS + 4))).toBeNull(); // 57's value cut short
    const bad = (edit: (b: Uint8Array) => void) => {
      const b = base.slice();
      edit(b);
      return parseDhcpMessage(b);
    };
    expect(bad((b) => (b[DHCP.COOKIE + 3] = 0x64))).toBeNull(); // no magic cookie: plain BOOTP
    expect(bad((b) => (b[DHCP.HLEN] = 17))).toBeNull();
    expect(bad((b) => (b[DHCP.OPTIONS + 1] = 2))).toBeNull(); // message type of 2 bytes
    expect(bad((b) => (b[DHCP.OPTIONS + 4] = 3))).toBeNull(); // max message size of 3 bytes
    const opt = (text: string) => hex(`${requestHeader('00000001')} ${text}`);
    expect(parseDhcpMessage(opt('35 01 01 36 03 0a0002'))).toBeNull(); // server id of 3 bytes
    expect(parseDhcpMessage(opt('35 01 01 03 05 0a00020200'))).toBeNull(); // router list not a multiple of 4
    expect(parseDhcpMessage(opt('35 01 01 34 01 04 ff'))).toBeNull(); // overload value 4
    expect(parseDhcpMessage(opt('35 01 01 0c 00 ff'))).toBeNull(); // empty hostname
    expect(parseDhcpMessage(opt('35 01 01 3d 01 01 ff'))).toBeNull(); // client id of 1 byte
    expect(parseDhcpMessage(opt('35 01 01 3d 02 0001 ff'))).not.toBeNull();
    expect(parseDhcpMessage(opt('35 01 01 0c 09 616263 ff'))).toBeNull(); // runs past the end
    // An overloaded file field of zeros is all pad options; one whose option runs past the field is not.
    expect(parseDhcpMessage(opt('35 01 01 34 01 01 ff'))).not.toBeNull();
    expect(bad((b) => {
      b.set(hex('34 01 01'), DHCP.OPTIONS + 3);
      b.set(hex('0c 08 61'), DHCP.FILE + DHCP.FILE_LEN - 3);
    })).toBeNull();
  });

  it('never throws or loops on mutated input', () => {
    const rng = new Rng(0xd4c9);
    const seeds = [UDHCPC_DISCOVER, DHCLIENT_DISCOVER];
    for (let i = 0; i < 20_000; i++) {
      const b = rng.pick(seeds).slice(0, rng.range(0, 320));
      const flips = rng.range(1, 8);
      for (let j = 0; j < flips && b.length > 0; j++) b[rng.int(b.length)] = rng.u32() & 0xff;
      // Keep the cookie often enough to reach the option parser.
      if (b.length >= DHCP.OPTIONS && rng.bool(0.8)) b.set(hex('63825363'), DHCP.COOKIE);
      const m = parseDhcpMessage(b);
      if (m) expect(m.chaddr.length).toBe(m.hlen);
    }
    expect(parseDhcpMessage('not bytes' as unknown as Uint8Array)).toBeNull();
  });
});

describe('buildDhcpMessage', () => {
  // An OFFER for the udhcpc DISCOVER above: message type and server id first,
  // then the client's request list in its order (1, 3, 6, 15, 28; it asked
  // for 12 and 42 too, which the server does not have), then the rest by code.
  const OFFER = hex(`
    02 01 06 00  9d22ad64  0000 0000
    00000000 0a00020f 00000000 00000000
    525400123456 ${zeros(10)}
    ${zeros(64)} ${zeros(128)}
    63825363
    35 01 02
    36 04 0a000202
    01 04 ffffff00
    03 04 0a000202
    06 04 0a000203
    0f 0c 73616e64626f782e74657374
    1c 04 0a0002ff
    1a 02 05dc
    33 04 00000e10
    3a 04 00000708
    3b 04 00000c4e
    ff`);
  const offerInit = {
    op: BootpOp.Reply,
    xid: 0x9d22ad64,
    yiaddr: '10.0.2.15',
    chaddr: CHADDR,
    options: {
      messageType: DhcpMessageType.Offer,
      serverId: '10.0.2.2',
      leaseTime: 3600,
      renewalTime: 1800,
      rebindingTime: 3150,
      subnetMask: '255.255.255.0',
      broadcastAddress: '10.0.2.255',
      routers: ['10.0.2.2'],
      dnsServers: ['10.0.2.3'],
      domainName: 'sandbox.test',
      mtu: 1500,
    },
    optionOrder: [1, 3, 6, 12, 15, 28, 42],
  };

  it('emits an OFFER byte for byte, options in the order the client asked for', () => {
    expect(buildDhcpMessage(offerInit)).toEqual(OFFER);
    expect(dhcpMessageLength(offerInit)).toBe(OFFER.length);
    const buf = new Uint8Array(OFFER.length + 8).fill(0xee);
    expect(emitDhcpMessage(offerInit, buf, 4)).toBe(OFFER.length);
    expect(buf.subarray(4, 4 + OFFER.length)).toEqual(OFFER);
    expect(buf[3]).toBe(0xee);
    expect(buf[4 + OFFER.length]).toBe(0xee);
  });

  it('pads short messages to the BOOTP minimum of 300 bytes', () => {
    const nak = buildDhcpMessage({ op: 2, xid: 7, chaddr: CHADDR, options: { messageType: DhcpMessageType.Nak, serverId: '10.0.2.2' } });
    expect(nak.length).toBe(300);
    expect(nak.subarray(240, 250)).toEqual(hex('35 01 06 36 04 0a000202 ff'));
    expect(nak.subarray(250).every((b) => b === 0)).toBe(true);
    expect(buildDhcpMessage({ op: 2, xid: 7, chaddr: CHADDR, minLength: 0 }).length).toBe(241);
  });

  it('round-trips every option it knows', () => {
    const init = {
      op: BootpOp.Request, xid: 0xfeedf00d, secs: 3, flags: DHCP.BROADCAST_FLAG, hops: 1,
      ciaddr: '10.0.2.15', giaddr: '10.9.0.1', chaddr: CHADDR, sname: 'srv', file: 'boot/pxe',
      options: {
        messageType: DhcpMessageType.Request, subnetMask: '255.255.0.0', routers: ['10.0.0.1', '10.0.0.2'],
        dnsServers: ['10.0.0.53'], hostname: 'host-ü', domainName: 'example.test', mtu: 9000,
        broadcastAddress: '10.0.255.255', requestedAddress: '10.0.2.15', leaseTime: 0xffffffff, serverId: '10.0.0.1',
        parameterRequestList: [1, 3, 6, 26], message: 'hello', maxMessageSize: 1500, renewalTime: 10,
        rebindingTime: 20, vendorClassId: 'tcpip-ts', clientId: hex('ff00010203'),
      },
      extraOptions: [{ code: 119, data: hex('0474657374 00') }],
    };
    const m = parseDhcpMessage(buildDhcpMessage(init))!;
    expect(m).toMatchObject({ op: 1, xid: 0xfeedf00d, secs: 3, flags: 0x8000, hops: 1, ciaddr: '10.0.2.15', giaddr: '10.9.0.1', sname: 'srv', file: 'boot/pxe' });
    expect(m.options).toEqual(init.options);
    expect(m.rawOptions.get(119)).toEqual(hex('0474657374 00'));
  });

  it('splits options over 255 bytes into instances (RFC 3396) that parse back whole', () => {
    const dns = Array.from({ length: 70 }, (_, i) => `10.1.${i >> 8}.${i & 0xff}`);
    const bytes = buildDhcpMessage({ op: 2, xid: 1, chaddr: CHADDR, options: { messageType: 5, dnsServers: dns } });
    // 280 bytes of addresses: 255 + 25.
    expect([bytes[243], bytes[244]]).toEqual([6, 255]);
    expect([bytes[245 + 255], bytes[246 + 255]]).toEqual([6, 25]);
    expect(parseDhcpMessage(bytes)!.options.dnsServers).toEqual(dns);
  });

  it('rejects what it cannot encode with a RangeError', () => {
    const ok = { op: 2, xid: 1, chaddr: CHADDR };
    expect(() => buildDhcpMessage({ ...ok, chaddr: new Uint8Array(17) })).toThrow(RangeError);
    expect(() => buildDhcpMessage({ ...ok, yiaddr: '10.0.2' })).toThrow(/yiaddr/);
    expect(() => buildDhcpMessage({ ...ok, xid: 2 ** 32 })).toThrow(/xid/);
    expect(() => buildDhcpMessage({ ...ok, options: { mtu: 67 } })).toThrow(/mtu/);
    expect(() => buildDhcpMessage({ ...ok, options: { routers: [] } })).toThrow(/routers/);
    expect(() => buildDhcpMessage({ ...ok, options: { clientId: hex('01') } })).toThrow(/clientId/);
    expect(() => buildDhcpMessage({ ...ok, sname: 'x'.repeat(64) })).toThrow(/sname/);
    expect(() => buildDhcpMessage({ ...ok, options: { mtu: 1500 }, extraOptions: [{ code: 26, data: hex('0101') }] })).toThrow(/twice/);
    expect(() => buildDhcpMessage({ ...ok, extraOptions: [{ code: 255, data: new Uint8Array(0) }] })).toThrow(/code/);
    expect(() => emitDhcpMessage(ok, new Uint8Array(299))).toThrow(/buffer/);
  });
});
