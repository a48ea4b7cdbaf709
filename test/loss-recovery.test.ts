/**
 * Loss recovery, frame by frame, on a manual clock: two stacks on a cable
 * whose frames a test can drop one by one and whose every TCP segment is
 * recorded with the clock's time. Each case is a loss pattern the patches
 * (wasm/patches/1xx) must recover from in a given way; none measures speed.
 */
import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { createCable, createStack, ManualClock, type Link, type Stack, type TcpSocket } from '../src/index.js';

interface Segment {
  at: number;
  seq: number;
  ack: number;
  len: number;
}

/** The TCP segment in an Ethernet/IPv4 frame, or null. */
function tcpOf(frame: Uint8Array): { seq: number; ack: number; len: number } | null {
  if (frame.length < 54 || frame[12] !== 0x08 || frame[13] !== 0x00 || frame[23] !== 6) return null;
  const dv = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  const ihl = (frame[14]! & 0x0f) * 4;
  const tcp = 14 + ihl;
  const doff = (frame[tcp + 12]! >> 4) * 4;
  return { seq: dv.getUint32(tcp + 4), ack: dv.getUint32(tcp + 8), len: dv.getUint16(16) - ihl - doff };
}

/**
 * Wraps a cable end: records each TCP segment it sends (with the clock's
 * time) and drops those `drop` says to, before they reach the cable.
 */
function watched(inner: Link, clock: ManualClock) {
  const sent: Segment[] = [];
  const w = {
    sent,
    drop: (_s: Segment): boolean => false,
    dropped: 0,
    link: {
      medium: inner.medium,
      mtu: inner.mtu,
      attach: (r: Parameters<Link['attach']>[0]) => inner.attach(r),
      send(frame: Uint8Array) {
        const t = tcpOf(frame);
        if (t) {
          const s = { at: clock.now(), ...t };
          if (w.drop(s)) {
            w.dropped++;
            return;
          }
          sent.push(s);
        }
        inner.send(frame);
      },
      close: () => inner.close(),
    } satisfies Link,
  };
  return w;
}

const stacks: Stack[] = [];
afterEach(() => {
  for (const s of stacks.splice(0)) s.close();
});

/** Two stacks on a manual clock, connected, with some data exchanged so that an RTT is known. */
async function connected() {
  const clock = new ManualClock(1_000);
  const a = createStack({ clock });
  const b = createStack({ clock });
  stacks.push(a, b);
  const [la, lb] = createCable({ mtu: 1500 });
  const wa = watched(la, clock);
  const wb = watched(lb, clock);
  a.addInterface({ link: wa.link, ipv4: '10.0.0.1/24' });
  b.addInterface({ link: wb.link, ipv4: '10.0.0.2/24' });
  let server!: TcpSocket;
  let received = 0;
  const accepted = new Promise<void>((resolve) => {
    b.createServer((s) => {
      server = s;
      s.on('data', (d: Buffer) => (received += d.length));
      resolve();
    }).listen(80);
  });
  const client = a.connect(80, '10.0.0.2');
  // No Nagle: lwIP's compares a segment with the MSS before the 12
  // bytes of timestamps, so it would hold back even a full last segment
  // while anything is unacknowledged, and the patterns below are about
  // loss, not about that.
  client.setNoDelay(true);
  let up = false;
  void once(client, 'connect').then(() => (up = true));
  for (let i = 0; i < 100 && !up; i++) await clock.advance(1);
  await accepted;
  const until = async (done: () => boolean, ms: number) => {
    for (let i = 0; i < ms && !done(); i++) await clock.advance(1);
  };
  client.write(Buffer.alloc(20_000, 1));
  await until(() => received === 20_000, 100);
  expect(received).toBe(20_000);
  await clock.advance(100); // B's delayed ACK of the last segment, so that nothing is unacknowledged
  return { clock, a, b, wa, wb, client, server, received: () => received, until };
}

describe('loss recovery on a manual clock', () => {
  it('a two-segment tail whose ACKs are lost is answered by one tail loss probe (the last segment, then the first), not a retransmission timeout', async () => {
    const { clock, a, wa, wb, client, received, until } = await connected();
    const before = a.stats().tcpLoss;
    // Drop what B sends for the next 2 ms: the ACKs of the two segments
    // below. The probe, due 2 x SRTT + 2 ms after them, is answered.
    const start = clock.now();
    wb.drop = () => clock.now() < start + 2;
    client.write(Buffer.alloc(2 * 1448, 2));
    await until(() => received() === 20_000 + 2 * 1448, 50);
    expect(received()).toBe(20_000 + 2 * 1448);
    // Past the 200 ms RTO floor: a tail left unacknowledged would have
    // timed out by now.
    await clock.advance(300);
    const after = a.stats().tcpLoss;
    expect(wb.dropped).toBeGreaterThan(0);
    expect(after.probes - before.probes).toBe(1);
    expect(after.timeouts - before.timeouts).toBe(0);
    // The probe: the last segment again, then the first (a duplicate the
    // receiver ACKs at once, whether or not the last had arrived).
    const data = wa.sent.filter((s) => s.at >= start && s.len > 0);
    expect(data.length).toBe(4);
    expect(data[2]!.at).toBeGreaterThan(start);
    expect([data[2]!.seq, data[3]!.seq]).toEqual([data[1]!.seq, data[0]!.seq]);
  });

  it('the lost delayed ACK of a lone segment brings a probe at the RTO\'s time, not a timeout that would shrink the window', async () => {
    const { clock, a, wb, client, received, until } = await connected();
    const before = a.stats().tcpLoss;
    // One segment alone: B delays its ACK (40 ms), and that ACK is lost.
    // The probe's time (2 x SRTT + 2 ms + 200 ms for a delayed ACK) is
    // past the RTO's, so it goes at the RTO's time instead of the RTO.
    const start = clock.now();
    wb.drop = () => clock.now() > start && clock.now() < start + 100;
    client.write(Buffer.alloc(1000, 3));
    await until(() => received() === 20_000 + 1000, 50);
    expect(received()).toBe(20_000 + 1000);
    await clock.advance(500);
    const after = a.stats().tcpLoss;
    expect(wb.dropped).toBe(1);
    expect(after.probes - before.probes).toBe(1);
    expect(after.timeouts - before.timeouts).toBe(0);
  });

  it('our receiver ACKs at once the segment that fills a gap, and the next in-order segments after it', async () => {
    const { clock, wa, wb, client, received, until } = await connected();
    // Drop the first data segment of the next write; the two after it
    // arrive out of order and the sender's RACK retransmits it.
    let lostSeq = -1;
    wa.drop = (s) => {
      if (lostSeq < 0 && s.len > 0) {
        lostSeq = s.seq;
        return true;
      }
      return false;
    };
    client.write(Buffer.alloc(3 * 1448, 4));
    await until(() => received() === 20_000 + 3 * 1448, 100);
    expect(received()).toBe(20_000 + 3 * 1448);
    const retransmission = wa.sent.find((s) => s.seq === lostSeq && s.len > 0)!;
    expect(retransmission).toBeDefined();
    const filled = (lostSeq + 3 * 1448) >>> 0;
    const ackOfFill = wb.sent.find((s) => s.ack === filled)!;
    expect(ackOfFill).toBeDefined();
    expect(ackOfFill.at).toBe(retransmission.at); // not a delayed ACK (40 ms) later

    // A lone in-order segment right after: ACKed at once too (quick ACKs).
    const t = clock.now();
    client.write(Buffer.alloc(1000, 5));
    await until(() => received() === 20_000 + 3 * 1448 + 1000, 100);
    const ackOfLone = wb.sent.find((s) => s.ack === ((filled + 1000) >>> 0))!;
    expect(ackOfLone).toBeDefined();
    expect(ackOfLone.at - t).toBeLessThan(40);
    expect(ackOfLone.at).toBe(wa.sent.find((s) => s.seq === filled)!.at);
  });
});
