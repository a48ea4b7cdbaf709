/**
 * Structure-aware fuzzing (fuzz/): frames captured from real exchanges
 * (two stacks; a guest and the gateway), mutated field by field, 10^5 per
 * protocol. After each campaign the victim must still answer (ping, TCP
 * connect and echo, UDP, and for the gateway DNS and DHCP), no stack may
 * have trapped or emitted 'error', and frames broken in one known way must
 * be counted, each once, in the drop counter for that fault. The soak is
 * `npm run fuzz`; what it finds lands in test/fuzz-corpus/, replayed here.
 */
import { once } from 'node:events';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCable, createStack, ManualClock } from '../src/index.js';
import { createGateway } from '../src/gateway/gateway.js';
import { buildEthernetFrame, EtherType } from '../src/wire/ethernet.js';
import { buildIPv4Packet, IpProtocol, parseIPv4Packet } from '../src/wire/ipv4.js';
import { buildUdpDatagram } from '../src/wire/udp.js';
import { encodeDnsQuery } from '../src/wire/dns.js';
import { DnsForwarder } from '../src/gateway/dns-server.js';
import { buildTcpSegment, parseTcpSegment, TcpFlags } from '../src/wire/tcp.js';
import { parseIp, parseMac } from '../src/wire/address.js';
import { openHarness, stackDrops, type Harness, type HarnessName } from './fuzz/harness.js';
import { CAMPAIGNS, runCampaign } from './fuzz/run.js';
import { readCorpus } from './fuzz/corpus.js';

const FRAMES = 100_000;
const SEED = 20261207;
const CORPUS = fileURLToPath(new URL('./fuzz-corpus/', import.meta.url));

for (const name of ['stack', 'gateway'] as HarnessName[]) {
  describe(`structure-aware fuzzing: ${name}`, () => {
    let h: Harness;
    beforeAll(async () => {
      h = await openHarness(name);
    });
    afterAll(() => h?.close());

    for (const protocol of CAMPAIGNS[name]) {
      it(`${protocol}: ${FRAMES.toLocaleString('en')} mutants of captured frames; still answers, counts what it drops`, async () => {
        const r = await runCampaign(h, protocol, { seed: SEED, count: FRAMES, healthEvery: FRAMES / 2, stopOnFailure: true });
        console.log(
          `fuzz ${r.campaign}: ${r.frames} frames in ${r.seconds.toFixed(1)} s (${r.healthSeconds.toFixed(1)} s health checks), ` +
            `${r.badChecksums} with a bad checksum, ${r.drops} drops counted` +
            (r.probe ? `; probe ${r.probe.counted}/${r.probe.sent} ${r.probe.counter}` : '') + (r.skipped ? `; skipped: ${r.skipped}` : ''),
        );
        expect(r.skipped).toBeUndefined();
        expect(r.failures.map((f) => f.message)).toEqual([]);
        expect(r.frames).toBe(FRAMES);
        // A frame can count in several counters (ip.drop and tcp.chkerr), and valid
        // mutants are processed, not dropped: a loose bound here, the exact one below.
        expect(r.drops).toBeGreaterThan(FRAMES * 0.05);
        expect(r.probe).not.toBeNull();
        expect(r.probe!.counted).toBe(r.probe!.sent);
      }, 120_000);
    }
  });
}

describe('fuzz corpus (test/fuzz-corpus/): every failing input kept is replayed', () => {
  const entries = readCorpus(CORPUS);
  if (entries.length === 0) it('is empty: no soak has found a failing input yet', () => expect(entries).toEqual([]));
  for (const e of entries) {
    it(`${e.file}: ${e.frames.length} frames, then the ${e.harness} still answers`, async () => {
      const h = await openHarness(e.harness);
      try {
        for (let i = 0; i < e.frames.length; i++) {
          h.inject(e.frames[i]!);
          if (i % 200 === 199) await h.pump();
        }
        for (let k = 0; k < 5; k++) await h.pump();
        expect(h.errors.map((x) => x.message)).toEqual([]);
        await h.health();
      } finally {
        h.close();
      }
    }, 60_000);
  }
});

/**
 * A stack connected to a peer the test forges from the SYN the stack sent
 * (so nothing depends on the random ISN): the peer's segments are built here
 * and delivered on an IP link, and what the stack sent is parsed back.
 */
async function forgedPeer(options: { clock?: ManualClock; synAck: { window: number; mss: number; windowScale?: number } }) {
  const victim = createStack({ clock: options.clock });
  const errors: Error[] = [];
  victim.on('error', (e) => errors.push(e));
  const sent: Uint8Array[] = [];
  let deliver: ((frame: Uint8Array) => void) | null = null;
  victim.addInterface({
    link: { medium: 'ip', mtu: 1500, attach: (r) => (deliver = r), send: (f) => void sent.push(Uint8Array.from(f)), close: () => (deliver = null) },
    ipv4: '10.9.0.1/24',
  });
  const src = parseIp('10.9.0.2')!;
  const dst = parseIp('10.9.0.1')!;
  const tcpOut = () => sent.map((f) => parseTcpSegment(parseIPv4Packet(f)!.payload)!).filter(Boolean);
  const turns = async (n = 10) => {
    for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
  };
  const PEER_ISN = 1000;
  const peer = (fields: { seq?: number; ack: number; flags?: number; window?: number; mss?: number; windowScale?: number }) =>
    deliver!(buildIPv4Packet({
      src, dst, protocol: IpProtocol.TCP, ttl: 64,
      payload: buildTcpSegment({
        srcPort: 80, dstPort: 40000, seqNumber: fields.seq ?? PEER_ISN + 1, ackNumber: fields.ack, flags: fields.flags ?? TcpFlags.ACK,
        window: fields.window ?? 65535, options: { mss: fields.mss, windowScale: fields.windowScale }, src, dst,
      }),
    }));
  const sock = victim.connect({ port: 80, host: '10.9.0.2', localPort: 40000 });
  sock.on('error', () => undefined);
  await turns();
  const syn = tcpOut().find((t) => t.flags === TcpFlags.SYN)!;
  expect(syn.options.mss).toBe(1460);
  const isn = syn.seqNumber;
  // No timestamps: no option bytes in data segments.
  peer({ seq: PEER_ISN, ack: isn + 1, flags: TcpFlags.SYN | TcpFlags.ACK, ...options.synAck });
  await once(sock, 'connect');
  /** Acknowledges whatever has arrived until `total` bytes have; returns the stream as it arrived. */
  const drain = async (total: number, window = 65535, step?: () => Promise<void>) => {
    let acked = 0;
    for (let i = 0; i < 200 && acked < total; i++) {
      const data = tcpOut().filter((t) => t.payload.length > 0);
      acked = Math.max(0, ...data.map((t) => ((t.seqNumber - isn - 1) >>> 0) + t.payload.length));
      peer({ ack: isn + 1 + acked, window });
      await turns();
      await step?.();
    }
    const stream = new Uint8Array(total);
    for (const t of tcpOut().filter((t) => t.payload.length > 0)) stream.set(t.payload.subarray(0, Math.max(0, total - ((t.seqNumber - isn - 1) >>> 0))), (t.seqNumber - isn - 1) >>> 0);
    return stream;
  };
  return { victim, sock, isn, peer, tcpOut, errors, turns, drain };
}

describe('regressions found by the fuzzer', () => {
  it('the gateway drops a SYN with a bad TCP checksum (counted) instead of opening a host connection for it', async () => {
    // lwIP checks TCP checksums in tcp_input, but the gateway's hook held SYNs
    // before that: a SYN with a corrupt destination port became a host connect.
    let accepted = 0;
    const server = net.createServer((s) => {
      accepted++;
      s.destroy();
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const port = (server.address() as net.AddressInfo).port;
    const [gwEnd, guestEnd] = createCable({ mtu: 1500 });
    const gw = createGateway({
      link: gwEnd,
      policy: { defaultAction: 'deny', rules: [{ action: 'allow', protocol: 'tcp', cidr: '127.0.0.1', ports: port }] },
      resolver: { resolve4: () => Promise.reject(new Error('none')), resolve6: () => Promise.reject(new Error('none')) },
    });
    const guestMac = parseMac('02:00:00:00:0a:64')!;
    guestEnd.attach(() => undefined);
    try {
      await gw.ready;
      const src = parseIp('10.0.2.100')!;
      const dst = parseIp('127.0.0.1')!;
      const syn = (srcPort: number, corrupt: boolean) => {
        const seg = buildTcpSegment({ srcPort, dstPort: port, seqNumber: 1000, flags: TcpFlags.SYN, window: 65535, options: { mss: 1460 }, src, dst });
        if (corrupt) seg[17] = seg[17]! ^ 0x40;
        return buildEthernetFrame(
          { dst: parseMac(gw.interface.mac!)!, src: guestMac, etherType: EtherType.IPv4 },
          buildIPv4Packet({ src, dst, protocol: IpProtocol.TCP, ttl: 64, payload: seg }),
        );
      };
      const before = stackDrops(gw.stack)['tcp.chkerr'] ?? 0;
      for (let i = 0; i < 10; i++) guestEnd.send(syn(40000 + i, true));
      await new Promise((r) => setTimeout(r, 300));
      expect((stackDrops(gw.stack)['tcp.chkerr'] ?? 0) - before).toBe(10);
      expect(gw.metrics().tcpRefused + gw.metrics().tcpOpened).toBe(0);
      expect(accepted).toBe(0);
      // The same SYN intact is carried.
      guestEnd.send(syn(41000, false));
      for (let i = 0; i < 100 && accepted === 0; i++) await new Promise((r) => setTimeout(r, 10));
      expect(accepted).toBe(1);
    } finally {
      gw.close();
      server.close();
    }
  });

  it("a peer's MSS option after the handshake, while a short segment waits for Nagle, does not make tcp_write trap (patch 300)", async () => {
    // lwIP parsed the MSS option in every segment (tcp_process calls
    // tcp_parseopt), so a peer could lower the send MSS of an established
    // connection. The fuzzer hit it once: a segment queued under the old MSS
    // with spare pbuf room (oversize) for it, then a write after the MSS
    // shrank below the segment's length plus that room: "inconsistent
    // oversize vs. space" (tcp_out.c) and the stack trapped. Built without
    // patches 300 and 301 this case traps so; patch 300 makes tcp_write
    // cope, patch 301 ignores the option outside a SYN.
    const f = await forgedPeer({ synAck: { window: 65535, mss: 1460 } });
    try {
      // 100 bytes leave at once; the next 100 wait for their ACK (Nagle) in
      // a segment whose pbuf has room for 1460 - 100 more bytes.
      const written = [Buffer.alloc(100, 1), Buffer.alloc(100, 2)];
      f.sock.write(written[0]);
      await f.turns();
      f.sock.write(written[1]);
      await f.turns();
      expect(f.tcpOut().filter((t) => t.payload.length > 0).map((t) => t.payload.length)).toEqual([100]);
      // The peer now says MSS 536 on a pure ACK that acknowledges nothing new.
      f.peer({ ack: f.isn + 1, mss: 536 });
      await f.turns();
      // Without patch 301 this write found 1360 bytes of oversize but only 436 of space: the trap.
      written.push(Buffer.alloc(3000, 3));
      f.sock.write(written[2]);
      await f.turns();
      expect(f.errors.map((e) => e.message)).toEqual([]);
      expect(f.victim.closed).toBe(false);
      // Every byte arrives once, in order.
      const stream = await f.drain(3200);
      expect(Buffer.from(stream).equals(Buffer.concat(written))).toBe(true);
      // Since patch 301 the option is ignored outside a SYN: full-sized segments.
      expect(Math.max(...f.tcpOut().map((t) => t.payload.length))).toBe(1460);
    } finally {
      f.victim.close();
    }
  });

  it("a peer's MSS option after the handshake, a timeout under a zero window, then a 64 KiB window: the persist timer does not trap", async () => {
    // npm run fuzz (stack:tcp, seed 20261212) found "Can't split segment into
    // length 0" (tcp_out.c); this traps so without patches 301 and 302. With
    // the MSS lowered to 536 under 1460-byte segments (before patch 301), a retransmission timeout under a zero window leaves them all
    // unsent with a congestion window of one new MSS; the persist timer
    // starts, and once the window opens to 64 KiB the first segment still
    // does not fit the congestion window, so the timer splits it to the
    // peer's window cast to 16 bits: 0 (patch 302 saturates the cast).
    const clock = new ManualClock(1000);
    const f = await forgedPeer({ clock, synAck: { window: 65535, mss: 1460, windowScale: 1 } });
    try {
      const written = Buffer.alloc(2920, 5);
      f.sock.write(written);
      await f.turns();
      expect(f.tcpOut().filter((t) => t.payload.length > 0).map((t) => t.payload.length)).toEqual([1460, 1460]);
      // Nothing acknowledged; MSS 536 and a zero window.
      f.peer({ ack: f.isn + 1, mss: 536, window: 0 });
      await f.turns();
      await clock.advance(1500); // retransmission timeouts
      // A window of 64 KiB (32768 << 1), still nothing acknowledged.
      f.peer({ ack: f.isn + 1, window: 32768 });
      await f.turns();
      await clock.advance(3000); // persist timer ticks
      await f.turns();
      expect(f.errors.map((e) => e.message)).toEqual([]);
      expect(f.victim.closed).toBe(false);
      const stream = await f.drain(written.length, 32768, () => clock.advance(500));
      expect(Buffer.from(stream).equals(written)).toBe(true);
    } finally {
      f.victim.close();
    }
  });

  it('a peer that acknowledges, after a timeout under its zero window, all it had received: the persist timer stops instead of trapping', async () => {
    // Found while making the case above: a retransmission timeout puts the
    // unacknowledged segments back on the unsent queue; under a zero window
    // nothing is resent and the persist timer starts. The peer's late ACK
    // for all of them empties the queue, but lwIP left the persist timer
    // running, and its next tick asserted "persist ticking with empty send
    // buffer" (tcp.c). A peer whose reader stalled and whose ACKs were slow
    // can do this without forging anything.
    const clock = new ManualClock(1000);
    const f = await forgedPeer({ clock, synAck: { window: 65535, mss: 1460 } });
    try {
      f.sock.write(Buffer.alloc(2920, 6));
      await f.turns();
      expect(f.tcpOut().filter((t) => t.payload.length > 0).map((t) => t.payload.length)).toEqual([1460, 1460]);
      f.peer({ ack: f.isn + 1, window: 0 });
      await f.turns();
      await clock.advance(1500); // retransmission timeouts, then persist
      f.peer({ ack: f.isn + 1 + 2920, window: 0 });
      await f.turns();
      await clock.advance(5000); // persist timer ticks
      await f.turns();
      expect(f.errors.map((e) => e.message)).toEqual([]);
      expect(f.victim.closed).toBe(false);
      // The connection still works: more data once the window opens.
      f.peer({ ack: f.isn + 1 + 2920, window: 65535 });
      f.sock.write(Buffer.alloc(100, 7));
      await f.turns();
      expect(f.tcpOut().filter((t) => t.payload.length > 0).at(-1)!.payload.length).toBe(100);
    } finally {
      f.victim.close();
    }
  });

  it('the DNS forwarder drops a UDP query from source port 0 (counted malformed) instead of throwing on its reply', async () => {
    // npm run fuzz (gateway:dns, seed 20261212): a query from port 0 got an
    // answer sent to port 0, which UdpSocket.send rejects with TypeError,
    // thrown in a promise callback: an unhandled rejection.
    const s = createStack();
    const unhandled: unknown[] = [];
    const onUnhandled = (e: unknown) => unhandled.push(e);
    process.on('unhandledRejection', onUnhandled);
    const sent: Uint8Array[] = [];
    let deliver: ((frame: Uint8Array) => void) | null = null;
    s.addInterface({
      link: { medium: 'ip', mtu: 1500, attach: (r) => (deliver = r), send: (f) => void sent.push(Uint8Array.from(f)), close: () => (deliver = null) },
      ipv4: '10.9.0.1/24',
    });
    const forwarder = new DnsForwarder({
      stack: s, address: '10.9.0.1', hosts: { 'host.test': ['10.9.0.7'] },
      resolver: { resolve4: () => Promise.reject(new Error('none')), resolve6: () => Promise.reject(new Error('none')) },
    });
    try {
      await forwarder.listen();
      const src = parseIp('10.9.0.2')!;
      const dst = parseIp('10.9.0.1')!;
      const query = (srcPort: number) => deliver!(buildIPv4Packet({
        src, dst, protocol: IpProtocol.UDP, ttl: 64,
        payload: buildUdpDatagram({ srcPort, dstPort: 53, payload: encodeDnsQuery({ id: 7, name: 'host.test', type: 1 }), src, dst }),
      }));
      const before = forwarder.counters.malformed;
      query(0);
      for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
      expect(unhandled).toEqual([]);
      expect(forwarder.counters.malformed - before).toBe(1);
      // From a real port the same query is answered.
      query(5353);
      for (let i = 0; i < 50 && !sent.some((f) => f[9] === IpProtocol.UDP); i++) await new Promise((r) => setImmediate(r));
      expect(sent.filter((f) => f[9] === IpProtocol.UDP).length).toBe(1);
    } finally {
      process.off('unhandledRejection', onUnhandled);
      await forwarder.close();
      s.close();
    }
  });

  it("a stack's drop counters do not wrap at 65,536 (lwIP's default 16-bit counters did)", async () => {
    const s = createStack();
    const [a, b] = createCable({ mtu: 1500 });
    a.attach(() => undefined);
    s.addInterface({ link: b, ipv4: '10.9.0.1/24', mac: '02:00:00:00:09:01' });
    try {
      const src = parseIp('10.9.0.2')!;
      const dst = parseIp('10.9.0.1')!;
      const seg = buildTcpSegment({ srcPort: 5555, dstPort: 80, seqNumber: 1, flags: TcpFlags.ACK, window: 1000, src, dst });
      seg[16] = seg[16]! ^ 1; // a bad checksum: each one is counted in tcp.chkerr
      const frame = buildEthernetFrame({ dst: parseMac('02:00:00:00:09:01')!, src: parseMac('02:00:00:00:09:02')!, etherType: EtherType.IPv4 },
        buildIPv4Packet({ src, dst, protocol: IpProtocol.TCP, ttl: 64, payload: seg }));
      const n = 70_000;
      for (let i = 0; i < n; i++) {
        a.send(frame);
        if (i % 200 === 199) await new Promise((r) => setImmediate(r));
      }
      for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
      expect(stackDrops(s)['tcp.chkerr']).toBe(n);
      expect(s.stats().protocols.ip.recv).toBeGreaterThanOrEqual(n);
    } finally {
      s.close();
    }
  });
});
