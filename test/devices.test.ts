import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { createStack, type Stack } from '../src/index.js';
import { openTap, openTun } from '../src/node/links.js';
import { pcapFile } from '../src/node/pcap.js';
import { deviceTestsUnavailable, Netns, waitFor } from './support/netns.js';
import { transfer } from './support/transfer.js';

const skip = deviceTestsUnavailable();
if (skip) console.warn(`devices.test.ts skipped: ${skip}`);
const maybe = skip ? describe.skip : describe;
const run = promisify(execFile);
const PEER = new URL('./support/peer.mjs', import.meta.url).pathname;

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

/** A namespace with a TAP (or TUN) whose other end is one of our stacks. */
async function bench(options: { tun?: boolean; mtu?: number; pcap?: string; offload?: boolean } = {}) {
  const ns = await Netns.create('tt-dev');
  cleanup.push(() => ns.delete());
  const mtu = options.mtu ?? 1500;
  const device = (options.tun ? openTun : openTap)({ name: 'tt0', netns: ns.path, mtu, offload: options.offload });
  const link = options.pcap ? pcapFile(device, options.pcap) : device;
  const stack = createStack();
  cleanup.push(() => stack.close());
  await ns.exec('ip', ['addr', 'add', '10.77.0.1/24', 'dev', 'tt0']);
  await ns.exec('ip', ['-6', 'addr', 'add', 'fd77::1/64', 'dev', 'tt0', 'nodad']);
  stack.addInterface({ link, ipv4: '10.77.0.2/24', ipv6: 'fd77::2/64', mac: options.tun ? undefined : '02:00:00:00:77:02' });
  return { ns, stack, device };
}

async function peer(ns: Netns, args: string[]) {
  const child = ns.spawn(process.execPath, [PEER, ...args]);
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d));
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d));
  const result = once(child, 'exit').then(([code]) => {
    if (code !== 0) throw new Error(`peer ${args.join(' ')} exited ${code}: ${err}`);
    return JSON.parse(out.trim().split('\n').pop()!) as { sent: number; sentSha256: string; received: number; receivedSha256: string };
  });
  if (args[0] === 'serve') await waitFor(() => out.includes('listening'), 10_000, 'peer to listen');
  // Wrapped: returning the promise itself would make callers wait for the exit.
  return { result };
}

maybe('TAP and TUN against the Linux kernel', () => {
  it('the kernel pings the stack over IPv4 and IPv6, and both learn each other', async () => {
    const { ns, stack } = await bench();
    const v4 = await ns.exec('ping', ['-c', '3', '-i', '0.2', '-W', '2', '10.77.0.2']);
    expect(v4).toMatch(/3 received/);
    const v6 = await ns.exec('ping', ['-6', '-c', '3', '-i', '0.2', '-W', '2', 'fd77::2']);
    expect(v6).toMatch(/3 received/);
    const rtt = /rtt min\/avg\/max\/mdev = [\d.]+\/([\d.]+)/.exec(v4)?.[1];
    console.log(`kernel -> stack ping over TAP: avg ${rtt} ms`);
    expect(await stack.ping('10.77.0.1')).toBeGreaterThanOrEqual(0);

    const ours = stack.neighbors.list();
    expect(ours.some((n) => n.family === 4 && n.address === '10.77.0.1')).toBe(true);
    expect(ours.some((n) => n.family === 6 && n.address === 'fd77::1')).toBe(true);
    const theirs = await ns.exec('ip', ['neigh', 'show', 'dev', 'tt0']);
    expect(theirs).toContain('10.77.0.2 lladdr 02:00:00:00:77:02');
    expect(theirs).toContain('fd77::2 lladdr 02:00:00:00:77:02');
  });

  it('curl in the namespace fetches from node:http on the stack, and the stack fetches from a server in the namespace', async () => {
    const { ns, stack } = await bench();
    const app = http.createServer((req, res) => res.end(`hello ${req.url}`));
    stack.createServer((s) => app.emit('connection', s)).listen(8080);
    expect(await ns.exec('curl', ['-sS', '--max-time', '10', 'http://10.77.0.2:8080/from-curl'])).toBe('hello /from-curl');
    expect(await ns.exec('curl', ['-sS', '-g', '--max-time', '10', 'http://[fd77::2]:8080/six'])).toBe('hello /six');

    const dir = mkdtempSync(join(tmpdir(), 'tt-www-'));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    writeFileSync(join(dir, 'index.txt'), 'served-by-python\n');
    const py = ns.spawn('python3', ['-m', 'http.server', '8000', '--bind', '10.77.0.1', '--directory', dir]);
    py.stderr!.resume();
    await waitFor(async () => (await ns.exec('ss', ['-ltn'])).includes('10.77.0.1:8000'), 10_000, 'python http.server');
    const body = await new Promise<string>((resolve, reject) => {
      http.get({ host: '10.77.0.1', port: 8000, path: '/index.txt', agent: stack.httpAgent() }, (res) => {
        let t = '';
        res.on('data', (d: Buffer) => (t += d));
        res.on('end', () => resolve(t));
      }).on('error', reject);
    });
    expect(body).toBe('served-by-python\n');
  });

  for (const [mtu, offload] of [[1500, false], [65520, false], [1500, true]] as const) {
    const how = offload ? ' with offload, as GSO superframes both ways' : '';
    it(`moves 1 GiB each way between a kernel process and the stack at MTU ${mtu}${how}`, async () => {
      const { ns, stack, device } = await bench({ mtu, offload });
      expect(device.inPlace).toBe(true); // frames are read straight into the stack's memory
      const size = 1024 * 1024 * 1024;
      // Upload: the stack connects to the kernel peer; both send 1 GiB at once.
      const { result: remote } = await peer(ns, ['serve', '9000', String(size)]);
      const sock = stack.connect({ port: 9000, host: '10.77.0.1', allowHalfOpen: true });
      await once(sock, 'connect');
      const ours = await transfer(sock, size);
      const theirs = await remote;
      expect(theirs.received).toBe(size);
      expect(theirs.receivedSha256).toBe(ours.sentSha256);
      expect(ours.received).toBe(size);
      expect(ours.receivedSha256).toBe(theirs.sentSha256);
      const c = device.counters;
      if (offload) {
        expect(c.rxGso).toBeGreaterThan(0);
        expect(c.txGso).toBeGreaterThan(0);
      }
      expect(c.rxBadOffload + c.txBadOffload + c.txErrors).toBe(0);
      const gbits = (2 * size * 8) / ours.seconds / 1e9;
      console.log(`TAP MTU ${mtu}${offload ? ' offload' : ''}: 1 GiB each way at once in ${ours.seconds.toFixed(2)} s, ${gbits.toFixed(2)} Gbit/s combined; GSO frames ${c.rxGso} in, ${c.txGso} out`);
    }, 180_000);
  }

  it('with offload: ping (also larger than the MTU, both families), UDP larger than the MTU both ways, and curl to node:http', async () => {
    const { ns, stack, device } = await bench({ offload: true });
    expect(await ns.exec('ping', ['-c', '2', '-i', '0.2', '-W', '2', '10.77.0.2'])).toMatch(/2 received/);
    expect(await ns.exec('ping', ['-c', '2', '-i', '0.2', '-W', '2', '-s', '4000', '10.77.0.2'])).toMatch(/2 received/);
    expect(await ns.exec('ping', ['-6', '-c', '2', '-i', '0.2', '-W', '2', '-s', '4000', 'fd77::2'])).toMatch(/2 received/);

    // UDP: 4000-byte datagrams, fragmented at MTU 1500 both ways (no UFO/USO is negotiated).
    const udp = stack.createSocket('udp4');
    udp.bind(7000);
    await once(udp, 'listening');
    const echoed = new Promise<number>((resolve) => udp.once('message', (msg: Buffer, rinfo: { port: number; address: string }) => {
      udp.send(msg, rinfo.port, rinfo.address);
      resolve(msg.length);
    }));
    const client = `
      const s = require('dgram').createSocket('udp4');
      s.on('message', (m) => { console.log(m.length); process.exit(0); });
      s.bind(() => s.send(Buffer.alloc(4000, 7), 7000, '10.77.0.2'));
      setTimeout(() => { console.log('timeout'); process.exit(1); }, 5000);`;
    const out = await ns.exec(process.execPath, ['-e', client]);
    expect(await echoed).toBe(4000);
    expect(out.trim()).toBe('4000');
    udp.close();

    const body = Buffer.alloc(8 << 20, 'x');
    const app = http.createServer((req, res) => res.end(req.url === '/big' ? body : `hello ${req.url}`));
    stack.createServer((s) => app.emit('connection', s)).listen(8080);
    expect(await ns.exec('curl', ['-sS', '--max-time', '10', 'http://10.77.0.2:8080/offload'])).toBe('hello /offload');
    expect(await ns.exec('curl', ['-sS', '-g', '--max-time', '10', 'http://[fd77::2]:8080/six'])).toBe('hello /six');
    const got = await ns.exec('sh', ['-c', 'curl -sS --max-time 20 http://10.77.0.2:8080/big | sha256sum']);
    expect(got.split(' ')[0]).toBe(createHash('sha256').update(body).digest('hex'));
    expect(device.counters.rxBadOffload + device.counters.txBadOffload).toBe(0);
  }, 60_000);

  it('works over TUN (medium ip): ping and TCP', async () => {
    const { ns, stack } = await bench({ tun: true });
    expect(await ns.exec('ping', ['-c', '2', '-i', '0.2', '-W', '2', '10.77.0.2'])).toMatch(/2 received/);
    expect(await ns.exec('ping', ['-6', '-c', '2', '-i', '0.2', '-W', '2', 'fd77::2'])).toMatch(/2 received/);
    const size = 32 * 1024 * 1024;
    const { result: remote } = await peer(ns, ['serve', '9001', String(size)]);
    const sock = stack.connect({ port: 9001, host: '10.77.0.1', allowHalfOpen: true });
    const ours = await transfer(sock, size);
    const theirs = await remote;
    expect(theirs.receivedSha256).toBe(ours.sentSha256);
    expect(ours.receivedSha256).toBe(theirs.sentSha256);
  }, 60_000);

  it('writes a pcap that tcpdump reads, showing the handshake', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tt-pcap-'));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, 'tap.pcap');
    const { ns, stack } = await bench({ pcap: file });
    stack.createServer((s) => s.end('hi')).listen(7000);
    expect(await ns.exec('sh', ['-c', 'nc -N -w 5 10.77.0.2 7000 < /dev/null'])).toBe('hi');
    stack.close(); // closes the link, which closes the file
    const { stdout } = await run('tcpdump', ['-nn', '-r', file, 'tcp port 7000']);
    expect(stdout).toMatch(/10\.77\.0\.1\.\d+ > 10\.77\.0\.2\.7000: Flags \[S\]/);
    expect(stdout).toMatch(/10\.77\.0\.2\.7000 > 10\.77\.0\.1\.\d+: Flags \[S\.\]/);
    expect(stdout).toMatch(/10\.77\.0\.1\.\d+ > 10\.77\.0\.2\.7000: Flags \[\.\]/);
  });

  it('takes an address, route and DNS server from a stock DHCP server (busybox udhcpd)', async () => {
    const ns = await Netns.create('tt-dhcp');
    cleanup.push(() => ns.delete());
    const tap = openTap({ name: 'tt0', netns: ns.path });
    await ns.exec('ip', ['addr', 'add', '10.77.0.1/24', 'dev', 'tt0']);
    const dir = mkdtempSync(join(tmpdir(), 'tt-udhcpd-'));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    const conf = join(dir, 'udhcpd.conf');
    writeFileSync(conf, ['start 10.77.0.100', 'end 10.77.0.150', 'interface tt0', 'opt subnet 255.255.255.0', 'opt router 10.77.0.1',
      'opt dns 10.77.0.53', `lease_file ${dir}/leases`, `pidfile ${dir}/pid`, ''].join('\n'));
    writeFileSync(join(dir, 'leases'), '');
    const server = ns.spawn('busybox', ['udhcpd', '-f', conf]);
    server.stderr!.resume();
    server.stdout!.resume();
    const stack = createStack();
    cleanup.push(() => stack.close());
    const iface = stack.addInterface({ link: tap, dhcp: true });
    await waitFor(() => iface.ipv4 !== null, 15_000, 'a DHCP lease');
    const v4 = iface.ipv4!;
    expect(v4.address).toMatch(/^10\.77\.0\.1[0-5]\d$/);
    expect(v4.prefixLength).toBe(24);
    expect(v4.gateway).toBe('10.77.0.1');
    expect(stack.dnsServers).toContain('10.77.0.53');
    expect(stack.routes.list()).toContainEqual(expect.objectContaining({ prefix: '0.0.0.0/0', gateway: '10.77.0.1', interface: iface.name }));
    expect(await stack.ping('10.77.0.1')).toBeGreaterThanOrEqual(0);
  }, 30_000);

  it('opening a TAP in a namespace that does not exist names the path', () => {
    expect(() => openTap({ netns: '/run/netns/tt-does-not-exist' })).toThrow(/\/run\/netns\/tt-does-not-exist/);
    try {
      openTap({ netns: '/run/netns/tt-does-not-exist' });
    } catch (e) {
      expect((e as NodeJS.ErrnoException).code).toBe('ENOENT');
    }
  });

  it('closing a link twice is harmless, and closing it under traffic leaves the stack usable', async () => {
    const { ns, stack, device } = await bench();
    const size = 256 * 1024 * 1024;
    const { result: remote } = await peer(ns, ['serve', '9002', String(size)]);
    const sock = stack.connect({ port: 9002, host: '10.77.0.1', allowHalfOpen: true });
    sock.on('error', () => undefined);
    await once(sock, 'connect');
    sock.resume();
    sock.write(Buffer.alloc(8 * 1024 * 1024));
    await new Promise((r) => setTimeout(r, 100));
    device.close();
    device.close();
    stack.interfaces[0]!.remove();
    void remote.catch(() => undefined);
    // The stack goes on: a new TAP in a new namespace works.
    const ns2 = await Netns.create('tt-dev2');
    cleanup.push(() => ns2.delete());
    const tap2 = openTap({ name: 'tt1', netns: ns2.path });
    await ns2.exec('ip', ['addr', 'add', '10.78.0.1/24', 'dev', 'tt1']);
    stack.addInterface({ link: tap2, ipv4: '10.78.0.2/24' });
    expect(await ns2.exec('ping', ['-c', '1', '-W', '2', '10.78.0.2'])).toMatch(/1 received/);
    expect(stack.closed).toBe(false);
  }, 60_000);
});

export type { Stack };
