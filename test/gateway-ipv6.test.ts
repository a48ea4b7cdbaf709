import dgram from 'node:dgram';
import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createCable, createStack, type Stack } from '../src/index.js';
import { createGateway, type Gateway } from '../src/gateway/gateway.js';
import type { Interface } from '../src/core/interface.js';
import type { Link } from '../src/core/link.js';
import { formatIp, parseIp, parseMac, type IpAddress } from '../src/wire/address.js';
import { buildEthernetFrame, EtherType, parseEthernetFrame } from '../src/wire/ethernet.js';
import { buildIPv6Packet, parseIPv6Packet } from '../src/wire/ipv6.js';
import { IpProtocol } from '../src/wire/ipv4.js';
import { loadNative } from '../src/node/native.js';
import { buildRouterSolicitation, parseRouterAdvertisement, type RouterAdvertisement } from '../src/wire/ndp.js';
import { queryOverTcp } from './support/dns-tcp.js';
import { waitFor } from './support/netns.js';

// In-process, as test/gateway.test.ts: the sandbox is a stack on a cable to
// the gateway, and host sockets only ever reach this machine's loopback
// (hostLoopback maps the v6 gateway address to ::1), and a forwarded echo
// only to ::1. A policy deny is shown refusing a documentation address the
// gateway never tries to reach.
const cleanup: (() => void)[] = [];
afterEach(() => {
  for (const fn of cleanup.splice(0).reverse()) fn();
});

const NO_UPSTREAM = {
  resolve4: () => Promise.reject(Object.assign(new Error('no upstream in tests'), { code: 'ESERVFAIL' })),
  resolve6: () => Promise.reject(Object.assign(new Error('no upstream in tests'), { code: 'ESERVFAIL' })),
};

const hasHostIPv6 = await new Promise<boolean>((resolve) => {
  const s = net.createServer().listen(0, '::1', () => s.close(() => resolve(true)));
  s.on('error', () => resolve(false));
});
if (!hasHostIPv6) console.warn('gateway-ipv6.test.ts: host-socket tests skipped: no ::1 on this machine');

/** A sandbox stack that configures itself by SLAAC from the gateway's advertisements. */
async function setup(options: { hostLoopback?: boolean; deny?: string[]; allow?: string[]; frames?: Uint8Array[] } = {}): Promise<{ gw: Gateway; sandbox: Stack; iface: Interface; address: string }> {
  const [gwLink, cableEnd] = createCable({ mtu: 1500 });
  const frames = options.frames;
  // With `frames`, a copy of every frame the sandbox receives.
  const sandboxLink: Link = !frames ? cableEnd : {
    medium: cableEnd.medium,
    mtu: cableEnd.mtu,
    send: (f) => cableEnd.send(f),
    close: () => cableEnd.close(),
    attach: (receive) => cableEnd.attach((f) => {
      frames.push(f.slice());
      receive(f);
    }),
  };
  const gw = createGateway({
    link: gwLink,
    ipv6: true,
    hostLoopback: options.hostLoopback ?? true,
    hosts: { 'six.test': ['fd00::2'], 'four.test': ['10.0.2.2'] },
    resolver: NO_UPSTREAM,
    policy: { rules: [...(options.deny ?? []).map((r) => `deny ${r}`), ...(options.allow ?? []).map((r) => `allow ${r}`)] },
  });
  const sandbox = createStack({ dnsServers: ['fd00::3'] });
  cleanup.push(() => {
    sandbox.close();
    gw.close();
  });
  await gw.ready;
  const iface = sandbox.addInterface({ link: sandboxLink, ipv4: '10.0.2.100/24', gateway: '10.0.2.2', slaac: true });
  await waitFor(() => iface.ipv6.some((a) => a.address.startsWith('fd00:') && a.state === 'preferred'), 10_000, 'a SLAAC address');
  return { gw, sandbox, iface, address: iface.ipv6.find((a) => a.address.startsWith('fd00:'))!.address };
}

describe('gateway ipv6 option', () => {
  it('names the bad part of the option in a TypeError', () => {
    const [link] = createCable();
    const make = (ipv6: unknown, l = link) => () => createGateway({ link: l, ipv6: ipv6 as never });
    expect(make('yes')).toThrow(TypeError);
    expect(make('yes')).toThrow(/"ipv6"/);
    expect(make({ prefix: 'fd00::/48' })).toThrow(/"ipv6\.prefix"/);
    expect(make({ prefix: 'fe80::/64' })).toThrow(/"ipv6\.prefix"/);
    expect(make({ prefix: '10.0.0.0/24' })).toThrow(/"ipv6\.prefix"/);
    expect(make({ gateway: 'fd01::2' })).toThrow(/"ipv6\.gateway"/);
    expect(make({ dns: 'nonsense' })).toThrow(/"ipv6\.dns"/);
    expect(make({ gateway: 'fd00::5', dns: 'fd00::5' })).toThrow(/"ipv6\.dns"/);
    const [tun] = createCable({ medium: 'ip' });
    expect(make(true, tun)).toThrow(/"ipv6"/);
  });

  it('fills in slirp4netns\'s addresses, or ::2 and ::3 of a given prefix', () => {
    const [a] = createCable();
    const gw = createGateway({ link: a, ipv6: true });
    cleanup.push(() => gw.close());
    expect(gw.ipv6).toEqual({ prefix: 'fd00::/64', gateway: 'fd00::2', dns: 'fd00::3' });
    const [b] = createCable();
    const other = createGateway({ link: b, ipv6: { prefix: 'fd12:3456::/64', dns: 'fd12:3456::53' } });
    cleanup.push(() => other.close());
    expect(other.ipv6).toEqual({ prefix: 'fd12:3456::/64', gateway: 'fd12:3456::2', dns: 'fd12:3456::53' });
    expect(other.interface.ipv6.map((x) => x.address)).toEqual(expect.arrayContaining(['fd12:3456::2', 'fd12:3456::53']));
    const [c] = createCable();
    const off = createGateway({ link: c });
    cleanup.push(() => off.close());
    expect(off.ipv6).toBeNull();
    expect(off.routerAdvertiser).toBeNull();
  });
});

describe('router advertisements', () => {
  const GUEST_MAC = parseMac('02:00:00:00:00:aa')!;
  const GUEST_LL: IpAddress = parseIp('fe80::aa')!;
  const ALL_ROUTERS = parseIp('ff02::2')!;

  /** A bare link as the sandbox: collects the advertisements the gateway sends. */
  async function bareSandbox(): Promise<{ gw: Gateway; ras: Array<{ ra: RouterAdvertisement; hopLimit: number; src: string; dstMac: string }>; send(frame: Uint8Array): void }> {
    const [gwLink, sandboxLink] = createCable({ mtu: 1400 });
    const gw = createGateway({ link: gwLink, ipv6: true, resolver: NO_UPSTREAM });
    cleanup.push(() => gw.close());
    const ras: Array<{ ra: RouterAdvertisement; hopLimit: number; src: string; dstMac: string }> = [];
    sandboxLink.attach((frame) => {
      const eth = parseEthernetFrame(frame);
      const ip = eth?.etherType === EtherType.IPv6 ? parseIPv6Packet(eth.payload) : null;
      if (!eth || !ip || ip.upperProtocol !== IpProtocol.ICMPv6) return;
      const ra = parseRouterAdvertisement(ip.upperPayload, { src: ip.src, dst: ip.dst });
      if (ra) ras.push({ ra, hopLimit: ip.hopLimit, src: formatIp(ip.src), dstMac: [...eth.dst].map((b) => b.toString(16).padStart(2, '0')).join(':') });
    });
    await gw.ready;
    return { gw, ras, send: (frame) => sandboxLink.send(frame) };
  }

  function solicitation(hopLimit = 255): Uint8Array {
    const rs = buildRouterSolicitation({ sourceLinkLayerAddress: GUEST_MAC }, { src: GUEST_LL, dst: ALL_ROUTERS });
    const packet = buildIPv6Packet({ src: GUEST_LL, dst: ALL_ROUTERS, nextHeader: IpProtocol.ICMPv6, hopLimit, payload: rs });
    return buildEthernetFrame({ dst: parseMac('33:33:00:00:00:02')!, src: GUEST_MAC, etherType: EtherType.IPv6 }, packet);
  }

  it('advertises at start to all-nodes from the link-local address, hop limit 255, with SLLA, MTU, the prefix and RDNSS', async () => {
    const { gw, ras } = await bareSandbox();
    await waitFor(() => ras.length > 0, 5_000, 'the first advertisement');
    const { ra, hopLimit, src, dstMac } = ras[0]!;
    expect(hopLimit).toBe(255);
    expect(src).toMatch(/^fe80::/);
    expect(gw.interface.ipv6.map((a) => a.address)).toContain(src);
    expect(dstMac).toBe('33:33:00:00:00:01');
    expect(ra).toMatchObject({ curHopLimit: 64, managed: false, other: false, routerLifetime: 1800, mtu: 1400 });
    expect(formatMacOf(ra.sourceLinkLayerAddress)).toBe(gw.interface.mac);
    expect(ra.prefixes.map((p) => ({ ...p, prefix: formatIp(p.prefix) }))).toEqual([
      { prefix: 'fd00::', prefixLength: 64, onLink: true, autonomous: true, validLifetime: 86400, preferredLifetime: 14400 },
    ]);
    expect(ra.dnsServers?.servers.map(formatIp)).toEqual(['fd00::3']);
  });

  it('answers a router solicitation (after the 3 s minimum between advertisements) and ignores one with hop limit below 255', async () => {
    const { gw, ras, send } = await bareSandbox();
    await waitFor(() => ras.length === 1, 5_000, 'the first advertisement');
    send(solicitation(64)); // forwarded by some router: invalid (RFC 4861 section 6.1.1)
    send(solicitation());
    await waitFor(() => ras.length === 2, 5_000, 'the solicited advertisement');
    expect(gw.routerAdvertiser!.counters.solicitations).toBe(1);
  });

  it('linkUp() (the other end began to listen) advertises at once, not 3 s after the unheard first one', async () => {
    const { gw, ras } = await bareSandbox();
    await waitFor(() => ras.length === 1, 5_000, 'the first advertisement');
    const t0 = performance.now();
    gw.routerAdvertiser!.linkUp();
    await waitFor(() => ras.length === 2, 5_000, 'the advertisement after linkUp');
    // The rate limit would hold it until 3 s after the first.
    expect(performance.now() - t0).toBeLessThan(1_000);
    expect(ras[1]!.ra.routerLifetime).toBe(1800);
  });

  it('withdraws the default route on close (router lifetime 0)', async () => {
    const { gw, ras } = await bareSandbox();
    await waitFor(() => ras.length === 1, 5_000, 'the first advertisement');
    gw.close();
    await waitFor(() => ras.length === 2, 2_000, 'the final advertisement');
    expect(ras[1]!.ra.routerLifetime).toBe(0);
  });
});

function formatMacOf(bytes: Uint8Array | undefined): string | undefined {
  return bytes && [...bytes].map((b) => b.toString(16).padStart(2, '0')).join(':');
}

describe.skipIf(!hasHostIPv6)('gateway over IPv6 (an lwIP sandbox configured by SLAAC)', () => {
  async function hostServer(handler: (s: net.Socket) => void): Promise<number> {
    const server = net.createServer(handler);
    server.listen(0, '::1');
    await once(server, 'listening');
    cleanup.push(() => server.close());
    return (server.address() as net.AddressInfo).port;
  }

  it('gets a SLAAC address in fd00::/64 and reaches the host\'s ::1 through fd00::2 over TCP', async () => {
    const { sandbox, address } = await setup();
    expect(address).toMatch(/^fd00::/);
    const app = http.createServer((req, res) => res.end(`hi ${req.socket.remoteAddress}`));
    app.listen(0, '::1');
    await once(app, 'listening');
    cleanup.push(() => app.close());
    const port = (app.address() as net.AddressInfo).port;
    const body = await new Promise<string>((resolve, reject) => {
      http.get({ host: 'fd00::2', port, agent: sandbox.httpAgent() }, (res) => {
        let t = '';
        res.on('data', (d: Buffer) => (t += d));
        res.on('end', () => resolve(t));
      }).on('error', reject);
    });
    expect(body).toBe('hi ::1');
  });

  it('relays UDP to ::1 with replies from fd00::2', async () => {
    const { sandbox } = await setup();
    const echo = dgram.createSocket('udp6');
    echo.on('message', (msg, rinfo) => echo.send(Buffer.concat([Buffer.from('echo:'), msg]), rinfo.port, rinfo.address));
    echo.bind(0, '::1');
    await once(echo, 'listening');
    cleanup.push(() => echo.close());
    const sock = sandbox.createSocket('udp6');
    sock.bind(40000);
    await once(sock, 'listening');
    const reply = once(sock, 'message');
    sock.send('six', echo.address().port, 'fd00::2');
    const [msg, rinfo] = (await reply) as [Buffer, { address: string; port: number }];
    expect(msg.toString()).toBe('echo:six');
    expect(rinfo.address).toBe('fd00::2');
  });

  it('answers DNS at fd00::3 over UDP and TCP, A and AAAA', async () => {
    const { gw, sandbox } = await setup();
    expect(await sandbox.resolve('six.test', { family: 6 })).toEqual(['fd00::2']);
    expect(await sandbox.resolve('four.test')).toEqual(['10.0.2.2']);
    expect((await queryOverTcp(sandbox, 'fd00::3', 'six.test', 28))?.answers.map((a) => a.value)).toEqual(['fd00::2']);
    expect(gw.dns.counters.tcp).toBe(1);
  });

  it('refuses at once: a closed host port (RST), fd00::2 without hostLoopback, a policy deny of a v6 CIDR', async () => {
    const closed = await new Promise<number>((resolve) => {
      const s = net.createServer().listen(0, '::1', () => {
        const port = (s.address() as net.AddressInfo).port;
        s.close(() => resolve(port));
      });
    });
    const { sandbox, gw } = await setup({ deny: ['[2001:db8::/32]'] });
    const connect = (host: string, port: number) => new Promise<string>((resolve) => {
      const s = sandbox.connect({ host, port });
      s.on('connect', () => {
        s.destroy();
        resolve('connected');
      });
      s.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
    });
    expect(await connect('fd00::2', closed)).toBe('ECONNREFUSED');
    expect(gw.metrics().tcpRefused).toBe(1);
    const t0 = performance.now();
    expect(await connect('2001:db8::1', 443)).toBe('ECONNREFUSED');
    expect(performance.now() - t0).toBeLessThan(900); // the first SYN answered: below the 1 s SYN retransmission
    expect(gw.metrics().denied).toBe(1);
    const denied: unknown[] = [];
    gw.on('denied', (d) => denied.push(d));
    expect(await connect('2001:db8::1', 80)).toBe('ECONNREFUSED');
    expect(denied).toMatchObject([{ protocol: 'tcp', to: '2001:db8::1:80' }]);

    const off = await setup({ hostLoopback: false });
    const port = await hostServer((s) => s.end());
    expect(await new Promise<string>((resolve) => {
      const s = off.sandbox.connect({ host: 'fd00::2', port });
      s.on('connect', () => resolve('connected'));
      s.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
    })).toBe('ECONNREFUSED');
  });

  it('answers ping to its own v6 addresses', async () => {
    const { sandbox } = await setup();
    expect(await sandbox.ping('fd00::2')).toBeGreaterThanOrEqual(0);
    expect(await sandbox.ping('fd00::3')).toBeGreaterThanOrEqual(0);
  });

  it('a denied v6 echo gets destination unreachable code 1 from fd00::2; an allowed one goes to the ICMPv6 ping socket', async () => {
    const frames: Uint8Array[] = [];
    const { sandbox, gw, address } = await setup({ deny: ['icmp:[2001:db8::/32]'], allow: ['icmp:[::1]'], frames });
    await expect(sandbox.ping('2001:db8::1', { timeout: 300 })).rejects.toMatchObject({ code: 'ETIMEDOUT' });
    const unreachable = frames.map((f) => parseIPv6Packet(parseEthernetFrame(f)!.payload)).find((ip) => ip?.upperPayload[0] === 1);
    expect(unreachable && { src: formatIp(unreachable.src), dst: formatIp(unreachable.dst), code: unreachable.upperPayload[1] }).toEqual({ src: 'fd00::2', dst: address, code: 1 });
    expect(gw.metrics()).toMatchObject({ denied: 1, icmpDropped: 0 });
    // Allowed: forwarded to this machine's ::1 where ping sockets are allowed
    // (net.ipv4.ping_group_range; test/gateway-icmp.test.ts forwards in
    // namespaces), else dropped and counted. Never off the machine.
    let pingSockets = true;
    try {
      new (loadNative().PingSocket!)(6, 1, 64, () => {}, () => {}).close();
    } catch {
      pingSockets = false;
    }
    // The second is fragmented: lwIP reassembles it before the gateway sees it.
    const payloads = [new Uint8Array(56), new Uint8Array(4000).fill(9)];
    if (pingSockets) {
      for (const payload of payloads) expect(await sandbox.ping('::1', { timeout: 2000, payload })).toBeGreaterThanOrEqual(0);
      expect(gw.metrics()).toMatchObject({ denied: 1, icmpEchoForwarded: 2, icmpEchoReplies: 2, icmpDropped: 0 });
    } else {
      for (const payload of payloads) await expect(sandbox.ping('::1', { timeout: 300, payload })).rejects.toMatchObject({ code: 'ETIMEDOUT' });
      expect(gw.metrics()).toMatchObject({ denied: 1, icmpEchoForwarded: 0, icmpDropped: 2 });
    }
  });
});
