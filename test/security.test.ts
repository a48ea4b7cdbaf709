/**
 * What an off-path attacker can learn or guess from the wire (issue 12):
 * initial sequence numbers per RFC 6528, ephemeral ports per RFC 6056,
 * IPv4 and IPv6 fragment IDs, DNS query IDs and ports, and a replayed
 * handshake against a fresh listener and against the same listener later.
 */
import { once } from 'node:events';
import { promises as dnsPromises } from 'node:dns';
import { createSocket as createDgram } from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { createCable, createStack, ManualClock, type Stack, type StackOptions } from '../src/index.js';
import { TcpFlags } from '../src/wire/tcp.js';
import { IpProtocol } from '../src/wire/ipv4.js';
import { DnsForwarder, type UpstreamResolver } from '../src/gateway/dns-server.js';
import { probeLink, tap, type TappedPacket } from './support/wiretap.js';

const A4 = '10.0.0.1';
const B4 = '10.0.0.2';
const A6 = 'fd00::1';
const B6 = 'fd00::2';

const stacks: Stack[] = [];
afterEach(() => {
  for (const s of stacks.splice(0)) s.close();
});

function stack(options?: StackOptions): Stack {
  const s = createStack(options);
  stacks.push(s);
  return s;
}

/** Two stacks on an IP cable, with a tap on a's end. */
function tappedPair(options: { mtu?: number; stack?: StackOptions } = {}) {
  const a = stack(options.stack);
  const b = stack(options.stack);
  const [la, lb] = createCable({ medium: 'ip', mtu: options.mtu ?? 1500 });
  const wire = tap(la);
  a.addInterface({ link: wire, ipv4: `${A4}/24`, ipv6: `${A6}/64` });
  b.addInterface({ link: lb, ipv4: `${B4}/24`, ipv6: `${B6}/64` });
  return { a, b, packets: wire.packets };
}

/** Lets queued frames and events run (bounded). */
async function turns(n = 20): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
}

async function until(what: string, done: () => boolean, maxTurns = 2000): Promise<void> {
  for (let i = 0; i < maxTurns && !done(); i++) await new Promise((r) => setImmediate(r));
  if (!done()) throw new Error(`timed out waiting for ${what}`);
}

const isSyn = (p: TappedPacket) => !!p.tcp && (p.tcp.flags & TcpFlags.SYN) !== 0 && (p.tcp.flags & TcpFlags.ACK) === 0;
const isSynAck = (p: TappedPacket) => !!p.tcp && (p.tcp.flags & (TcpFlags.SYN | TcpFlags.ACK)) === (TcpFlags.SYN | TcpFlags.ACK);

/** Successive differences (mod 2^bits) of a sequence. */
function diffs(values: number[], bits: number): number[] {
  const mod = 2 ** bits;
  return values.slice(1).map((v, i) => (v - values[i]! + mod) % mod);
}

/**
 * For uniform random values each bit is set in about half of them; a
 * counter's high bits barely move. With n ≥ 400 the fraction has a standard
 * deviation below 0.025, so [0.35, 0.65] is over 6 deviations wide.
 */
function expectBalancedBits(values: number[], bits: number): void {
  for (let b = 0; b < bits; b++) {
    const set = values.filter((v) => Math.floor(v / 2 ** b) % 2 === 1).length / values.length;
    expect({ bit: b, set: set > 0.35 && set < 0.65 ? 'balanced' : set }).toEqual({ bit: b, set: 'balanced' });
  }
}

/** Opens n connections from a to b's port one after another, destroying each once it is up. */
async function openConnections(a: Stack, b: Stack, n: number, host = B4): Promise<void> {
  // The client resets each connection; the server side only sees it go.
  const server = b.createServer((s) => s.on('error', () => undefined));
  server.listen(80);
  await once(server, 'listening');
  for (let i = 0; i < n; i++) {
    const sock = a.connect(80, host);
    sock.on('error', () => undefined);
    await once(sock, 'connect');
    sock.destroy();
  }
  server.close();
}

describe('SipHash-2-4 (the keyed function behind ISNs and LWIP_RAND)', () => {
  it('matches the paper\'s test vectors', () => {
    const s = stack();
    const x = s.session.exports;
    const key = Uint8Array.from({ length: 16 }, (_, i) => i);
    const hash = (len: number): string => {
      const p = s.session.scratch(64);
      s.session.u8.set(key, p);
      s.session.u8.set(Uint8Array.from({ length: len }, (_, i) => i), p + 16);
      x.tt_debug_siphash(p, p + 16, len, p + 48);
      return Buffer.from(s.session.u8.slice(p + 48, p + 56)).reverse().toString('hex');
    };
    // Aumasson and Bernstein, "SipHash: a fast short-input PRF", appendix A
    // (15 bytes), and the first entry of the reference vectors (empty).
    expect(hash(15)).toBe('a129ca6149be45e5');
    expect(hash(0)).toBe('726fdb47dd0e0e31');
  });
});

describe('initial sequence numbers (RFC 6528)', () => {
  it('are distinct and unpredictable across hundreds of connections and several stacks', async () => {
    const clientIsns: number[][] = [];
    const serverIsns: number[] = [];
    for (let k = 0; k < 4; k++) {
      const { a, b, packets } = tappedPair();
      await openConnections(a, b, 120);
      clientIsns.push(packets.filter((p) => p.dir === 'out' && isSyn(p)).map((p) => p.tcp!.seqNumber));
      serverIsns.push(...packets.filter((p) => p.dir === 'in' && isSynAck(p)).map((p) => p.tcp!.seqNumber));
    }
    const all = [...clientIsns.flat(), ...serverIsns];
    expect(all.length).toBe(4 * 120 * 2);
    expect(new Set(all).size).toBe(all.length);
    for (const isns of clientIsns) {
      // A counter (lwIP's own 6510 + ticks) steps by a near-constant amount.
      const d = diffs(isns, 32);
      expect(new Set(d).size).toBeGreaterThan(d.length * 0.95);
      // Half the steps of a random sequence go "backwards" (mod 2^32).
      const backwards = d.filter((x) => x >= 2 ** 31).length / d.length;
      expect(backwards).toBeGreaterThan(0.3);
      expect(backwards).toBeLessThan(0.7);
    }
    expectBalancedBits(all, 32);
  });

  it('differ between stacks at the same time for the same 4-tuple', async () => {
    const isns: number[] = [];
    for (let k = 0; k < 40; k++) {
      const s = stack({ clock: new ManualClock(5000) });
      const probe = probeLink();
      s.addInterface({ link: probe, ipv4: `${A4}/24` });
      const sock = s.connect({ port: 80, host: B4, localPort: 40000 });
      sock.on('error', () => undefined);
      await until('a SYN', () => probe.sent.some(isSyn));
      const syn = probe.sent.find(isSyn)!;
      expect([syn.tcp!.srcPort, syn.tcp!.dstPort]).toEqual([40000, 80]);
      isns.push(syn.tcp!.seqNumber);
      sock.destroy();
    }
    // lwIP's counter gave all forty the same number.
    expect(new Set(isns).size).toBe(isns.length);
  });

  it('advance with the stack\'s clock at 250,000 a second for one 4-tuple (the M of RFC 6528)', async () => {
    const clock = new ManualClock(1000);
    const s = stack({ clock });
    const probe = probeLink();
    s.addInterface({ link: probe, ipv4: `${A4}/24` });
    const synSeq = async () => {
      const before = probe.sent.length;
      const sock = s.connect({ port: 80, host: B4, localPort: 40001 });
      sock.on('error', () => undefined);
      await until('a SYN', () => probe.sent.slice(before).some(isSyn));
      const seq = probe.sent.slice(before).find(isSyn)!.tcp!.seqNumber;
      sock.destroy();
      await turns();
      return seq;
    };
    const first = await synSeq();
    await clock.advance(1000);
    const second = await synSeq();
    // Same tuple, same secret: F is the same, so the difference is M's.
    expect((second - first + 2 ** 32) % 2 ** 32).toBe(250_000);
  });

  it('a replayed handshake does not establish on a fresh listener, which answers with RST', async () => {
    // Capture a client's SYN and ACK toward a listener, at a fixed time.
    const { a, b, packets } = tappedPair({ stack: { clock: new ManualClock(7000) } });
    const server = b.createServer(() => undefined);
    server.listen(80);
    await once(server, 'listening');
    const accepted = once(server, 'connection');
    const sock = a.connect(80, B4);
    await once(sock, 'connect');
    await accepted;
    const out = packets.filter((p) => p.dir === 'out' && p.tcp);
    const syn = out.find(isSyn)!;
    const ack = out.find((p) => p.tcp!.flags === TcpFlags.ACK && p.tcp!.payload.length === 0)!;
    expect(syn).toBeDefined();
    expect(ack).toBeDefined();
    const originalIsn = packets.find((p) => p.dir === 'in' && isSynAck(p))!.tcp!.seqNumber;

    // A fresh stack with the listener's address and the same time.
    const fresh = stack({ clock: new ManualClock(7000) });
    const probe = probeLink();
    fresh.addInterface({ link: probe, ipv4: `${B4}/24` });
    const victim = fresh.createServer(() => undefined);
    let connections = 0;
    victim.on('connection', () => connections++);
    victim.listen(80);
    await once(victim, 'listening');

    probe.inject(syn.bytes);
    await until('a SYN-ACK', () => probe.sent.some(isSynAck));
    const synAck = probe.sent.find(isSynAck)!.tcp!;
    expect(synAck.ackNumber).toBe((syn.tcp!.seqNumber + 1) >>> 0);
    expect(synAck.seqNumber).not.toBe(originalIsn);

    probe.inject(ack.bytes);
    await until('a RST', () => probe.sent.some((p) => !!p.tcp && (p.tcp.flags & TcpFlags.RST) !== 0));
    const rst = probe.sent.find((p) => !!p.tcp && (p.tcp.flags & TcpFlags.RST) !== 0)!.tcp!;
    // RFC 9293 section 3.10.7.4, SYN-RECEIVED: an unacceptable ACK gets <SEQ=SEG.ACK><CTL=RST>.
    expect(rst.seqNumber).toBe(ack.tcp!.ackNumber);
    await turns(50);
    expect(connections).toBe(0);
    expect(fresh.stats().tcpConnections).toBe(0);
  });
});

/**
 * A real exchange to a listener that stays up: the client connects, sends a
 * request, the server answers and closes first (so the server holds the
 * TIME_WAIT), the client closes too. Both stacks share one ManualClock, so
 * the test decides when TIME_WAIT ends. Returns the client's packets as
 * they reached the server, to replay verbatim; the client stack is closed,
 * so nothing answers the server's replies to the replay.
 */
async function capturedExchangeToLiveServer() {
  const clock = new ManualClock(7000);
  const client = stack({ clock });
  const server = stack({ clock });
  const [la, lb] = createCable({ medium: 'ip', mtu: 1500 });
  const wire = tap(lb);
  client.addInterface({ link: la, ipv4: `${A4}/24` });
  server.addInterface({ link: wire, ipv4: `${B4}/24` });
  const accepted: { bytes: number }[] = [];
  const listener = server.createServer({ allowHalfOpen: false }, (s) => {
    const conn = { bytes: 0 };
    accepted.push(conn);
    s.on('error', () => undefined);
    s.on('data', (d: Buffer) => {
      conn.bytes += d.length;
      // The server answers and closes first: its end goes to TIME_WAIT.
      if (conn.bytes >= 5) s.end('world');
    });
  });
  listener.listen(80);
  await once(listener, 'listening');
  const sock = client.connect(80, B4);
  let reply = '';
  sock.on('data', (d: Buffer) => (reply += d));
  await once(sock, 'connect');
  sock.write('hello');
  await once(sock, 'close');
  expect(reply).toBe('world');
  expect(accepted).toEqual([{ bytes: 5 }]);
  await turns(50);
  const replay = wire.packets.filter((p) => p.dir === 'in' && p.tcp);
  const flags = replay.map((p) => p.tcp!.flags);
  // SYN, the handshake's ACK, the request, and the client's FIN at least.
  expect(flags[0]).toBe(TcpFlags.SYN);
  expect(replay.some((p) => p.tcp!.payload.length === 5)).toBe(true);
  expect(flags.some((f) => (f & TcpFlags.FIN) !== 0)).toBe(true);
  const serverIsn = wire.packets.find((p) => p.dir === 'out' && isSynAck(p))!.tcp!.seqNumber;
  client.close();
  accepted.length = 0;
  return { clock, server, wire, replay, serverIsn, accepted };
}

/** Replays the client's captured packets to the server, in order, a few turns apart. */
async function replayTo(wire: ReturnType<typeof tap>, replay: TappedPacket[]): Promise<number> {
  const before = wire.packets.length;
  for (const p of replay) {
    wire.inject(p.bytes);
    await turns(5);
  }
  await turns(50);
  return before;
}

describe('a replayed exchange to the same, still-listening server', () => {
  it('does not establish while the server holds the old connection in TIME_WAIT', async () => {
    const { server, wire, replay, accepted } = await capturedExchangeToLiveServer();
    await replayTo(wire, replay);
    expect(accepted).toEqual([]);
    expect(server.stats().tcpConnections).toBe(0);
  });

  it('does not establish after TIME_WAIT has passed: the SYN-ACK has a new ISN, the replayed ACKs get RST', async () => {
    const { clock, server, wire, replay, serverIsn, accepted } = await capturedExchangeToLiveServer();
    // TIME_WAIT is 2 x MSL = 60 s (lwipopts.h); run the stack's timers past it.
    await clock.advance(65_000);
    const from = await replayTo(wire, replay);
    const answers = wire.packets.slice(from).filter((p) => p.dir === 'out' && p.tcp);
    const synAcks = answers.filter(isSynAck);
    // The replayed SYN is a new connection attempt (nothing remembers the old
    // one): the server answers it, but 65 s later its ISN has moved on by
    // the clock's part M of RFC 6528 (4 us ticks), so the replayed ACKs,
    // which acknowledge the old ISN, are unacceptable.
    expect(synAcks.length).toBeGreaterThanOrEqual(1);
    expect(synAcks[0]!.tcp!.ackNumber).toBe((replay[0]!.tcp!.seqNumber + 1) >>> 0);
    expect(synAcks[0]!.tcp!.seqNumber).not.toBe(serverIsn);
    const resets = answers.filter((p) => (p.tcp!.flags & TcpFlags.RST) !== 0);
    expect(resets.length).toBeGreaterThanOrEqual(1);
    // RFC 9293 section 3.10.7.4, SYN-RECEIVED: an unacceptable ACK gets <SEQ=SEG.ACK><CTL=RST>.
    const replayedAcks = new Set(replay.slice(1).map((p) => p.tcp!.ackNumber));
    for (const r of resets) expect(replayedAcks.has(r.tcp!.seqNumber)).toBe(true);
    // Nothing reached the application: no connection, no request bytes.
    expect(accepted).toEqual([]);
    expect(server.stats().tcpConnections).toBe(0);
  });
});

describe('ephemeral ports (RFC 6056)', () => {
  it('TCP ports are random per connection, not sequential', async () => {
    const { a, b, packets } = tappedPair();
    await openConnections(a, b, 200);
    const ports = packets.filter((p) => p.dir === 'out' && isSyn(p)).map((p) => p.tcp!.srcPort);
    expect(ports.length).toBe(200);
    for (const port of ports) expect(port).toBeGreaterThanOrEqual(32768);
    const d = diffs(ports, 16);
    expect(d.filter((x) => x === 1).length).toBeLessThan(d.length * 0.05);
    expect(Math.max(...ports) - Math.min(...ports)).toBeGreaterThan(16384);
  });

  it('random TCP ports still use the whole range: 32,768 connections in TIME_WAIT, then ENOBUFS', async () => {
    const { a, b } = tappedPair();
    const server = b.createServer((s) => {
      s.on('error', () => undefined);
      s.resume();
      s.on('end', () => s.end());
    });
    server.listen(80);
    await once(server, 'listening');
    // The client closes first, so each of its ports stays in TIME_WAIT (60 s).
    const ports = new Set<number>();
    let failure: { code?: string } | null = null;
    for (let i = 0; i <= 32768 && !failure; i++) {
      const sock = a.connect(80, B4);
      sock.resume();
      try {
        await once(sock, 'connect');
      } catch (err) {
        failure = err as { code?: string };
        break;
      }
      ports.add(sock.localPort!);
      sock.end();
      await once(sock, 'close');
    }
    expect(ports.size).toBe(32768);
    expect(Math.min(...ports)).toBe(32768);
    expect(Math.max(...ports)).toBe(65535);
    expect(failure?.code).toBe('ENOBUFS');
  }, 120_000); // 32,768 connections: seconds when idle, more on a busy 2-core machine

  it('UDP ports are random per socket, not sequential', async () => {
    const { a, packets } = tappedPair();
    for (let i = 0; i < 100; i++) {
      const u = a.createSocket('udp4');
      await new Promise<void>((r) => u.send(Buffer.from('x'), 9, B4, () => r()));
      u.close();
    }
    await turns();
    const ports = packets
      .filter((p) => p.dir === 'out' && p.v4?.protocol === IpProtocol.UDP)
      .map((p) => (p.v4!.payload[0]! << 8) | p.v4!.payload[1]!);
    expect(ports.length).toBe(100);
    const d = diffs(ports, 16);
    expect(d.filter((x) => x === 1).length).toBeLessThan(d.length * 0.05);
    expect(new Set(ports).size).toBeGreaterThan(90);
  });
});

describe('fragment identification', () => {
  it('IPv4 IDs are random, and the fragments of one datagram share theirs', async () => {
    const { a, b, packets } = tappedPair();
    const rx = b.createSocket('udp4');
    rx.bind(9);
    await once(rx, 'listening');
    let received = 0;
    rx.on('message', () => received++);
    const u = a.createSocket('udp4');
    for (let i = 0; i < 40; i++) u.send(Buffer.alloc(4000, i), 9, B4);
    await until('40 datagrams reassembled', () => received === 40);
    await openConnections(a, b, 100);
    const out = packets.filter((p) => p.dir === 'out' && p.v4);
    const byDatagram = new Map<number, number>();
    for (const p of out.filter((q) => q.v4!.protocol === IpProtocol.UDP)) {
      byDatagram.set(p.v4!.identification, (byDatagram.get(p.v4!.identification) ?? 0) + 1);
    }
    // 40 datagrams of 4000 bytes at MTU 1500: three fragments each, one ID each.
    expect([...byDatagram.values()]).toEqual(new Array(40).fill(3));
    const ids = out.map((p) => p.v4!.identification);
    const firstOfEach = out.filter((p) => p.v4!.fragmentOffset === 0).map((p) => p.v4!.identification);
    const d = diffs(firstOfEach, 16);
    expect(d.filter((x) => x === 1).length).toBeLessThan(d.length * 0.05);
    expect(ids.length).toBeGreaterThan(400);
    expectBalancedBits(firstOfEach, 16);
  });

  it('IPv6 fragment IDs are random', async () => {
    const { a, b, packets } = tappedPair();
    const rx = b.createSocket('udp6');
    rx.bind(9);
    await once(rx, 'listening');
    let received = 0;
    rx.on('message', () => received++);
    const u = a.createSocket('udp6');
    for (let i = 0; i < 60; i++) u.send(Buffer.alloc(3000, i), 9, B6);
    await until('60 datagrams reassembled', () => received === 60);
    const frags = packets.filter((p) => p.dir === 'out' && p.v6?.fragment);
    const ids = [...new Set(frags.map((p) => p.v6!.fragment!.identification))];
    expect(ids.length).toBe(60);
    // 3000 bytes at MTU 1500: three fragments each, one ID each.
    expect(frags.length).toBe(180);
    const d = diffs(ids, 32);
    expect(d.filter((x) => x === 1).length).toBe(0);
    expect(new Set(d).size).toBe(d.length);
  });
});

describe('DNS client (RFC 5452)', () => {
  it('sends every query with a random ID from a random source port', async () => {
    const { a, b } = tappedPair();
    a.dnsServers = [B4];
    const server = b.createSocket('udp4');
    const seen: { id: number; port: number }[] = [];
    server.on('message', (msg, rinfo) => {
      seen.push({ id: msg.readUInt16BE(0), port: rinfo.port });
      const reply = Buffer.from(msg);
      reply[2] = 0x81; // QR, RD
      reply[3] = 0x83; // RA, NXDOMAIN
      server.send(reply, rinfo.port, rinfo.address);
    });
    server.bind(53);
    await once(server, 'listening');
    for (let i = 0; i < 40; i++) {
      await expect(a.resolve(`name${i}.test`)).rejects.toMatchObject({ code: 'ENOTFOUND' });
    }
    expect(seen.length).toBe(40);
    expect(new Set(seen.map((q) => q.id)).size).toBeGreaterThan(36);
    expect(new Set(seen.map((q) => q.port)).size).toBeGreaterThan(36);
    for (const q of seen) expect(q.port).toBeGreaterThanOrEqual(1024);
    const d = diffs(seen.map((q) => q.id), 16);
    expect(d.filter((x) => x === 1).length).toBe(0);
  });
});

describe("the gateway's upstream resolver (node:dns, c-ares)", () => {
  it('asks with random query IDs, each lookup from a fresh random port when none is in flight', async () => {
    // The gateway's DNS forwarder sends nothing upstream itself: node:dns's
    // Resolver (c-ares) does. This pins what the README says about it,
    // against a UDP server on this host's loopback.
    const server = createDgram('udp4');
    const seen: { id: number; port: number }[] = [];
    server.on('message', (msg, rinfo) => {
      seen.push({ id: msg.readUInt16BE(0), port: rinfo.port });
      const reply = Buffer.from(msg);
      reply[2] = 0x81;
      reply[3] = 0x83;
      server.send(reply, rinfo.port, rinfo.address);
    });
    await new Promise<void>((r) => server.bind(0, '127.0.0.1', () => r()));
    try {
      const resolver = new dnsPromises.Resolver({ timeout: 1000, tries: 1 });
      resolver.setServers([`127.0.0.1:${server.address().port}`]);
      for (let i = 0; i < 20; i++) await resolver.resolve4(`name${i}.test`).catch(() => undefined);
      expect(seen.length).toBe(20);
      expect(new Set(seen.map((q) => q.id)).size).toBeGreaterThan(17);
      expect(new Set(seen.map((q) => q.port)).size).toBeGreaterThan(17);
    } finally {
      server.close();
    }
  });
});

describe("the gateway's DNS forwarder", () => {
  /** A loopback DNS server that answers NXDOMAIN after 100 ms, so lookups overlap; records each query's ID and port. */
  async function slowUpstream() {
    const server = createDgram('udp4');
    const seen: { id: number; port: number }[] = [];
    server.on('message', (msg, rinfo) => {
      seen.push({ id: msg.readUInt16BE(0), port: rinfo.port });
      const reply = Buffer.from(msg);
      reply[2] = 0x81;
      reply[3] = 0x83;
      setTimeout(() => server.send(reply, rinfo.port, rinfo.address), 100);
    });
    await new Promise<void>((r) => server.bind(0, '127.0.0.1', () => r()));
    return { server, seen, address: `127.0.0.1:${server.address().port}` };
  }

  async function askConcurrently(resolver: UpstreamResolver | (() => UpstreamResolver)): Promise<void> {
    const gw = stack();
    const client = stack({ dnsServers: [B4] });
    const [la, lb] = createCable({ medium: 'ip' });
    client.addInterface({ link: la, ipv4: `${A4}/24` });
    gw.addInterface({ link: lb, ipv4: `${B4}/24` });
    const forwarder = new DnsForwarder({ stack: gw, address: B4, resolver, cnames: false });
    await forwarder.listen();
    try {
      await Promise.all(Array.from({ length: 20 }, (_, i) =>
        expect(client.resolve(`name${i}.test`)).rejects.toMatchObject({ code: 'ENOTFOUND' })));
    } finally {
      await forwarder.close();
    }
  }

  it('asks concurrent upstream lookups from a socket each (a resolver per lookup, as by default)', async () => {
    const up = await slowUpstream();
    try {
      await askConcurrently(() => {
        const r = new dnsPromises.Resolver({ timeout: 2000, tries: 1 });
        r.setServers([up.address]);
        return r;
      });
      expect(up.seen.length).toBe(20);
      expect(new Set(up.seen.map((q) => q.port)).size).toBe(20);
      expect(new Set(up.seen.map((q) => q.id)).size).toBeGreaterThan(17);
    } finally {
      up.server.close();
    }
  });

  it('(why: one shared c-ares Resolver sends concurrent lookups from one port)', async () => {
    const up = await slowUpstream();
    const shared = new dnsPromises.Resolver({ timeout: 2000, tries: 1 });
    shared.setServers([up.address]);
    try {
      await askConcurrently(shared);
      expect(up.seen.length).toBe(20);
      expect(new Set(up.seen.map((q) => q.port)).size).toBeLessThan(4);
    } finally {
      shared.cancel();
      up.server.close();
    }
  });
});
