/**
 * SYN floods: a listener's backlog bounds its half-open connections, SYNs
 * beyond it get SYN cookies (no memory kept per SYN), the ACK of a cookie
 * makes the connection and a forged one does not. In process, with a
 * hand-driven peer (test/support/rawpeer.ts); then, as root, the kernel
 * floods a stack on a TAP at the highest rate a raw socket can make while
 * Linux clients keep exchanging data with it.
 */
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { openTap } from '../src/node/links.js';
import { deviceTestsUnavailable, Netns } from './support/netns.js';
import type { TcpServer, TcpSocket } from '../src/index.js';
import { TcpFlags, type TcpSegment } from '../src/wire/tcp.js';
import { rawPeer, type RawPeer } from './support/rawpeer.js';
import { synFrames } from './support/synflood.js';
import { createCable, createStack } from '../src/index.js';

const peers: RawPeer[] = [];
afterEach(() => {
  for (const p of peers.splice(0)) p.close();
});

function isSynAck(port: number) {
  return (s: TcpSegment) => s.dstPort === port && (s.flags & (TcpFlags.SYN | TcpFlags.ACK)) === (TcpFlags.SYN | TcpFlags.ACK);
}
function isRst(port: number) {
  return (s: TcpSegment) => s.dstPort === port && (s.flags & TcpFlags.RST) !== 0;
}

async function serve(peer: RawPeer, backlog: number, onConnection: (s: TcpSocket) => void = () => undefined): Promise<TcpServer> {
  const server = peer.stack.createServer(onConnection);
  server.listen({ port: 80, backlog });
  await once(server, 'listening');
  return server;
}

/** Fills a listener's backlog with n half-open connections (SYNs that never complete). */
async function fillBacklog(peer: RawPeer, n: number, firstPort = 30000): Promise<void> {
  for (let i = 0; i < n; i++) {
    const port = firstPort + i;
    const synAck = peer.next(isSynAck(port));
    peer.send({ srcPort: port, dstPort: 80, seq: 1000 * i, flags: TcpFlags.SYN, options: { mss: 1460 } });
    await synAck;
  }
}

describe('SYN backlog and SYN cookies (in process)', () => {
  it('holds at most backlog half-open connections and answers the SYNs beyond it with cookies', async () => {
    const peer = rawPeer();
    peers.push(peer);
    await serve(peer, 4);
    await fillBacklog(peer, 20);
    // Every SYN got a SYN-ACK; the 16 beyond the backlog of 4 were cookies.
    expect(peer.stack.stats().synCookies.sent).toBe(16);
    expect(peer.received.filter((s) => s.flags & TcpFlags.SYN).length).toBe(20);
  });

  it('completes a connection from the ACK of a cookie, with the options of the SYN', async () => {
    const peer = rawPeer();
    peers.push(peer);
    const accepted: TcpSocket[] = [];
    await serve(peer, 2, (s) => accepted.push(s));
    await fillBacklog(peer, 2);
    const port = 41000;
    const isn = 0x12345678;
    const synAckP = peer.next(isSynAck(port));
    peer.send({
      srcPort: port, dstPort: 80, seq: isn, flags: TcpFlags.SYN,
      options: { mss: 1400, windowScale: 7, sackPermitted: true, timestamps: { value: 777, echo: 0 } },
    });
    const synAck = await synAckP;
    expect(peer.stack.stats().synCookies.sent).toBe(1);
    expect(synAck.ackNumber).toBe((isn + 1) >>> 0);
    expect(synAck.options.mss).toBe(1460);
    expect(synAck.options.windowScale).toBe(5);
    expect(synAck.options.sackPermitted).toBe(true);
    expect(synAck.options.timestamps?.echo).toBe(777);

    const cookie = synAck.seqNumber;
    const got = new Promise<TcpSocket>((resolve) => {
      const wait = setInterval(() => {
        if (accepted.length > 0) {
          clearInterval(wait);
          resolve(accepted[0]!);
        }
      }, 5);
    });
    peer.send({
      srcPort: port, dstPort: 80, seq: isn + 1, ack: cookie + 1, flags: TcpFlags.ACK | TcpFlags.PSH,
      options: { timestamps: { value: 778, echo: synAck.options.timestamps!.value } },
      payload: new TextEncoder().encode('hello'), window: 1000,
    });
    const socket = await got;
    const [data] = (await once(socket, 'data')) as [Buffer];
    expect(data.toString()).toBe('hello');
    expect(peer.stack.stats().synCookies.accepted).toBe(1);

    // The connection works both ways, and takes the MSS (1400, rounded down
    // to the cookie's 1380, less 12 for timestamps) and window scale (7:
    // 1000 << 7) of the SYN. 5000 bytes fit the initial window (4 segments).
    peer.received.length = 0;
    socket.write(Buffer.alloc(5000, 0x61));
    // The segments may already be here (next() waits for later ones only,
    // and a tail loss probe resends the last segment before the first).
    const isData = (s: { dstPort: number; payload: Uint8Array }) => s.dstPort === port && s.payload.length > 0;
    const first = peer.received.find(isData) ?? await peer.next(isData);
    expect(first.seqNumber).toBe((cookie + 1) >>> 0);
    // The initial window is 3 segments (RFC 3390: 4380 bytes); our ACK of
    // them opens the way for the rest.
    await new Promise((r) => setTimeout(r, 30));
    const rest = peer.next((s) => s.dstPort === port && s.seqNumber === ((cookie + 1 + 3 * 1368) >>> 0));
    peer.send({ srcPort: port, dstPort: 80, seq: isn + 6, ack: cookie + 1 + 3 * 1368, flags: TcpFlags.ACK, window: 1000 });
    await rest;
    // (A segment may come twice, after an RTO: count each sequence number once.)
    const sent = [...new Map(peer.received.filter((s) => s.dstPort === port && s.payload.length > 0).map((s) => [s.seqNumber, s])).values()];
    expect(sent.reduce((n, s) => n + s.payload.length, 0)).toBe(5000);
    expect(sent.length).toBeGreaterThan(1);
    for (const s of sent) expect(s.payload.length).toBeLessThanOrEqual(1380 - 12);
    expect(sent.every((s) => s.options.timestamps !== undefined)).toBe(true);
  });

  it('answers a forged or stale ACK with RST and makes no connection', async () => {
    const peer = rawPeer();
    peers.push(peer);
    const accepted: TcpSocket[] = [];
    await serve(peer, 1, (s) => accepted.push(s));
    await fillBacklog(peer, 1);
    const isn = 5000;
    const port = 42000;
    const synAckP = peer.next(isSynAck(port));
    peer.send({ srcPort: port, dstPort: 80, seq: isn, flags: TcpFlags.SYN, options: { mss: 1460 } });
    const cookie = (await synAckP).seqNumber;

    // A guessed cookie (the right one plus one), the right cookie for another
    // peer ISN, the right cookie from another port, and an ACK with no SYN.
    const forged = [
      { srcPort: port, seq: isn + 1, ack: cookie + 2 },
      { srcPort: port, seq: isn + 2, ack: cookie + 1 },
      { srcPort: port + 1, seq: isn + 1, ack: cookie + 1 },
      { srcPort: 43000, seq: 1, ack: 0x0badf00d },
    ];
    for (const f of forged) {
      const rst = peer.next(isRst(f.srcPort));
      peer.send({ ...f, dstPort: 80, flags: TcpFlags.ACK, payload: new Uint8Array([1]) });
      await rst;
    }
    await new Promise((r) => setTimeout(r, 50));
    expect(accepted.length).toBe(0);
    const c = peer.stack.stats().synCookies;
    expect(c.accepted).toBe(0);
    expect(c.rejected).toBe(4);
  });

  it('a flood of 20,000 SYNs costs no memory per SYN', async () => {
    const stack = createStack();
    const [attacker, link] = createCable();
    attacker.attach(() => undefined);
    stack.addInterface({ link, ipv4: '10.9.0.1/24', mac: '02:00:00:00:09:01' });
    stack.neighbors.add({ address: '10.9.0.2', mac: '02:00:00:00:09:02' });
    try {
      const server = stack.createServer(() => undefined);
      server.listen(80);
      await once(server, 'listening');
      const frames = synFrames({ srcMac: '02:00:00:00:09:02', dstMac: '02:00:00:00:09:01', srcIpv4: '10.9.0.2', dstIpv4: '10.9.0.1', dstPort: 80 }, 20_000);
      // A first burst fills the backlog (255 half-open connections).
      for (const f of frames.slice(0, 1000)) attacker.send(f);
      await new Promise((r) => setTimeout(r, 100));
      const before = stack.stats().memoryInUse;
      // The rest at the stack's per-turn input budget, so none is dropped
      // from its input queue.
      for (let i = 1000; i < frames.length; i += 200) {
        for (const f of frames.slice(i, i + 200)) attacker.send(f);
        await new Promise((r) => setImmediate(r));
      }
      await new Promise((r) => setTimeout(r, 200));
      const after = stack.stats();
      // 19,000 more SYNs, each answered: a half-open PCB and its SYN-ACK
      // were ~500 bytes each (9 MiB), cookies keep nothing.
      expect(after.synCookies.sent).toBeGreaterThanOrEqual(19_000);
      expect(after.memoryInUse - before).toBeLessThan(64 * 1024);
    } finally {
      stack.close();
    }
  });
});

const skip = deviceTestsUnavailable();
if (skip) console.warn(`synflood.test.ts (TAP flood) skipped: ${skip}`);
const maybe = skip ? describe.skip : describe;
const FLOODER_C = new URL('./support/synflood.c', import.meta.url).pathname;
const CLIENTS = new URL('./support/echo-clients.mjs', import.meta.url).pathname;
const FLOOD_S = 20;
const BUDGET = 16 * 1024 * 1024;

interface ClientResult { connections: number; roundTrips: number; failures: number; errors: string[]; p50: number; p99: number; max: number }

/** Runs a child in the namespace to its end; resolves with its last stdout line as JSON. */
async function jsonChild<T>(ns: Netns, cmd: string, args: string[]): Promise<T> {
  const child = ns.spawn(cmd, args);
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d));
  child.stderr!.on('data', (d: Buffer) => (err += d));
  const [code] = (await once(child, 'exit')) as [number];
  if (code !== 0) throw new Error(`${cmd} exited ${code}: ${err}`);
  return JSON.parse(out.trim().split('\n').pop()!) as T;
}

maybe('SYN flood from the kernel over a TAP', () => {
  it(`absorbs ${FLOOD_S} s of raw SYNs while 10 Linux clients keep exchanging data, within its memory budget`, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tt-synflood-'));
    const flooder = join(dir, 'synflood');
    await promisify(execFile)('cc', ['-O2', '-o', flooder, FLOODER_C]);
    const ns = await Netns.create('tt-syn');
    const stack = createStack({ memoryBudget: BUDGET });
    try {
      const tap = openTap({ name: 'tt0', netns: ns.path });
      await ns.exec('ip', ['addr', 'add', '10.77.0.1/24', 'dev', 'tt0']);
      stack.addInterface({ link: tap, ipv4: '10.77.0.2/24', mac: '02:00:00:00:77:02' });
      // The flood comes from 10.77.0.50, which nobody in the namespace owns:
      // the SYN-ACKs go to a MAC no one has, and nothing answers them.
      stack.neighbors.add({ address: '10.77.0.50', mac: '02:00:00:00:77:50' });
      // Static neighbours both ways: the flood fills the TAP's queue, which
      // drops ARP as readily as SYNs, and a failed resolution made the
      // clients' connects fail with EHOSTUNREACH on a busy machine. What is
      // measured here is TCP under a SYN flood, not ARP under one.
      const kernelMac = (JSON.parse(await ns.exec('ip', ['-j', 'link', 'show', 'tt0'])) as Array<{ address: string }>)[0]!.address;
      stack.neighbors.add({ address: '10.77.0.1', mac: kernelMac });
      await ns.exec('ip', ['neigh', 'replace', '10.77.0.2', 'lladdr', '02:00:00:00:77:02', 'dev', 'tt0', 'nud', 'permanent']);
      const server = stack.createServer((s) => s.pipe(s));
      server.listen(7);
      await once(server, 'listening');

      let maxMemory = 0;
      let maxInUse = 0;
      const sample = setInterval(() => {
        const st = stack.stats();
        maxMemory = Math.max(maxMemory, st.memoryBytes);
        maxInUse = Math.max(maxInUse, st.memoryInUse);
      }, 100);
      // Frames the kernel's side of the TAP dropped because the stack had not
      // read its queue yet (the tun device's queue is full).
      const linkDropped = async () =>
        (JSON.parse(await ns.exec('ip', ['-j', '-s', 'link', 'show', 'tt0'])) as Array<{ stats64: { tx: { dropped: number } } }>)[0]!.stats64.tx.dropped;
      const droppedBefore = await linkDropped();
      const before = stack.stats();
      const started = performance.now();
      const flood = jsonChild<{ sent: number; failed: number; seconds: number }>(ns, flooder, ['tt0', '02:00:00:00:77:02', '10.77.0.50', '10.77.0.2', '7', String(FLOOD_S), '1000000000']);
      await new Promise((r) => setTimeout(r, 500));
      const clients = jsonChild<ClientResult>(ns, process.execPath, [CLIENTS, '10.77.0.2', '7', '10', '20', String(FLOOD_S - 1.5)]);
      const [f, c] = await Promise.all([flood, clients]);
      const elapsed = (performance.now() - started) / 1000;
      clearInterval(sample);
      const after = stack.stats();
      const cookies = after.synCookies.sent - before.synCookies.sent;
      const tcpIn = after.protocols.tcp.recv - before.protocols.tcp.recv;
      console.log(`SYN flood over TAP: ${f.sent} SYNs sent in ${f.seconds.toFixed(1)} s (${Math.round(f.sent / f.seconds)}/s), ` +
        `${tcpIn} TCP segments taken in (${Math.round(tcpIn / elapsed)}/s), ${cookies} SYN cookies; ` +
        `clients: ${c.connections} connections, ${c.roundTrips} round trips, p50 ${c.p50?.toFixed(2)} ms, p99 ${c.p99?.toFixed(2)} ms, max ${c.max?.toFixed(1)} ms; ` +
        `memory ${maxMemory} bytes (in use at most ${maxInUse}), queue drops ${after.interfaces.eth0!.rxDropped.queueFull}`);

      expect(f.sent).toBeGreaterThan(10_000);
      expect(cookies).toBeGreaterThan(1000);
      const dropped = (await linkDropped()) - droppedBefore;
      console.log(`SYN flood over TAP: the kernel's TAP queue dropped ${dropped} frames; ${c.failures} client connections failed (${c.errors.join(', ') || 'none'})`);
      // A flood faster than the stack reads fills the kernel's TAP queue,
      // which then drops at random, legitimate frames as readily as the
      // flood's (README: "Not promised"): a client whose SYN and its retries
      // (1, 3, 7 s) all fell there times out. The stack's part is to read
      // and answer what reaches it, so a failed client is allowed only when
      // the link dropped frames, only as a time-out, and only for a few.
      if (c.failures > 0) {
        expect(dropped).toBeGreaterThan(0);
        expect(c.errors.filter((e) => e !== 'timed out')).toEqual([]);
        expect(c.failures).toBeLessThanOrEqual(Math.ceil(c.connections / 10));
      }
      expect(c.connections).toBeGreaterThanOrEqual(10);
      expect(c.roundTrips).toBeGreaterThanOrEqual(10 * 20);
      expect(maxMemory).toBeLessThanOrEqual(BUDGET + 512 * 1024);
      expect(after.memoryTight).toBe(false);

      // After the flood the listener accepts as before.
      const again = await jsonChild<ClientResult>(ns, process.execPath, [CLIENTS, '10.77.0.2', '7', '2', '5', '0.5']);
      expect(again.failures).toBe(0);
      expect(again.connections).toBeGreaterThanOrEqual(2);
    } finally {
      stack.close();
      await ns.delete();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 90_000);
});
