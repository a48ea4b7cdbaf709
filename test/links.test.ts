import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { echoRoundTrip } from './support/transfer.js';
import { createStack } from '../src/index.js';
import { StreamLink } from '../src/node/stream-link.js';
import { openUnixDgram, openVmnet } from '../src/node/links.js';
import { waitFor } from './support/netns.js';

const PEER = new URL('./support/link-peer.mjs', import.meta.url).pathname;
const cleanup: (() => void)[] = [];
afterEach(() => {
  for (const fn of cleanup.splice(0).reverse()) fn();
});

function startPeer(args: string[]): { child: ChildProcess; output: () => string } {
  const child = spawn(process.execPath, [PEER, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d));
  cleanup.push(() => child.kill('SIGKILL'));
  return { child, output: () => out };
}

async function echoThrough(link: ConstructorParameters<typeof Object>[0]) {
  const stack = createStack();
  cleanup.push(() => stack.close());
  stack.addInterface({ link, ipv4: '10.88.0.2/24', mac: '02:00:00:00:88:02' });
  const sock = stack.connect({ port: 7, host: '10.88.0.1', allowHalfOpen: true });
  await once(sock, 'connect');
  const r = await echoRoundTrip(sock, 8 * 1024 * 1024);
  expect(r.received).toBe(r.sent);
  expect(r.receivedSha256).toBe(r.sentSha256);
  return stack;
}

describe('links to a second process', () => {
  it('StreamLink (4-byte big-endian length framing, as QEMU -netdev stream) carries TCP both ways', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tt-stream-'));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    const path = join(dir, 'qemu.sock');
    const peer = startPeer(['stream', path]);
    await waitFor(() => peer.output().includes('listening'), 10_000, 'stream peer');
    const link = await StreamLink.connect({ path });
    await echoThrough(link);
    expect(link.counters.rxFrames).toBeGreaterThan(100);
    expect(link.counters.rxBadLength).toBe(0);
  }, 60_000);

  it('StreamLink closes the stream on a length it cannot trust, and counts it', async () => {
    const { PassThrough } = await import('node:stream');
    const wire = new PassThrough();
    const link = new StreamLink(wire, { mtu: 1500 });
    const frames: number[] = [];
    link.attach((f) => frames.push(f.length));
    const good = Buffer.alloc(4 + 60);
    good.writeUInt32BE(60, 0);
    wire.write(Buffer.concat([good.subarray(0, 10)]));
    wire.write(good.subarray(10)); // a frame split across chunks
    const bad = Buffer.alloc(4);
    bad.writeUInt32BE(100_000, 0);
    wire.write(bad);
    await new Promise((r) => setImmediate(r));
    expect(frames).toEqual([60]);
    expect(link.counters.rxBadLength).toBe(1);
    expect(wire.destroyed).toBe(true);
  });

  it('a unix datagram link (one frame per datagram) carries TCP to a second process', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tt-dgram-'));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    const ours = join(dir, 'a.sock');
    const theirs = join(dir, 'b.sock');
    // The peer binds and learns our address from our first datagram.
    const peer = startPeer(['dgram', theirs]);
    await waitFor(() => peer.output().includes('ready'), 10_000, 'dgram peer');
    const link = openUnixDgram({ path: ours, peer: theirs });
    await echoThrough(link);
    const c = link.counters;
    expect(c.rxFrames).toBeGreaterThan(100);
    expect(c.txDropped + c.txErrors).toBe(0);
  }, 60_000);

  it.runIf(process.platform !== 'darwin')('vmnet says clearly that it needs macOS', async () => {
    await expect(openVmnet({ mode: 'shared' })).rejects.toThrow(/vmnet requires macOS/);
    await expect(openVmnet({ mode: 'shared' })).rejects.toMatchObject({ code: 'ERR_NOT_SUPPORTED' });
  });
});
