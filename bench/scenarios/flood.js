// Flood: one stack in the process takes a SYN flood on its cable while two
// neighbour pairs transfer TCP bulk. Figures: the neighbours' throughput with
// and without the flood (and their ratio; the target is >= 0.8), the
// event loop's worst gap during the flood, and how many SYNs per second the
// flooded stack fed to lwIP (the rest were dropped at its input queue).
import { createCable, createStack } from '../../dist/index.js';
import { parseIp, parseMac } from '../../dist/wire/address.js';
import { buildEthernetFrame, EtherType } from '../../dist/wire/ethernet.js';
import { buildIPv4Packet, IpProtocol } from '../../dist/wire/ipv4.js';
import { buildTcpSegment, TcpFlags } from '../../dist/wire/tcp.js';
import { Cleanup, nowMs } from '../lib/util.js';

/** Frames the attacker puts on the cable per event-loop turn. */
const BURST = 4000;

function synFrames(count) {
  const src = parseIp('10.9.0.2');
  const dst = parseIp('10.9.0.1');
  const srcMac = parseMac('02:00:00:00:09:02');
  const dstMac = parseMac('02:00:00:00:09:01');
  const frames = [];
  for (let i = 0; i < count; i++) {
    const seg = buildTcpSegment({
      srcPort: 1024 + (i % 64000), dstPort: 80, seqNumber: (i * 2654435761) >>> 0, flags: TcpFlags.SYN, window: 65535,
      options: { mss: 1460, windowScale: 7, sackPermitted: true }, src, dst,
    });
    const ip = buildIPv4Packet({ src, dst, protocol: IpProtocol.TCP, identification: i & 0xffff, payload: seg });
    frames.push(buildEthernetFrame({ dst: dstMac, src: srcMac, etherType: EtherType.IPv4 }, ip));
  }
  return frames;
}

function listen(stack, port, onConnection) {
  return new Promise((resolve) => stack.createServer(onConnection).listen(port, resolve));
}

/** A pair streaming a -> b; returns a byte counter. */
async function neighbour(cleanup, n) {
  const a = createStack();
  const b = createStack();
  cleanup.add(() => a.close());
  cleanup.add(() => b.close());
  const [la, lb] = createCable({ mtu: 1500 });
  a.addInterface({ link: la, ipv4: `10.${n}.0.1/24` });
  b.addInterface({ link: lb, ipv4: `10.${n}.0.2/24` });
  const state = { received: 0, running: true };
  await listen(b, 5001, (s) => s.on('error', () => {}).on('data', (d) => (state.received += d.length)));
  const sock = a.connect(5001, `10.${n}.0.2`);
  sock.on('error', () => {});
  await new Promise((r) => sock.once('connect', r));
  const chunk = Buffer.alloc(64 * 1024, 7);
  const pump = () => {
    while (state.running && sock.write(chunk));
    if (state.running) sock.once('drain', pump);
  };
  pump();
  cleanup.add(() => {
    state.running = false;
    sock.destroy();
  });
  return state;
}

async function run(flood, timing) {
  const cleanup = new Cleanup();
  try {
    const victim = createStack();
    cleanup.add(() => victim.close());
    const [attacker, victimLink] = createCable();
    attacker.attach(() => undefined);
    victim.addInterface({ link: victimLink, ipv4: '10.9.0.1/24', mac: '02:00:00:00:09:01' });
    await listen(victim, 80, () => undefined);
    const frames = flood ? synFrames(60_000) : [];
    const n = [await neighbour(cleanup, 1), await neighbour(cleanup, 2)];
    const end = nowMs() + timing.warmup;
    while (nowMs() < end) await new Promise((r) => setImmediate(r));
    const before = n.map((s) => s.received);
    let gap = 0;
    let last = nowMs();
    let sent = 0;
    const start = nowMs();
    while (nowMs() - start < timing.duration) {
      if (flood) for (let i = 0; i < BURST; i++) attacker.send(frames[sent++ % frames.length]);
      await new Promise((r) => setImmediate(r));
      const now = nowMs();
      gap = Math.max(gap, now - last);
      last = now;
    }
    const seconds = (nowMs() - start) / 1000;
    const bytes = n.reduce((t, s, i) => t + s.received - before[i], 0);
    const st = victim.stats();
    const queueFull = Object.values(st.interfaces).reduce((t, i) => t + (i.rxDropped.queueFull ?? 0), 0);
    return { gbits: (bytes * 8) / seconds / 1e9 / 2, gapMs: gap, synsFed: (sent - queueFull) / seconds, synsSent: sent / seconds, heapBytes: st.heapBytes };
  } finally {
    cleanup.run();
  }
}

export default {
  name: 'flood',
  title: 'neighbours while one stack in the process is SYN-flooded',
  description: 'Two stack pairs transfer TCP bulk (MTU 1500) in one process with and without a SYN flood (4000 frames per turn) on a third stack; their throughput, the ratio, the worst event-loop gap and the SYNs fed to the flooded stack per second.',
  async run(ctx) {
    const timing = ctx.quick ? { warmup: 300, duration: 1500 } : { warmup: 1000, duration: 5000 };
    const doing = `${timing.warmup / 1000} s warm-up, ${timing.duration / 1000} s measured`;
    let quiet = null;
    await ctx.measure({ label: 'neighbour TCP bulk, no flood', doing, unit: 'Gbit/s', id: 'flood-neighbour-quiet' }, async () => {
      quiet = await run(false, timing);
      return { id: 'flood-neighbour-quiet', label: 'neighbour TCP bulk, no flood', unit: 'Gbit/s', value: quiet.gbits, group: 'neighbours under a flood', detail: quiet };
    });
    const expect = [
      { id: 'flood-neighbour', label: 'neighbour TCP bulk, flood on a third stack', unit: 'Gbit/s', group: 'neighbours under a flood' },
      { id: 'flood-neighbour-ratio', label: 'neighbour throughput, flood / no flood', unit: '×', group: 'neighbours under a flood: ratio', target: { op: '>=', value: 0.8 } },
      { id: 'flood-loop-gap', label: 'worst event-loop gap during the flood', unit: 'ms', group: 'flood: event loop' },
      { id: 'flood-syns-fed', label: 'SYNs fed to the flooded stack', unit: 'SYN/s', group: 'flood: SYNs' },
    ];
    await ctx.measure({ label: 'neighbours during a SYN flood', doing, expect }, async () => {
      const r = await run(true, timing);
      return [
        { ...expect[0], value: r.gbits, detail: r },
        { ...expect[1], value: quiet ? r.gbits / quiet.gbits : null },
        { ...expect[2], value: r.gapMs },
        { ...expect[3], value: r.synsFed },
      ];
    });
  },
};
