/**
 * Guest <-> host TCP through the gateway, over QEMU's -netdev stream and
 * -netdev dgram, next to QEMU's own user-mode networking (-netdev user,
 * libslirp) on the same guest (test/support/qemu-guest.ts: Debian's kernel,
 * a busybox initramfs). The guest fetches from, and sends to, a server on the
 * host's loopback with busybox nc; the host side times each transfer from its
 * first byte to its last. KVM when /dev/kvm works, else TCG (said in the
 * output: TCG figures measure QEMU's emulator as much as the link).
 *
 *   node_modules/.bin/vite-node bench/qemu.ts [-- --mib 64] [--json FILE]
 */
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import '../src/index.js'; // loads the wasm module from disk
import { StreamLink } from '../src/node/stream-link.js';
import { openUnixDgram } from '../src/node/links.js';
import { createGateway, type Gateway } from '../src/gateway/gateway.js';
import { accelerator, Guest, guestFiles, guestUnavailable } from '../test/support/qemu-guest.js';

const args = process.argv.slice(2);
const mib = Number(args[args.indexOf('--mib') + 1] ?? 0) || 64;
const jsonOut = args.includes('--json') ? args[args.indexOf('--json') + 1] : null;
const MiB = 1 << 20;

interface Row {
  link: string;
  mtu: number;
  direction: 'host → guest' | 'guest → host';
  gbps: number;
  seconds: number;
}

/** A host server timing each connection from its first byte to its last: sends `bytes` (host → guest) or counts what comes (guest → host). */
async function hostServer(send: Buffer | null): Promise<{ port: number; next: () => Promise<{ bytes: number; seconds: number }>; close: () => void }> {
  const waiting: ((r: { bytes: number; seconds: number }) => void)[] = [];
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    s.on('error', () => undefined);
    const start = process.hrtime.bigint();
    let bytes = 0;
    let first = 0n;
    const done = () => {
      const end = process.hrtime.bigint();
      waiting.shift()?.({ bytes: send ? send.length : bytes, seconds: Number(end - (send ? start : first || start)) / 1e9 });
    };
    if (send) {
      s.end(send);
      s.resume();
      s.once('close', done);
    } else {
      s.on('data', (d: Buffer) => {
        if (!first) first = process.hrtime.bigint();
        bytes += d.length;
      });
      s.once('end', () => {
        done();
        s.end();
      });
    }
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as net.AddressInfo).port,
    next: () => new Promise((r) => waiting.push(r)),
    close: () => void server.close(),
  };
}

async function main(): Promise<void> {
  const why = guestUnavailable();
  if (why) {
    console.error(`bench/qemu: skipped: ${why}`);
    return;
  }
  const files = guestFiles(process.cwd());
  const accel = accelerator();
  const dir = mkdtempSync(join(tmpdir(), 'tt-bench-qemu-'));
  const payload = Buffer.alloc(mib * MiB, 0x5a);
  const down = await hostServer(payload);
  const up = await hostServer(null);
  const rows: Row[] = [];
  console.error(`bench/qemu: ${accel === 'kvm' ? 'KVM' : 'TCG (no /dev/kvm)'}, ${mib} MiB each way`);
  const modes: { link: string; mtu: number }[] = [
    { link: 'gateway, -netdev stream', mtu: 1500 },
    { link: 'gateway, -netdev dgram', mtu: 1500 },
    { link: 'QEMU -netdev user (libslirp)', mtu: 1500 },
    { link: 'gateway, -netdev stream', mtu: 65520 },
    { link: 'gateway, -netdev dgram', mtu: 65520 },
  ];
  try {
    for (const [i, mode] of modes.entries()) {
      const ours = join(dir, `l${i}.sock`);
      let gw: Gateway | null = null;
      let netdev = 'user';
      if (mode.link.includes('stream')) {
        gw = createGateway({ link: await StreamLink.listen({ path: ours }, { mtu: mode.mtu }), hostLoopback: true });
        netdev = `stream,server=off,addr.type=unix,addr.path=${ours}`;
      } else if (mode.link.includes('dgram')) {
        gw = createGateway({ link: openUnixDgram({ path: ours, mtu: mode.mtu }), hostLoopback: true });
        netdev = `dgram,local.type=unix,local.path=${ours}.vm,remote.type=unix,remote.path=${ours}`;
      }
      await gw?.ready;
      const g = new Guest({ files, netdevs: [netdev], macs: ['52:54:00:00:0b:01'], mtu: mode.mtu, memoryMiB: 512 });
      try {
        await g.booted();
        await g.ok('udhcpc -i eth0 -n -q -t 10 -T 1 -s /etc/udhcpc.script', 60_000);
        const measure = async (direction: Row['direction'], command: string, server: typeof down) => {
          const result = server.next();
          await g.ok(command, 300_000);
          const r = await result;
          rows.push({ ...mode, direction, gbps: (r.bytes * 8) / r.seconds / 1e9, seconds: r.seconds });
          console.error(`  ${mode.link}, MTU ${mode.mtu}, ${direction}: ${((r.bytes * 8) / r.seconds / 1e9).toFixed(3)} Gbit/s (${r.seconds.toFixed(1)} s)`);
        };
        await measure('host → guest', `nc 10.0.2.2 ${down.port} </dev/null >/dev/null`, down);
        await measure('guest → host', `dd if=/dev/zero bs=65536 count=${mib * 16} 2>/dev/null | nc 10.0.2.2 ${up.port} >/dev/null`, up);
      } finally {
        await g.kill();
        gw?.close();
      }
    }
  } finally {
    down.close();
    up.close();
    rmSync(dir, { recursive: true, force: true });
  }
  const table = [
    `| link (${accel === 'kvm' ? 'KVM' : 'TCG'}) | MTU | direction | Gbit/s |`,
    '|---|---|---|---|',
    ...rows.map((r) => `| ${r.link} | ${r.mtu} | ${r.direction} | ${r.gbps.toFixed(3)} |`),
  ].join('\n');
  console.log(table);
  if (jsonOut) writeFileSync(jsonOut, JSON.stringify({ date: new Date().toISOString(), accel, mib, rows }, null, 2));
}

main().then(() => process.exit(process.exitCode ?? 0), (err) => {
  console.error(err);
  process.exit(1);
});
