// A real QEMU guest (Debian's kernel, a busybox initramfs built by
// test/support/qemu-guest.ts, virtio-net) networking through tcpip-ts as a VM
// runtime would use it: QEMU's -netdev stream (tcpip-ts listening, QEMU
// server=off), -netdev dgram (unix datagram sockets), and the gateway, with
// the VM killed mid-transfer and restarted on the same socket paths in the
// same process. KVM when /dev/kvm works, else TCG (printed). Traffic stays on
// this machine: the guest's peers are stacks in this process and servers on
// the host's loopback; sockets live in a temp directory removed afterwards.
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createStack, type Stack } from '../src/index.js';
import { StreamLink } from '../src/node/stream-link.js';
import { openUnixDgram } from '../src/node/links.js';
import { createGateway } from '../src/gateway/gateway.js';
import { accelerator, Guest, guestFiles, guestUnavailable, type GuestFiles } from './support/qemu-guest.js';

const unavailable = guestUnavailable();
if (unavailable) console.warn(`test/qemu.test.ts skipped: ${unavailable}`);

const MiB = 1 << 20;
const BIG = 64 * MiB;

const cleanup: (() => void | Promise<void>)[] = [];
let files: GuestFiles;
let dir: string;
let data: Buffer;
let dataSha: string;

beforeAll(() => {
  if (unavailable) return;
  files = guestFiles(process.cwd());
  dir = mkdtempSync(join(tmpdir(), 'tt-qemu-'));
  data = randomBytes(BIG);
  dataSha = createHash('sha256').update(data).digest('hex');
  console.log(`qemu: ${accelerator() === 'kvm' ? 'KVM' : 'TCG (no usable /dev/kvm: emulated, slower)'}`);
}, 300_000);

afterAll(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function guest(netdevs: string[], macs: string[], mtu?: number, fds?: net.Socket[]): Guest {
  const g = new Guest({ files, netdevs, macs, mtu, fds });
  cleanup.push(() => g.kill());
  return g;
}

/** Serves `bytes` to every connection on a stack's port, then FIN. */
function serveOnStack(stack: Stack, port: number, bytes: Buffer): void {
  stack.createServer({ allowHalfOpen: true }, (s) => {
    s.on('error', () => undefined);
    s.end(bytes);
  }).listen(port);
}

/** A host server on loopback: sends `bytes` (or, with null, an endless stream) to each connection. */
async function hostServer(host: string, bytes: Buffer | null, onSocket?: (s: net.Socket) => void): Promise<number> {
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    s.on('error', () => undefined);
    onSocket?.(s);
    if (bytes) {
      s.end(bytes);
      return;
    }
    const chunk = Buffer.alloc(256 * 1024);
    const pump = () => {
      while (!s.destroyed && s.writable && s.write(chunk));
    };
    s.on('drain', pump);
    pump();
  });
  server.listen(0, host);
  await once(server, 'listening');
  cleanup.push(() => void server.close());
  return (server.address() as net.AddressInfo).port;
}

/** The guest fetches from host:port with nc; the sha256 of what arrived (equal sha256s mean equal lengths too). */
async function fetchSha(g: Guest, host: string, port: number, ms = 120_000): Promise<{ sha: string; seconds: number }> {
  const t = Date.now();
  const r = await g.ok(`nc ${host} ${port} </dev/null | sha256sum`, ms);
  const m = /\b([0-9a-f]{64})\b/.exec(r);
  if (!m) throw new Error(`unexpected fetch output: ${r}`);
  return { sha: m[1]!, seconds: (Date.now() - t) / 1000 };
}

describe.skipIf(unavailable !== null)('a QEMU guest over tcpip-ts links', () => {
  it('four NICs: -netdev stream unix (we listen, server=off), -netdev dgram, -netdev stream TCP (QEMU listens, server=on), -netdev socket,fd=3 as socket_vmnet_client passes it: ping over each, 64 MiB over the first two, sha256 intact (MTU 65520)', async () => {
    const mtu = 65520;
    const streamPath = join(dir, 'stream.sock');
    const dgramOurs = join(dir, 'dgram.sock');
    const dgramVm = join(dir, 'dgram-vm.sock');
    const vmnetPath = join(dir, 'socket_vmnet');
    const stacks: Stack[] = [];
    const stackOn = (link: Parameters<Stack['addInterface']>[0]['link'], subnet: number) => {
      const stack = createStack();
      stack.addInterface({ link, ipv4: `10.0.${subnet}.1/24`, mac: `02:00:00:00:0${subnet}:01` });
      stacks.push(stack);
      cleanup.push(() => stack.close());
      return stack;
    };
    const a = stackOn(await StreamLink.listen({ path: streamPath }, { mtu }), 9);
    const b = stackOn(openUnixDgram({ path: dgramOurs, mtu }), 8);
    // socket_vmnet's side: a listener at its socket path; socket_vmnet_client
    // connects there and hands QEMU the connected socket as fd 3.
    const d = stackOn(await StreamLink.listen({ path: vmnetPath }, { mtu }), 6);
    const client = net.connect(vmnetPath);
    await once(client, 'connect');
    const tcpPort = await freePort();
    serveOnStack(a, 5000, data);
    serveOnStack(b, 5000, data);
    const small = data.subarray(0, 8 * MiB);
    const smallSha = createHash('sha256').update(small).digest('hex');
    serveOnStack(d, 5000, small);

    const g = guest([
      `stream,server=off,addr.type=unix,addr.path=${streamPath}`,
      `dgram,local.type=unix,local.path=${dgramVm},remote.type=unix,remote.path=${dgramOurs}`,
      `stream,server=on,addr.type=inet,addr.host=127.0.0.1,addr.port=${tcpPort}`,
      'socket,fd=3',
    ], ['52:54:00:00:09:02', '52:54:00:00:08:02', '52:54:00:00:07:02', '52:54:00:00:06:02'], mtu, [client]);
    client.destroy(); // QEMU has its own copy of the fd now
    // server=on: QEMU listens; we connect once it does (before the guest has booted).
    const c = stackOn(await retryConnect(tcpPort, mtu), 7);
    serveOnStack(c, 5000, small);
    await g.booted();
    await g.ok('for i in 0 1 2 3; do ip addr add 10.0.$((9 - i)).2/24 dev eth$i; done');
    for (const subnet of [9, 8, 7, 6]) expect(await g.ok(`ping -c 2 -W 5 10.0.${subnet}.1`)).toMatch(/2 packets received/);
    const overStream = await fetchSha(g, '10.0.9.1', 5000);
    expect(overStream.sha).toBe(dataSha);
    const overDgram = await fetchSha(g, '10.0.8.1', 5000);
    expect(overDgram.sha).toBe(dataSha);
    expect((await fetchSha(g, '10.0.7.1', 5000)).sha).toBe(smallSha);
    expect((await fetchSha(g, '10.0.6.1', 5000)).sha).toBe(smallSha);
    console.log(`qemu: 64 MiB at MTU 65520 over stream in ${overStream.seconds.toFixed(1)} s, over dgram in ${overDgram.seconds.toFixed(1)} s`);
    await g.kill();
  }, 180_000);

  it.each(['stream', 'dgram'] as const)('through the gateway over %s (MTU 65520): DHCP lease, ping, DNS, 64 MiB from the host loopback, IPv6; killed mid-transfer its flows end within a second; restarted on the same paths it gets the same lease', async (kind) => {
    const ours = join(dir, `gw-${kind}.sock`);
    const vmSide = join(dir, `gw-${kind}-vm.sock`);
    const mtu = 65520;
    const link = kind === 'stream' ? await StreamLink.listen({ path: ours }, { mtu }) : openUnixDgram({ path: ours, mtu });
    const gw = createGateway({ link, hostLoopback: true, ipv6: true, hosts: { 'host.test': ['10.0.2.2'] } });
    cleanup.push(() => gw.close());
    await gw.ready;
    const port4 = await hostServer('127.0.0.1', data);
    const small = data.subarray(0, 8 * MiB);
    const smallSha = createHash('sha256').update(small).digest('hex');
    const port6 = await hostServer('::1', small);
    const portSmall = await hostServer('127.0.0.1', small);
    let hostSocket: net.Socket | null = null;
    let hostClosedAt = 0;
    const endless = await hostServer('127.0.0.1', null, (s) => {
      hostSocket = s;
      s.once('close', () => (hostClosedAt = Date.now()));
    });
    const netdev = kind === 'stream'
      ? `stream,server=off,addr.type=unix,addr.path=${ours}`
      : `dgram,local.type=unix,local.path=${vmSide},remote.type=unix,remote.path=${ours}`;
    const boot = async () => {
      const g = guest([netdev], ['52:54:00:00:02:64'], mtu);
      await g.booted();
      const lease = await g.ok('udhcpc -i eth0 -n -q -t 10 -T 1 -s /etc/udhcpc.script', 60_000);
      return { g, lease: /LEASE (\S+)/.exec(lease)?.[1], mtu: /mtu (\d+)/.exec(lease)?.[1] };
    };

    const first = await boot();
    expect(first).toMatchObject({ lease: '10.0.2.100/24', mtu: '65520' });
    expect(gw.dhcp.leases().map((l) => l.address)).toEqual(['10.0.2.100']);
    const g = first.g;
    expect(await g.ok('ping -c 2 -W 5 10.0.2.2')).toMatch(/2 packets received/);
    expect(await g.ok('nslookup host.test 10.0.2.3')).toMatch(/Address:?\s+10\.0\.2\.2/);
    const v4 = await fetchSha(g, '10.0.2.2', port4);
    expect(v4.sha).toBe(dataSha);
    // IPv6: the guest's kernel takes fd00::/64 from the gateway's router advertisements.
    await g.ok('for i in $(seq 100); do ip -6 addr show dev eth0 scope global | grep -q "inet6 fd00:" && ! ip -6 addr show dev eth0 | grep -q tentative && break; sleep 0.1; done; ip -6 addr show dev eth0 scope global | grep "inet6 fd00:"', 30_000);
    expect(await g.ok('ping6 -c 2 -W 5 fd00::2')).toMatch(/2 packets received/);
    expect((await fetchSha(g, 'fd00::2', port6)).sha).toBe(smallSha);

    // Killed in the middle of a download.
    await g.ok(`nc 10.0.2.2 ${endless} </dev/null >/dev/null & sleep 1`);
    await waitFor(() => gw.metrics().tcpOpen === 1 && hostSocket !== null && hostSocket.bytesWritten > MiB, 20_000, 'the download to run');
    const downs: string[] = [];
    link.on('down', (reason) => downs.push(reason));
    const killedAt = Date.now();
    await g.kill();
    await waitFor(() => gw.metrics().tcpOpen === 0 && hostClosedAt > 0, 2000, 'the flow to end');
    expect(downs).toEqual(['peer']);
    expect(hostClosedAt - killedAt).toBeLessThan(1000);
    expect(gw.dhcp.leases()).toEqual([]);
    expect(gw.interface.linkUp).toBe(false);

    // The runtime restarts the VM on the same socket paths; this process carries on.
    const second = await boot();
    expect(second.lease).toBe('10.0.2.100/24');
    expect(gw.interface.linkUp).toBe(true);
    expect(await second.g.ok('ping -c 1 -W 5 10.0.2.2')).toMatch(/1 packets received/);
    expect((await fetchSha(second.g, '10.0.2.2', portSmall)).sha).toBe(smallSha);
    await second.g.kill();
    console.log(`qemu: gateway over ${kind}: 64 MiB from the host in ${v4.seconds.toFixed(1)} s; host socket closed ${hostClosedAt - killedAt} ms after the kill`);
  }, 240_000);
});

async function freePort(): Promise<number> {
  const s = net.createServer().listen(0, '127.0.0.1');
  await once(s, 'listening');
  const { port } = s.address() as net.AddressInfo;
  await new Promise((r) => s.close(r));
  return port;
}

/** StreamLink.connect to a port QEMU is about to listen on. */
async function retryConnect(port: number, mtu: number): Promise<StreamLink> {
  const until = Date.now() + 20_000;
  for (;;) {
    try {
      return await StreamLink.connect({ port }, { mtu });
    } catch (err) {
      if (Date.now() > until) throw err;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

async function waitFor(cond: () => boolean, ms: number, what: string): Promise<void> {
  const until = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > until) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
