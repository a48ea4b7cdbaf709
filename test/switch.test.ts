import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { createCable, createGateway, createStack, createSwitch, ManualClock, type Link, type Stack } from '../src/index.js';
import { openTap } from '../src/node/links.js';
import { buildEthernetFrame } from '../src/wire/ethernet.js';
import { parseMac } from '../src/wire/address.js';
import { vlanTci } from '../src/wire/vlan.js';
import { deviceTestsUnavailable, Netns, waitFor } from './support/netns.js';

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

function stacks(n: number): Stack[] {
  const out = Array.from({ length: n }, () => createStack());
  cleanup.push(() => out.forEach((s) => s.close()));
  return out;
}

const mac = (i: number) => `02:00:00:00:00:${i.toString(16).padStart(2, '0')}`;

/** A frame from `src` to `dst` (MAC strings), of `size` bytes in all. */
function frame(dst: string, src: string, size = 60, etherType = 0x88b5): Uint8Array {
  return buildEthernetFrame({ dst: parseMac(dst)!, src: parseMac(src)!, etherType }, new Uint8Array(size - 14));
}

/** A cable end on a switch port whose received frames are recorded. */
function tapPort(sw: ReturnType<typeof createSwitch>, options: Parameters<ReturnType<typeof createSwitch>['createLink']>[0] = {}) {
  const link = sw.createLink(options);
  const got: Uint8Array[] = [];
  link.attach((f) => got.push(f.slice()));
  return { link, got, port: link.port };
}

/** Echo server on every stack, then a connection from every stack to every other one. */
async function everyPairTcp(all: Stack[], addresses: string[]): Promise<number> {
  for (const s of all) {
    const server = s.createServer((sock) => { sock.on('error', () => undefined); sock.pipe(sock); });
    server.listen(7);
    await once(server, 'listening');
  }
  let ok = 0;
  await Promise.all(all.flatMap((s, i) => addresses.map(async (to, j) => {
    if (i === j) return;
    const sock = s.connect(7, to);
    await once(sock, 'connect');
    const reply = once(sock, 'data');
    sock.write(`hello ${i}->${j}`);
    const [data] = await reply;
    expect(String(data)).toBe(`hello ${i}->${j}`);
    sock.destroy();
    ok++;
  })));
  return ok;
}

describe('switch', () => {
  it('8 stacks on one switch: every pair pings (IPv4, IPv6) and opens TCP; each learns the others', async () => {
    const sw = createSwitch();
    cleanup.push(() => sw.close());
    const all = stacks(8);
    all.forEach((s, i) => s.addInterface({ link: sw.createLink(), ipv4: `10.0.0.${i + 1}/24`, ipv6: `fd00::${i + 1}/64`, mac: mac(i + 1) }));
    const v4 = all.map((_, i) => `10.0.0.${i + 1}`);
    for (const [i, s] of all.entries()) {
      await Promise.all(v4.map((to, j) => (i === j ? 0 : s.ping(to))));
      await Promise.all(all.map((_, j) => (i === j ? 0 : s.ping(`fd00::${j + 1}`))));
    }
    expect(await everyPairTcp(all, v4)).toBe(56);
    for (const [i, s] of all.entries()) {
      const n = s.neighbors.list().filter((e) => e.family === 4);
      expect(n.map((e) => e.address).sort()).toEqual(v4.filter((_, j) => j !== i).sort());
      for (const e of n) expect(e.mac).toBe(mac(Number(e.address.split('.')[3])));
    }
    expect(sw.macTable.list().map((e) => e.mac).sort()).toEqual(all.map((_, i) => mac(i + 1)));
    expect(sw.macTable.list().every((e) => e.vlan === 1 && !e.static)).toBe(true);
    expect(sw.counters.forwarded).toBeGreaterThan(0);
    for (const p of sw.ports) expect(p.counters.rxFrames).toBeGreaterThan(0);
  });

  it('a gateway on one port serves DHCP through the switch; a datagram to 224.0.0.1 reaches every stack', async () => {
    const sw = createSwitch();
    cleanup.push(() => sw.close());
    const gw = createGateway({ link: sw.createLink(), hosts: {} });
    cleanup.push(() => gw.close());
    await gw.ready;
    const all = stacks(4);
    const dhcp = all[0]!.addInterface({ link: sw.createLink(), dhcp: true });
    all.slice(1).forEach((s, i) => s.addInterface({ link: sw.createLink(), ipv4: `10.0.2.${10 + i}/24`, gateway: '10.0.2.2' }));
    await new Promise<void>((resolve) => dhcp.on('address', () => dhcp.ipv4 && resolve()));
    expect(dhcp.ipv4).toMatchObject({ address: '10.0.2.100', gateway: '10.0.2.2' });
    for (const s of all) await s.ping('10.0.2.2');
    await all[1]!.ping('10.0.2.100');
    // A datagram to the all-hosts group (224.0.0.1) reaches every other stack.
    const got = all.map(() => 0);
    await Promise.all(all.map((s, i) => new Promise<void>((resolve) => {
      const sock = s.createSocket('udp4', () => got[i]!++);
      cleanup.push(() => { sock.close(); });
      sock.bind(9999, resolve);
    })));
    const tx = all[0]!.createSocket('udp4');
    cleanup.push(() => { tx.close(); });
    tx.send(Buffer.from('to all hosts'), 9999, '224.0.0.1');
    await waitFor(() => got.slice(1).every((n) => n === 1), 2000, `every stack to get the multicast datagram (${got})`);
  });

  it('floods broadcast and unknown unicast to every other port, forwards known unicast to one, never back out', () => {
    const sw = createSwitch();
    const ports = [tapPort(sw), tapPort(sw), tapPort(sw), tapPort(sw)];
    ports[0]!.link.send(frame('ff:ff:ff:ff:ff:ff', mac(1)));
    expect(ports.map((p) => p.got.length)).toEqual([0, 1, 1, 1]);
    // Unknown unicast floods too.
    ports[1]!.link.send(frame(mac(9), mac(2)));
    expect(ports.map((p) => p.got.length)).toEqual([1, 1, 2, 2]);
    // Known: only to the port it was learnt on.
    ports[2]!.link.send(frame(mac(1), mac(3)));
    expect(ports.map((p) => p.got.length)).toEqual([2, 1, 2, 2]);
    // Multicast (group bit) floods.
    ports[3]!.link.send(frame('33:33:00:00:00:01', mac(4)));
    expect(ports.map((p) => p.got.length)).toEqual([3, 2, 3, 2]);
    // A destination on the ingress port itself is filtered.
    ports[0]!.link.send(frame(mac(1), mac(5)));
    expect(ports.map((p) => p.got.length)).toEqual([3, 2, 3, 2]);
    expect(sw.counters).toMatchObject({ forwarded: 1, flooded: 3, filtered: 1 });
    // The delivered frame is the same bytes as sent.
    expect(ports[0]!.got[1]).toEqual(frame(mac(1), mac(3)));
  });

  it('relearns a MAC that moves to another port', () => {
    const sw = createSwitch();
    const [a, b, c] = [tapPort(sw, { name: 'a' }), tapPort(sw, { name: 'b' }), tapPort(sw, { name: 'c' })];
    a.link.send(frame('ff:ff:ff:ff:ff:ff', mac(1)));
    expect(sw.macTable.list()).toMatchObject([{ mac: mac(1), port: 'a' }]);
    c.link.send(frame(mac(1), mac(3)));
    expect([a.got.length, b.got.length]).toEqual([1, 1]);
    // The host now speaks from port b.
    b.link.send(frame(mac(3), mac(1)));
    expect(sw.macTable.list().find((e) => e.mac === mac(1))).toMatchObject({ port: 'b' });
    expect(sw.counters.moved).toBe(1);
    c.link.send(frame(mac(1), mac(3)));
    expect([a.got.length, b.got.length]).toEqual([1, 2]);
  });

  it('ages learnt entries out after the ageing time (manual clock); static entries stay; list, flush, delete', async () => {
    const clock = new ManualClock();
    const sw = createSwitch({ clock, ageing: 300 });
    const [a, b, c] = [tapPort(sw, { name: 'a' }), tapPort(sw, { name: 'b' }), tapPort(sw, { name: 'c' })];
    sw.macTable.add({ mac: mac(7), port: 'c' });
    a.link.send(frame('ff:ff:ff:ff:ff:ff', mac(1)));
    await clock.advance(299_000);
    expect(sw.macTable.list().find((e) => e.mac === mac(1))).toMatchObject({ port: 'a', age: 299, static: false });
    b.link.send(frame(mac(1), mac(2)));
    expect(c.got.length).toBe(1); // known: not flooded (c got only the first broadcast)
    await clock.advance(1_001);
    expect(sw.macTable.list().map((e) => e.mac).sort()).toEqual([mac(2), mac(7)]);
    b.link.send(frame(mac(1), mac(2)));
    expect(c.got.length).toBe(2); // aged out: flooded again
    await clock.advance(10_000_000);
    expect(sw.macTable.list()).toEqual([{ mac: mac(7), vlan: 1, port: 'c', static: true, age: 0 }]);
    a.link.send(frame(mac(7), mac(7)));
    expect(sw.macTable.list()).toEqual([expect.objectContaining({ mac: mac(7), port: 'c', static: true })]);
    b.link.send(frame(mac(8), mac(8)));
    expect(sw.macTable.flush()).toBe(1);
    expect(sw.macTable.delete(mac(7))).toBe(true);
    expect(sw.macTable.list()).toEqual([]);
  });

  it('counts and drops frames over a port MTU, in and out', () => {
    const sw = createSwitch();
    const a = tapPort(sw, { mtu: 9000 });
    const b = tapPort(sw, { mtu: 1500 });
    a.link.send(frame('ff:ff:ff:ff:ff:ff', mac(1), 1514));
    a.link.send(frame('ff:ff:ff:ff:ff:ff', mac(1), 1515));
    expect(b.got.length).toBe(1);
    expect(b.port.counters.txOversize).toBe(1);
    // A port's own MTU on input: the cable to a 1500 port already drops, so attach a bigger link.
    const [big, ours] = createCable({ mtu: 9000 });
    const small = sw.addPort(ours, { mtu: 1500 });
    big.attach(() => undefined);
    big.send(frame('ff:ff:ff:ff:ff:ff', mac(2), 1515));
    expect(small.counters.rxOversize).toBe(1);
    expect(a.got.length).toBe(0);
  });

  it('keeps VLANs apart; a trunk between two switches carries both, tagged', async () => {
    const left = createSwitch();
    const right = createSwitch();
    cleanup.push(() => { left.close(); right.close(); });
    const trunkFrames: number[] = [];
    const trunk = left.createLink({ trunk: [10, 20], name: 'trunk' });
    // Watch the trunk's wire: wrap the link the right switch sees.
    const watched: Link = {
      medium: 'ethernet', mtu: trunk.mtu,
      attach: (rx) => trunk.attach((f) => { trunkFrames.push(vlanTci(f) & 0xfff); rx(f); }),
      send: (f) => { trunkFrames.push(vlanTci(f) & 0xfff); trunk.send(f); },
      close: () => trunk.close(),
    };
    right.addPort(watched, { trunk: [10, 20] });
    const [l10, l20, r10, r20] = stacks(4);
    l10!.addInterface({ link: left.createLink({ vlan: 10 }), ipv4: '10.0.0.1/24' });
    l20!.addInterface({ link: left.createLink({ vlan: 20 }), ipv4: '10.0.0.2/24' });
    r10!.addInterface({ link: right.createLink({ vlan: 10 }), ipv4: '10.0.0.3/24' });
    r20!.addInterface({ link: right.createLink({ vlan: 20 }), ipv4: '10.0.0.4/24' });
    // Across the trunk, within a VLAN.
    await l10!.ping('10.0.0.3');
    await l20!.ping('10.0.0.4');
    await r20!.ping('10.0.0.2');
    // Between VLANs: nothing, on either switch.
    await expect(l10!.ping('10.0.0.2', { timeout: 300 })).rejects.toMatchObject({ code: 'ETIMEDOUT' });
    await expect(l10!.ping('10.0.0.4', { timeout: 300 })).rejects.toMatchObject({ code: 'ETIMEDOUT' });
    await expect(r10!.ping('10.0.0.2', { timeout: 300 })).rejects.toMatchObject({ code: 'ETIMEDOUT' });
    expect(new Set(trunkFrames)).toEqual(new Set([10, 20]));
    expect(left.macTable.list().filter((e) => e.port === 'trunk').map((e) => e.vlan).sort()).toEqual([10, 20]);
    // An access port drops tagged frames of a VLAN it is not in.
    const probe = tapPort(left, { vlan: 10 });
    const tagged = new Uint8Array(64);
    tagged.set(parseMac('ff:ff:ff:ff:ff:ff')!, 0);
    tagged.set(parseMac(mac(9))!, 6);
    tagged.set([0x81, 0x00, 0x00, 20, 0x88, 0xb5], 12);
    probe.link.send(tagged);
    expect(probe.port.counters.rxVlanDropped).toBe(1);
  });

  it('rejects bad options with a TypeError naming the option', () => {
    expect(() => createSwitch({ ageing: 0 })).toThrow(/"ageing"/);
    expect(() => createSwitch({ maxEntries: -1 })).toThrow(/"maxEntries"/);
    const sw = createSwitch();
    expect(() => sw.createLink({ vlan: 4095 })).toThrow(/"vlan"/);
    expect(() => sw.createLink({ trunk: [0] })).toThrow(/"trunk"/);
    expect(() => sw.createLink({ mtu: 100 })).toThrow(/"mtu"/);
    const [ipLink] = createCable({ medium: 'ip' });
    expect(() => sw.addPort(ipLink)).toThrow(/"link"/);
    sw.createLink({ name: 'x' });
    expect(() => sw.createLink({ name: 'x' })).toThrow(/"name"/);
    expect(() => sw.macTable.add({ mac: 'ff:ff:ff:ff:ff:ff', port: 'x' })).toThrow(/"mac"/);
    expect(() => sw.macTable.add({ mac: mac(1), port: 'nope' })).toThrow(/"port"/);
  });
});

const skip = deviceTestsUnavailable();
if (skip) console.warn(`switch.test.ts kernel tests skipped: ${skip}`);

(skip ? describe.skip : describe)('switch with the kernel on a TAP port', () => {
  it('8 stacks and a kernel namespace: every pair pings and opens TCP; ARP tables show each other', async () => {
    const ns = await Netns.create('tt-sw');
    cleanup.push(() => ns.delete());
    const sw = createSwitch();
    cleanup.push(() => sw.close());
    sw.addPort(openTap({ name: 'tt0', netns: ns.path }), { name: 'kernel' });
    await ns.exec('ip', ['addr', 'add', '10.0.0.100/24', 'dev', 'tt0']);
    const kernelMac = JSON.parse(await ns.exec('ip', ['-j', 'link', 'show', 'tt0']))[0].address as string;
    const all = stacks(8);
    all.forEach((s, i) => s.addInterface({ link: sw.createLink(), ipv4: `10.0.0.${i + 1}/24`, mac: mac(i + 1) }));
    const v4 = [...all.map((_, i) => `10.0.0.${i + 1}`), '10.0.0.100'];
    for (const [i, s] of all.entries()) await Promise.all(v4.map((to, j) => (i === j ? 0 : s.ping(to))));
    const pings = await ns.exec('sh', ['-c', v4.slice(0, 8).map((a) => `ping -c 1 -W 2 ${a} >/dev/null && echo ok`).join('; ')]);
    expect(pings.trim().split('\n')).toEqual(Array(8).fill('ok'));
    // TCP among the stacks, stacks → kernel, kernel → stacks (echo on port 7 everywhere).
    const echo = ns.spawn(process.execPath, ['-e', `require('net').createServer((s) => { s.on('error', () => {}); s.pipe(s); }).listen(7, () => console.log('listening'))`]);
    let out = '';
    echo.stdout!.on('data', (d: Buffer) => (out += d));
    await waitFor(() => out.includes('listening'), 10_000, 'the echo server in the namespace');
    expect(await everyPairTcp(all, v4.slice(0, 8))).toBe(56);
    await Promise.all(all.map(async (s) => {
      const sock = s.connect(7, '10.0.0.100');
      await once(sock, 'connect');
      const reply = once(sock, 'data');
      sock.write('to the kernel');
      expect(String((await reply)[0])).toBe('to the kernel');
      sock.destroy();
    }));
    const fromKernel = await ns.exec(process.execPath, ['-e', `
      const net = require('net');
      Promise.all(process.argv.slice(1).map((h) => new Promise((ok, fail) => {
        const s = net.connect(7, h, () => s.write('from the kernel'));
        s.on('data', (d) => { ok(String(d)); s.destroy(); }); s.on('error', fail);
      }))).then((r) => console.log(JSON.stringify(r)));`, ...v4.slice(0, 8)]);
    expect(JSON.parse(fromKernel)).toEqual(Array(8).fill('from the kernel'));
    // The kernel's ARP table has every stack's MAC; every stack has the kernel's.
    const neigh = JSON.parse(await ns.exec('ip', ['-j', 'neigh', 'show', 'dev', 'tt0'])) as { dst: string; lladdr: string }[];
    for (let i = 0; i < 8; i++) expect(neigh.find((n) => n.dst === `10.0.0.${i + 1}`)?.lladdr).toBe(mac(i + 1));
    for (const s of all) expect(s.neighbors.list().find((n) => n.address === '10.0.0.100')?.mac).toBe(kernelMac);
    expect(sw.macTable.list().find((e) => e.mac === kernelMac)?.port).toBe('kernel');
  }, 60_000);
});
