import { once } from 'node:events';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createCable, createStack, ManualClock, type RemoteInfo, type Stack } from '../src/index.js';
import { openTap } from '../src/node/links.js';
import { DhcpServer, type DhcpLease, type DhcpServerOptions } from '../src/gateway/dhcp-server.js';
import {
  BootpOp, buildDhcpMessage, DhcpMessageType, parseDhcpMessage, type DhcpMessage, type DhcpOptions,
} from '../src/wire/dhcp.js';
import { deviceTestsUnavailable, Netns, waitFor } from './support/netns.js';
import { udhcpcScript } from './support/udhcpc.js';

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

const GATEWAY_MAC = '02:00:00:00:02:02';
const CLIENT_MAC = '02:00:00:00:02:c8';

/** A gateway stack at 10.0.2.2/24 on one end of a cable, running a DhcpServer; the other end is returned for a client. */
async function gatewayOnCable(options: Partial<DhcpServerOptions>, clock?: ManualClock) {
  const [lg, lc] = createCable({ mtu: 1500 });
  const gw = createStack(clock ? { clock } : {});
  cleanup.push(() => gw.close());
  gw.addInterface({ link: lg, ipv4: '10.0.2.2/24', mac: GATEWAY_MAC });
  const server = new DhcpServer(gw, { serverAddress: '10.0.2.2', subnet: '10.0.2.0/24', dns: ['10.0.2.3'], ...options });
  cleanup.push(() => server.close());
  await server.start();
  const leases: DhcpLease[] = [];
  server.on('lease', (l) => leases.push(l));
  return { gw, server, clientLink: lc, leases };
}

describe('DhcpServer options', () => {
  it('throws a TypeError naming the bad option', () => {
    const stack = createStack();
    cleanup.push(() => stack.close());
    const ok: DhcpServerOptions = { serverAddress: '10.0.2.2', subnet: '10.0.2.0/24' };
    const bad = (o: Partial<DhcpServerOptions> | Record<string, unknown>) => () => new DhcpServer(stack, { ...ok, ...o } as DhcpServerOptions);
    expect(bad({ subnet: '10.0.2.0' })).toThrow(/"subnet"/);
    expect(bad({ subnet: '10.0.2.0/31' })).toThrow(/"subnet"/);
    expect(bad({ serverAddress: '10.0.3.2' })).toThrow(/"serverAddress"/);
    expect(bad({ guest: '10.0.2.255' })).toThrow(/"guest"/);
    expect(bad({ guest: '10.0.2.2' })).toThrow(/"guest"/);
    expect(bad({ guest: '10.0.2.15', range: { start: '10.0.2.15', end: '10.0.2.20' } })).toThrow(/"guest"/);
    expect(bad({ range: { start: '10.0.2.20', end: '10.0.2.15' } })).toThrow(/"range.end"/);
    expect(bad({ range: { start: '10.0.3.1', end: '10.0.3.5' } })).toThrow(/"range.start"/);
    expect(bad({ router: '192.168.1.1' })).toThrow(/"router"/);
    expect(bad({ dns: ['10.0.2.3', 'dns.example'] })).toThrow(/"dns\[1\]"/);
    expect(bad({ mtu: 67 })).toThrow(/"mtu"/);
    expect(bad({ leaseSeconds: 1.5 })).toThrow(/"leaseSeconds"/);
    expect(bad({ domain: '' })).toThrow(/"domain"/);
    expect(bad({ interface: 7 })).toThrow(/"interface"/);
    expect(() => new DhcpServer(stack, ok)).not.toThrow();
  });

  it('start() names the interface or address that does not fit', async () => {
    const stack = createStack();
    cleanup.push(() => stack.close());
    const [l] = createCable();
    stack.addInterface({ link: l, ipv4: '10.0.2.9/24' });
    await expect(new DhcpServer(stack, { serverAddress: '10.0.2.2', subnet: '10.0.2.0/24' }).start()).rejects.toThrow(/"serverAddress"/);
    await expect(new DhcpServer(stack, { interface: 'eth7', serverAddress: '10.0.2.9', subnet: '10.0.2.0/24' }).start()).rejects.toThrow(/"interface".*eth0/);
    // Port 67 taken: start() rejects; starting twice binds once; closing after the stack is harmless.
    const server = new DhcpServer(stack, { serverAddress: '10.0.2.9', subnet: '10.0.2.0/24' });
    await Promise.all([server.start(), server.start()]);
    await expect(new DhcpServer(stack, { serverAddress: '10.0.2.9', subnet: '10.0.2.0/24' }).start()).rejects.toMatchObject({ code: 'EADDRINUSE' });
    stack.close();
    await server.close();
  });
});

describe('DhcpServer and lwIP\'s DHCP client, in process', () => {
  it('gives a stack with dhcp: true the guest address, router and DNS server', async () => {
    const { clientLink, leases } = await gatewayOnCable({ guest: '10.0.2.15', mtu: 1400, domain: 'sandbox.test' });
    const client = createStack();
    cleanup.push(() => client.close());
    const iface = client.addInterface({ link: clientLink, dhcp: true, mac: CLIENT_MAC });
    await waitFor(() => iface.ipv4 !== null, 10_000, 'a lease');
    expect(iface.ipv4).toMatchObject({ address: '10.0.2.15', prefixLength: 24, gateway: '10.0.2.2' });
    expect(client.dnsServers).toContain('10.0.2.3');
    expect(leases).toEqual([expect.objectContaining({ address: '10.0.2.15', mac: CLIENT_MAC, clientId: null, renewed: false })]);
    expect(await client.ping('10.0.2.2')).toBeGreaterThanOrEqual(0);
  });
});

/**
 * A hand-driven client on a stack at 10.0.2.200: it sends DHCP messages from
 * port 68 and collects every reply. lwIP hands datagrams for port 68 to the
 * socket whatever their destination address (DHCP's link-layer addressing),
 * so offers unicast to other addresses at this MAC arrive too.
 */
async function craftedClient(clientLink: ReturnType<typeof createCable>[1]) {
  const stack = createStack();
  cleanup.push(() => stack.close());
  stack.addInterface({ link: clientLink, ipv4: '10.0.2.200/24', mac: CLIENT_MAC });
  const socket = stack.createSocket('udp4');
  socket.bind(68);
  await once(socket, 'listening');
  const replies: DhcpMessage[] = [];
  socket.on('message', (data: Buffer, _rinfo: RemoteInfo) => {
    const msg = parseDhcpMessage(data);
    if (msg) replies.push(msg);
  });
  let xid = 0x1000;
  const mac = (last: number) => Uint8Array.of(0x02, 0, 0, 0, 0x02, last);
  return {
    stack,
    /** Sends a request; resolves with the reply of the same xid, or null after 300 ms. */
    async send(options: DhcpOptions, fields: { chaddr?: Uint8Array; ciaddr?: string; flags?: number; to?: string } = {}): Promise<DhcpMessage | null> {
      const id = ++xid;
      const bytes = buildDhcpMessage({ op: BootpOp.Request, xid: id, chaddr: fields.chaddr ?? mac(0xc8), ciaddr: fields.ciaddr, flags: fields.flags, options });
      socket.send(bytes, 67, fields.to ?? '10.0.2.255');
      try {
        await waitFor(() => replies.some((r) => r.xid === id), 300);
      } catch {
        return null;
      }
      return replies.find((r) => r.xid === id)!;
    },
    raw(bytes: Uint8Array) {
      socket.send(bytes, 67, '10.0.2.2');
    },
    mac,
  };
}

describe('DhcpServer protocol, against a hand-driven client in process', () => {
  it('offers, acknowledges, renews, refuses, declines, runs out, expires offers, releases and informs', async () => {
    const clock = new ManualClock(1_000_000);
    const { gw, server, clientLink, leases } = await gatewayOnCable(
      { range: { start: '10.0.2.200', end: '10.0.2.202' }, mtu: 1400, leaseSeconds: 600 }, clock);
    const c = await craftedClient(clientLink);
    const idA = Uint8Array.from([0xff, 0, 0, 0, 0x0a, 0, 1]);
    const idB = Uint8Array.from([0xff, 0, 0, 0, 0x0b, 0, 1]);
    const { Discover, Offer, Request, Ack, Nak, Decline, Release, Inform } = DhcpMessageType;

    // A: DISCOVER, then REQUEST in SELECTING state.
    const offerA = await c.send({ messageType: Discover, clientId: idA, parameterRequestList: [1, 3, 6, 26] });
    expect(offerA).toMatchObject({ op: BootpOp.Reply, yiaddr: '10.0.2.200', ciaddr: '0.0.0.0' });
    expect(offerA!.options).toMatchObject({
      messageType: Offer, serverId: '10.0.2.2', subnetMask: '255.255.255.0', routers: ['10.0.2.2'], dnsServers: ['10.0.2.3'],
      mtu: 1400, leaseTime: 600, renewalTime: 300, rebindingTime: 525, broadcastAddress: '10.0.2.255',
    });
    // The options the client asked for come first, in its order.
    expect([...offerA!.rawOptions.keys()].slice(0, 6)).toEqual([53, 54, 1, 3, 6, 26]);
    const ackA = await c.send({ messageType: Request, clientId: idA, serverId: '10.0.2.2', requestedAddress: '10.0.2.200' });
    expect(ackA).toMatchObject({ yiaddr: '10.0.2.200', options: expect.objectContaining({ messageType: Ack, leaseTime: 600 }) });
    expect(leases).toEqual([expect.objectContaining({ address: '10.0.2.200', clientId: 'ff0000000a0001', renewed: false, expiresAt: 1_000_000 + 600_000 })]);

    // RENEWING: unicast from the leased address, answered to it.
    const renew = await c.send({ messageType: Request, clientId: idA }, { ciaddr: '10.0.2.200', to: '10.0.2.2' });
    expect(renew).toMatchObject({ yiaddr: '10.0.2.200', ciaddr: '10.0.2.200', options: expect.objectContaining({ messageType: Ack }) });
    expect(leases[1]).toMatchObject({ address: '10.0.2.200', renewed: true });
    expect(server.leases()).toHaveLength(1);

    // B gets the next address; asking for A's (INIT-REBOOT) or one off the network is refused.
    expect((await c.send({ messageType: Discover, clientId: idB }))!.yiaddr).toBe('10.0.2.201');
    const nak = await c.send({ messageType: Request, clientId: idB, requestedAddress: '10.0.2.200' });
    expect(nak!.options).toMatchObject({ messageType: Nak, serverId: '10.0.2.2', message: '10.0.2.200 is not available' });
    expect(nak!.yiaddr).toBe('0.0.0.0');
    const away = await c.send({ messageType: Request, clientId: idB, requestedAddress: '192.168.7.7' });
    expect(away!.options.message).toMatch(/not on this network/);
    // B picks another server's offer: ours is withdrawn, without a reply.
    expect(await c.send({ messageType: Request, clientId: idB, serverId: '10.0.2.9', requestedAddress: '10.0.2.77' })).toBeNull();

    // A client without a client id is keyed by its hardware address; with the broadcast flag it is answered by broadcast.
    const hwC = c.mac(0x33);
    const offerC = await c.send({ messageType: Discover }, { chaddr: hwC, flags: 0x8000 });
    expect(offerC!.yiaddr).toBe('10.0.2.201');
    expect(offerC!.flags).toBe(0x8000);
    expect(await c.send({ messageType: Request, serverId: '10.0.2.2', requestedAddress: '10.0.2.201' }, { chaddr: hwC, flags: 0x8000 }))
      .toMatchObject({ options: expect.objectContaining({ messageType: Ack }) });
    // C finds the address in use: DECLINE. It is not offered again for a while.
    const declined = once(server, 'decline');
    await c.send({ messageType: Decline, serverId: '10.0.2.2', requestedAddress: '10.0.2.201' }, { chaddr: hwC });
    expect((await declined)[0]).toBe('10.0.2.201');
    expect((await c.send({ messageType: Discover }, { chaddr: hwC }))!.yiaddr).toBe('10.0.2.202');

    // The pool is out: .200 bound, .201 declined, .202 offered.
    expect(await c.send({ messageType: Discover }, { chaddr: c.mac(0x44) })).toBeNull();
    expect(server.stats.exhausted).toBe(1);
    // An offer holds its address for a minute.
    await clock.advance(61_000);
    expect((await c.send({ messageType: Discover }, { chaddr: c.mac(0x44) }))!.yiaddr).toBe('10.0.2.202');

    // A releases; the address goes back to A if it asks again first.
    const released = once(server, 'release');
    await c.send({ messageType: Release, clientId: idA, serverId: '10.0.2.2' }, { ciaddr: '10.0.2.200', to: '10.0.2.2' });
    expect((await released)[0]).toMatchObject({ address: '10.0.2.200', clientId: 'ff0000000a0001' });
    expect(server.leases()).toHaveLength(0);
    expect((await c.send({ messageType: Discover, clientId: idA }))!.yiaddr).toBe('10.0.2.200');

    // INFORM: configuration only, no address and no lease time, to ciaddr.
    const inform = await c.send({ messageType: Inform, parameterRequestList: [3, 6] }, { ciaddr: '10.0.2.200', to: '10.0.2.2' });
    expect(inform!.yiaddr).toBe('0.0.0.0');
    expect(inform!.options).toMatchObject({ messageType: Ack, routers: ['10.0.2.2'], dnsServers: ['10.0.2.3'] });
    expect(inform!.options.leaseTime).toBeUndefined();

    // Garbage and replies are counted and ignored.
    const ignored = server.stats.ignored;
    c.raw(Uint8Array.from([1, 2, 3]));
    c.raw(buildDhcpMessage({ op: BootpOp.Reply, xid: 1, chaddr: c.mac(1), options: { messageType: Offer } }));
    await waitFor(() => server.stats.ignored === ignored + 2, 1000, 'ignored datagrams');
    expect(server.stats.sent).toEqual({ offer: 6, ack: 4, nak: 2 });
    // The static ARP entries that carried unicast offers are gone.
    expect(gw.neighbors.list().filter((n) => n.state === 'static')).toEqual([]);
  });

  it('in guest mode gives every client the one address, the newest client taking it over', async () => {
    const { clientLink, leases } = await gatewayOnCable({ guest: '10.0.2.15' });
    const c = await craftedClient(clientLink);
    for (const last of [0x01, 0x02]) {
      const chaddr = c.mac(last);
      expect((await c.send({ messageType: DhcpMessageType.Discover }, { chaddr }))!.yiaddr).toBe('10.0.2.15');
      const ack = await c.send({ messageType: DhcpMessageType.Request, serverId: '10.0.2.2', requestedAddress: '10.0.2.15' }, { chaddr });
      expect(ack!.options.messageType).toBe(DhcpMessageType.Ack);
    }
    expect(leases.map((l) => l.mac)).toEqual(['02:00:00:00:02:01', '02:00:00:00:02:02']);
    // Only an address other than the guest's is refused.
    const nak = await c.send({ messageType: DhcpMessageType.Request, requestedAddress: '10.0.2.16' }, { chaddr: c.mac(3) });
    expect(nak!.options.messageType).toBe(DhcpMessageType.Nak);
  });
});

// ---------------------------------------------------------------------------
// As root: busybox udhcpc in a namespace, on a TAP whose far end is the stack.

const deviceSkip = deviceTestsUnavailable();
const busybox = ['/usr/bin/busybox', '/bin/busybox'].find((p) => existsSync(p));
const rootSkip = deviceSkip ?? (busybox ? null : 'busybox is not installed (apt-get install busybox)');
if (rootSkip) console.warn(`gateway-dhcp.test.ts: udhcpc tests skipped: ${rootSkip}`);
const maybe = rootSkip ? describe.skip : describe;

async function namespaceWithGateway(options: Partial<DhcpServerOptions>) {
  const ns = await Netns.create('tt-dhcp');
  cleanup.push(() => ns.delete());
  const dir = mkdtempSync(join(tmpdir(), 'tt-udhcpc-'));
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
  const tap = openTap({ name: 'tt0', netns: ns.path });
  const stack: Stack = createStack();
  cleanup.push(() => stack.close());
  stack.addInterface({ link: tap, ipv4: '10.0.2.2/24', mac: GATEWAY_MAC });
  const server = new DhcpServer(stack, {
    serverAddress: '10.0.2.2', subnet: '10.0.2.0/24', router: '10.0.2.2', dns: ['10.0.2.3'], ...options,
  });
  cleanup.push(() => server.close());
  await server.start();
  const leases: DhcpLease[] = [];
  server.on('lease', (l) => leases.push(l));
  const mac = (await ns.exec('cat', ['/sys/class/net/tt0/address'])).trim();
  return { ns, dir, stack, server, leases, mac };
}

maybe('DhcpServer and busybox udhcpc in a namespace', () => {
  it('leases an address, router, DNS and MTU that udhcpc applies; renews; a second client id gets the next address; release', async () => {
    const { ns, dir, server, leases, mac } = await namespaceWithGateway({
      range: { start: '10.0.2.15', end: '10.0.2.20' }, mtu: 1400, domain: 'sandbox.test', leaseSeconds: 600,
    });
    const first = udhcpcScript(dir, 'first', true);
    const t0 = performance.now();
    const client = ns.spawn(busybox!, ['udhcpc', '-i', 'tt0', '-f', '-t', '5', '-T', '1', '-s', first.path]);
    let out = '';
    client.stdout!.on('data', (d: Buffer) => (out += d));
    client.stderr!.on('data', (d: Buffer) => (out += d));
    await waitFor(() => first.events().some((e) => e.event === 'bound'), 15_000, `udhcpc to bind (${out})`);
    console.log(`udhcpc: DISCOVER to bound in ${(performance.now() - t0).toFixed(0)} ms`);
    expect(first.events().find((e) => e.event === 'bound')).toMatchObject({
      ip: '10.0.2.15', mask: '24', subnet: '255.255.255.0', broadcast: '10.0.2.255', router: '10.0.2.2', dns: '10.0.2.3',
      domain: 'sandbox.test', mtu: '1400', lease: '600', serverid: '10.0.2.2',
    });
    expect(await ns.exec('ip', ['-4', '-o', 'addr', 'show', 'dev', 'tt0'])).toContain('inet 10.0.2.15/24');
    expect(await ns.exec('ip', ['route', 'show', 'default'])).toMatch(/^default via 10\.0\.2\.2 dev tt0/);
    expect(await ns.exec('ip', ['link', 'show', 'dev', 'tt0'])).toContain('mtu 1400');
    expect(await ns.exec('ping', ['-c', '1', '-W', '2', '10.0.2.2'])).toMatch(/1 received/);
    expect(leases).toEqual([expect.objectContaining({ address: '10.0.2.15', mac, clientId: `01${mac.replace(/:/g, '')}`, renewed: false })]);

    // SIGUSR1: udhcpc renews at once, by unicast from its address; the ACK comes back by unicast.
    client.kill('SIGUSR1');
    await waitFor(() => first.events().some((e) => e.event === 'renew'), 10_000, `udhcpc to renew (${out})`);
    expect(first.events().find((e) => e.event === 'renew')).toMatchObject({ ip: '10.0.2.15', mtu: '1400' });
    expect(leases[1]).toMatchObject({ address: '10.0.2.15', renewed: true });

    // Another client id on the same link (logged, not applied) is offered the next address.
    const second = udhcpcScript(dir, 'second', false);
    await ns.exec(busybox!, ['udhcpc', '-i', 'tt0', '-f', '-q', '-n', '-t', '5', '-T', '1', '-s', second.path, '-x', '0x3d:01aabbccddeeff'], { timeout: 20_000 });
    expect(second.events().find((e) => e.event === 'bound')).toMatchObject({ ip: '10.0.2.16', router: '10.0.2.2', mtu: '1400' });
    expect(leases[2]).toMatchObject({ address: '10.0.2.16', clientId: '01aabbccddeeff' });
    expect(server.leases().map((l) => l.address).sort()).toEqual(['10.0.2.15', '10.0.2.16']);

    // SIGUSR2: the first client releases its lease (and deconfigures).
    const released = once(server, 'release');
    client.kill('SIGUSR2');
    expect((await released)[0]).toMatchObject({ address: '10.0.2.15', mac });
    client.kill('SIGTERM');
    await once(client, 'exit');

    // Started again, the first client gets its address back.
    const again = udhcpcScript(dir, 'again', false);
    await ns.exec(busybox!, ['udhcpc', '-i', 'tt0', '-f', '-q', '-n', '-t', '5', '-T', '1', '-s', again.path], { timeout: 20_000 });
    expect(again.events().find((e) => e.event === 'bound')).toMatchObject({ ip: '10.0.2.15' });
    console.log(`DhcpServer stats: ${JSON.stringify(server.stats)}`);
  }, 60_000);

  it('answers a client that asks for broadcast replies (udhcpc -B) with the guest address', async () => {
    const { ns, dir, leases } = await namespaceWithGateway({ guest: '10.0.2.15', mtu: 1500 });
    const s = udhcpcScript(dir, 'bcast', false);
    await ns.exec(busybox!, ['udhcpc', '-i', 'tt0', '-f', '-q', '-n', '-B', '-t', '5', '-T', '1', '-s', s.path], { timeout: 20_000 });
    expect(s.events().find((e) => e.event === 'bound')).toMatchObject({ ip: '10.0.2.15', router: '10.0.2.2', dns: '10.0.2.3', mtu: '1500' });
    expect(leases).toHaveLength(1);
  }, 30_000);
});
