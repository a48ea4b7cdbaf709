import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { capture, createCable, createStack, emulate, ManualClock, type Link, type Stack, type TcpSocket } from '../src/index.js';
import { buildEthernetFrame } from '../src/wire/ethernet.js';
import { transfer } from './support/transfer.js';

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

const SRC = new Uint8Array([2, 0, 0, 0, 0, 1]);
const DST = new Uint8Array([2, 0, 0, 0, 0, 2]);
/** Frame number i: its number in the first payload bytes, `size` bytes in all. */
function numbered(i: number, size = 100): Uint8Array {
  const payload = new Uint8Array(size - 14);
  new DataView(payload.buffer).setUint32(0, i);
  return buildEthernetFrame({ dst: DST, src: SRC, etherType: 0x88b5 }, payload);
}
const numberOf = (f: Uint8Array) => new DataView(f.buffer, f.byteOffset).getUint32(14);

/** An emulated cable end whose far end records what arrives (and when, on `clock`). */
function bench(options: Parameters<typeof emulate>[1], clock = new ManualClock()) {
  const [near, far] = createCable({ mtu: 9000 });
  const link = emulate(near, { clock, ...options });
  const got: { at: number; frame: Uint8Array }[] = [];
  far.attach((f) => got.push({ at: clock.now(), frame: f.slice() }));
  link.attach(() => undefined);
  return { link, got, clock };
}

function meanSd(xs: number[]): { mean: number; sd: number } {
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const sd = Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (xs.length - 1));
  return { mean, sd };
}

function twoStacks(options: Parameters<typeof emulate>[1], clock?: ManualClock) {
  const a = createStack(clock ? { clock } : {});
  const b = createStack(clock ? { clock } : {});
  cleanup.push(() => { a.close(); b.close(); });
  const [la, lb] = createCable({ mtu: 1500 });
  const link = emulate(la, { ...options, clock });
  a.addInterface({ link, ipv4: '10.0.0.1/24' });
  b.addInterface({ link: lb, ipv4: '10.0.0.2/24' });
  return { a, b, link };
}

async function connected(a: Stack, b: Stack): Promise<[TcpSocket, TcpSocket]> {
  const server = b.createServer({ allowHalfOpen: true } as never);
  server.listen(5001);
  await once(server, 'listening');
  const accepted = once(server, 'connection');
  const client = a.connect({ port: 5001, host: '10.0.0.2', allowHalfOpen: true });
  await once(client, 'connect');
  const [peer] = (await accepted) as [TcpSocket];
  return [client, peer];
}

/** Two stacks on `link` and `far`, both on `clock`. */
function stacksOn(link: Link, far: Link, clock: ManualClock) {
  const a = createStack({ clock });
  const b = createStack({ clock });
  cleanup.push(() => { a.close(); b.close(); });
  a.addInterface({ link, ipv4: '10.0.0.1/24' });
  b.addInterface({ link: far, ipv4: '10.0.0.2/24' });
  return { a, b };
}

/**
 * Moves a ManualClock on 1 ms at a time, letting the stacks' I/O run between
 * steps, until stopped: virtual time for a whole transfer. Bounded: an hour
 * of virtual time at most (a test that needs it has failed anyway).
 */
function driveClock(clock: ManualClock): { stop(): Promise<void> } {
  let running = true;
  const loop = (async () => {
    for (let i = 0; running && i < 3_600_000; i++) await clock.advance(1);
  })();
  return { stop: async () => { running = false; await loop; } };
}

describe('emulate', () => {
  it('10,000 pings through delay 10 ms ± 2 ms (normal) each way: RTT mean and deviation match, on a manual clock', async () => {
    const clock = new ManualClock();
    const { a, link } = twoStacks({ delay: 10, jitter: 2, distribution: 'normal', seed: 1 }, clock);
    const first = a.ping('10.0.0.2', { timeout: 5000 }); // ARP on the way
    await clock.advance(100);
    await first;
    const rtts: number[] = [];
    for (let batch = 0; batch < 50; batch++) {
      const pings = Array.from({ length: 200 }, () => a.ping('10.0.0.2', { timeout: 5000 }).then((r) => rtts.push(r)));
      // The largest RTT is 20 ms + a few deviations: 60 ms holds all.
      for (let t = 0; t < 60; t += 10) await clock.advance(10);
      await Promise.all(pings);
    }
    expect(rtts.length).toBe(10_000);
    const { mean, sd } = meanSd(rtts);
    // Two independent draws of N(10, 2²): N(20, 8). The mean's standard error
    // is 0.028 ms, the deviation's about 0.7 %: bounds of 5 and 4 of those.
    expect(Math.abs(mean - 20)).toBeLessThan(0.15);
    expect(Math.abs(sd - Math.sqrt(8)) / Math.sqrt(8)).toBeLessThan(0.03);
    expect(link.counters.egress.frames).toBeGreaterThanOrEqual(10_001);
  }, 60_000);

  it('uniform jitter stays within delay ± jitter, and every frame arrives after exactly its draw', async () => {
    const { link, got, clock } = bench({ delay: 5, jitter: 1.5, seed: 7, queueLimit: 10_000 });
    for (let i = 0; i < 5000; i++) link.send(numbered(i));
    await clock.advance(10);
    expect(got.length).toBe(5000);
    const delays = got.map((g) => g.at);
    expect(Math.min(...delays)).toBeGreaterThanOrEqual(3.5);
    expect(Math.max(...delays)).toBeLessThanOrEqual(6.5);
    const { mean, sd } = meanSd(delays);
    expect(Math.abs(mean - 5)).toBeLessThan(0.05);
    expect(Math.abs(sd - 1.5 / Math.sqrt(3))).toBeLessThan(0.03);
    // Jitter reorders, as netem's time-ordered queue does.
    expect(got.some((g, i) => i > 0 && numberOf(g.frame) < numberOf(got[i - 1]!.frame))).toBe(true);
  });

  it('random loss, duplication and corruption rates fall within binomial bounds', () => {
    const n = 100_000;
    const { link, got } = bench({ loss: 0.05, duplicate: 0.02, corrupt: 0.01, seed: 3 });
    const sent = Array.from({ length: n }, (_, i) => numbered(i));
    for (const f of sent) link.send(f);
    const c = link.counters.egress;
    // 5 standard deviations of a binomial count: sqrt(n p (1 − p)).
    const within = (count: number, p: number, trials = n) => Math.abs(count - trials * p) < 5 * Math.sqrt(trials * p * (1 - p));
    expect(within(c.duplicated, 0.02)).toBe(true);
    expect(within(c.lost, 0.05, n + c.duplicated)).toBe(true);
    expect(within(c.corrupted, 0.01, got.length)).toBe(true);
    expect(got.length).toBe(n + c.duplicated - c.lost);
    // A corrupted frame differs from what was sent in exactly one bit.
    let oneBit = 0;
    for (const g of got) {
      const i = numberOf(g.frame);
      const orig = i < n ? sent[i] : undefined;
      if (!orig) continue;
      let bits = 0;
      for (let k = 0; k < orig.length; k++) for (let x = orig[k]! ^ g.frame[k]!; x; x &= x - 1) bits++;
      if (bits === 1) oneBit++;
      else expect(bits).toBe(0);
    }
    // (A flip in the number itself makes the frame look like another one: rare, counted out.)
    expect(c.corrupted - oneBit).toBeLessThan(c.corrupted * 0.1);
  });

  it('Gilbert–Elliott loss comes in bursts with the model\'s mean rate and burst length', () => {
    const n = 200_000;
    const { link, got } = bench({ loss: { p: 0.01, r: 0.25 }, seed: 11 });
    for (let i = 0; i < n; i++) link.send(numbered(i));
    const lostRate = link.counters.egress.lost / n;
    // Stationary share of the bad state p/(p+r), every frame lost there.
    expect(Math.abs(lostRate - 0.01 / 0.26) / (0.01 / 0.26)).toBeLessThan(0.1);
    const bursts: number[] = [];
    let prev = -1;
    for (const g of got) {
      const k = numberOf(g.frame);
      if (k > prev + 1) bursts.push(k - prev - 1);
      prev = k;
    }
    // netem's order (move, then draw in the state the frame found) loses the frame that leaves the bad state too: bursts are 1/r frames long on average.
    expect(Math.abs(meanSd(bursts).mean - 4) / 4).toBeLessThan(0.1);
  });

  it('reorder sends a share of frames at once, ahead of the delayed ones', async () => {
    const { link, got, clock } = bench({ delay: 10, reorder: 0.25, seed: 5, queueLimit: 10_000 });
    for (let i = 0; i < 10_000; i++) link.send(numbered(i));
    const early = got.length;
    expect(Math.abs(early - 2500)).toBeLessThan(5 * Math.sqrt(10_000 * 0.25 * 0.75));
    expect(link.counters.egress.reordered).toBe(early);
    await clock.advance(10);
    expect(got.length).toBe(10_000);
    expect(got.slice(early).every((g) => g.at === 10)).toBe(true);
  });

  it('a rate limit serialises frames and drops at the tail of a bounded queue', async () => {
    const { link, got, clock } = bench({ rate: 8e6, queueLimit: 100, seed: 1 }); // 1 byte per µs
    for (let i = 0; i < 300; i++) link.send(numbered(i, 1000));
    expect(link.counters.egress).toMatchObject({ queued: 100, queueDropped: 200 });
    await clock.advance(1000);
    expect(got.map((g) => numberOf(g.frame))).toEqual(Array.from({ length: 100 }, (_, i) => i));
    expect(got.map((g) => g.at)).toEqual(Array.from({ length: 100 }, (_, i) => (i + 1) * 1));
  });

  it('changes settings at run time, each direction on its own', async () => {
    const clock = new ManualClock();
    const { link, got } = bench({ egress: { delay: 5 }, seed: 2 }, clock);
    link.send(numbered(0));
    link.set({ delay: 1 }, 'egress');
    link.send(numbered(1));
    await clock.advance(10);
    expect(got.map((g) => [numberOf(g.frame), g.at])).toEqual([[1, 1], [0, 5]]);
    expect(link.settings('ingress').delay).toBe(0);
    expect(link.settings('egress').delay).toBe(1);
  });

  it('the same seed and a manual clock give the identical pcap; another seed does not', async () => {
    const run = async (seed: number) => {
      const clock = new ManualClock();
      const [near, far] = createCable({ mtu: 9000 });
      const chunks: Uint8Array[] = [];
      const recorded = capture(far, (b) => chunks.push(b.slice()), { wallClock: () => clock.now() });
      recorded.attach(() => undefined);
      const link = emulate(near, {
        clock, seed, delay: 3, jitter: 2, distribution: 'paretonormal', loss: { p: 0.02, r: 0.3 }, duplicate: 0.03,
        reorder: 0.1, reorderGap: 3, corrupt: 0.02, rate: 50e6, queueLimit: 200,
      });
      link.attach(() => undefined);
      for (let i = 0; i < 3000; i++) {
        link.send(numbered(i, 64 + (i % 1400)));
        if (i % 10 === 9) await clock.advance(0.25);
      }
      await clock.advance(1000);
      return Buffer.concat(chunks);
    };
    const one = await run(42);
    const two = await run(42);
    const other = await run(43);
    expect(one.length).toBeGreaterThan(100_000);
    expect(one.equals(two)).toBe(true);
    expect(one.equals(other)).toBe(false);
  });

  it('a 100 Mbit/s rate holds within 5 % for a TCP transfer, measured in virtual time (a token bucket of one frame)', async () => {
    const clock = new ManualClock();
    const RATE = 100e6;
    // The wire behind the limiter: when (virtual ms) each frame left it, and its bytes.
    const departures: { at: number; bytes: number }[] = [];
    const [la, lb] = createCable({ mtu: 1500 });
    const wire: Link = {
      medium: la.medium, mtu: la.mtu,
      attach: (r) => la.attach(r),
      send: (f) => { departures.push({ at: clock.now(), bytes: f.length }); la.send(f); },
      close: () => la.close(),
    };
    const { a, b } = stacksOn(emulate(wire, { egress: { rate: RATE }, clock }), lb, clock);
    const drive = driveClock(clock);
    try {
      const [client, server] = await connected(a, b);
      const size = 24 << 20;
      let received = 0, firstAt = -1, lastAt = 0;
      server.on('data', (d: Buffer) => {
        if (firstAt < 0) firstAt = clock.now();
        received += d.length;
        lastAt = clock.now();
      });
      const done = once(server, 'end');
      const chunk = Buffer.alloc(1 << 20, 0x5a);
      for (let i = 0; i < size >> 20; i++) if (!client.write(chunk)) await once(client, 'drain');
      client.end();
      await done;
      expect(received).toBe(size);
      const wireFrames = departures.filter((d) => d.bytes > 1000);
      expect(wireFrames.length).toBeGreaterThan(16_000);
      // Token bucket semantics (tbf with a bucket of one frame, which is what
      // netem's rate is): in no stretch of time [t_i, t_j] does more leave
      // than RATE × (t_j − t_i) plus one frame. With C the running byte count,
      // the worst stretch ending at j is C_j − RATE t_j − min_{i≤j}(C_{i−1} − RATE t_i).
      const bytesPerMs = RATE / 8000;
      let cum = 0, minStart = Infinity, worstExcess = -Infinity;
      for (const d of departures) {
        minStart = Math.min(minStart, cum - bytesPerMs * d.at);
        cum += d.bytes;
        worstExcess = Math.max(worstExcess, cum - bytesPerMs * d.at - minStart);
      }
      // (A thousandth of a byte for the float sums of some 25 MB.)
      expect(worstExcess).toBeLessThanOrEqual(1514 + 1e-3);
      // And the rate is reached: the wire from the first full-size frame to
      // the last (the span is their departures, so the first frame's bytes
      // left before it), within 5 % of RATE.
      const first = departures.indexOf(wireFrames[0]!), last = departures.lastIndexOf(wireFrames.at(-1)!);
      const spanBytes = departures.slice(first + 1, last + 1).reduce((n, d) => n + d.bytes, 0);
      const wireRate = (spanBytes * 8) / ((departures[last]!.at - departures[first]!.at) / 1000);
      expect(Math.abs(wireRate - RATE) / RATE).toBeLessThan(0.05);
      // What TCP made of it: payload bytes in virtual time, first byte to
      // last, within 5 % of RATE too. The headers take 4.4 % (1448 of 1514
      // bytes a frame carry data): TCP must keep the limiter's queue from
      // ever running dry (measured: 95.65 Mbit/s).
      const goodput = (received * 8) / ((lastAt - firstAt) / 1000);
      expect(goodput).toBeLessThan(RATE);
      expect(goodput).toBeGreaterThan(RATE * 0.95);
    } finally {
      await drive.stop();
    }
  }, 60_000);

  it('TCP over 5 % loss, 25 % reordering and 1 ms delay each way: 256 MiB both ways at MTU 65520 arrive byte-exact (sha256), in virtual time', async () => {
    // Both directions at once on one connection, every frame (data and ACKs)
    // through the same impairments. A ManualClock stands for time, so the
    // 1 ms delays and the retransmission timeouts cost no wall time: what
    // remains is the stacks' own work on 512 MiB (a few seconds). MTU 65520,
    // as stacks on in-process links commonly use, keeps that work small;
    // the next test does the same at MTU 1500 with less data.
    const clock = new ManualClock();
    const [la, lb] = createCable({ mtu: 65520 });
    const link = emulate(la, { delay: 1, loss: 0.05, reorder: 0.25, seed: 9, clock });
    const { a, b } = stacksOn(link, lb, clock);
    const drive = driveClock(clock);
    try {
      const [client, server] = await connected(a, b);
      const size = Number(process.env.EMULATE_BULK_KIB ?? 262144) << 10;
      const [up, down] = await Promise.all([transfer(client, size), transfer(server, size)]);
      expect(up.received).toBe(size);
      expect(down.received).toBe(size);
      expect(down.receivedSha256).toBe(up.sentSha256);
      expect(up.receivedSha256).toBe(down.sentSha256);
      // The impairments were there, and TCP recovered from them.
      const c = link.counters;
      expect(c.egress.lost).toBeGreaterThan(0.04 * c.egress.frames);
      expect(c.ingress.lost).toBeGreaterThan(0.04 * c.ingress.frames);
      expect(c.egress.reordered).toBeGreaterThan(0.2 * c.egress.delivered);
      expect(c.ingress.reordered).toBeGreaterThan(0.2 * c.ingress.delivered);
      expect(a.stats().tcpLoss.retransmits).toBeGreaterThan(0);
      expect(b.stats().tcpLoss.retransmits).toBeGreaterThan(0);
    } finally {
      await drive.stop();
    }
  }, 120_000);

  it('the same impairments at MTU 1500: 8 MiB both ways byte-exact (sha256), in virtual time', async () => {
    const clock = new ManualClock();
    const [la, lb] = createCable({ mtu: 1500 });
    const link = emulate(la, { delay: 1, loss: 0.05, reorder: 0.25, seed: 9, clock });
    const { a, b } = stacksOn(link, lb, clock);
    const drive = driveClock(clock);
    try {
      const [client, server] = await connected(a, b);
      const size = 8 << 20;
      const [up, down] = await Promise.all([transfer(client, size), transfer(server, size)]);
      expect(down.receivedSha256).toBe(up.sentSha256);
      expect(up.receivedSha256).toBe(down.sentSha256);
      expect(link.counters.egress.lost).toBeGreaterThan(0);
      expect(link.counters.ingress.reordered).toBeGreaterThan(0);
    } finally {
      await drive.stop();
    }
  }, 120_000);

  it('rejects bad options with a TypeError naming the option', () => {
    const [l] = createCable();
    expect(() => emulate(l, { loss: 5 })).toThrow(/"loss"/);
    expect(() => emulate(l, { delay: -1 })).toThrow(/"delay"/);
    expect(() => emulate(l, { reorder: 0.1 })).toThrow(/"reorder"/);
    expect(() => emulate(l, { egress: { rate: -5 } })).toThrow(/"egress.rate"/);
    expect(() => emulate(l, { distribution: 'cauchy' as never })).toThrow(/"distribution"/);
    expect(() => emulate(l, { seed: 1.5 })).toThrow(/"seed"/);
    expect(() => emulate(l, { queueLimit: 0 })).toThrow(/"queueLimit"/);
    expect(() => emulate(l).set({}, 'sideways' as never)).toThrow(/"direction"/);
  });
});
