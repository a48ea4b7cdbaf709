// Flood: one stack in the process takes a SYN flood on its cable while two
// neighbour pairs transfer TCP bulk and a client on a second cable keeps
// making requests to the flooded stack's listener. Figures: the neighbours'
// throughput with and without the flood (and their ratio; the target
// is >= 0.8), the event loop's worst gap during the flood, how many SYNs per
// second the flooded stack fed to lwIP (the rest were dropped at its input
// queue) and answered (SYN-ACKs on the wire: over the whole flood and in its
// last second, which shows whether it slows down as the flood goes on), and
// the legitimate client's request/response latency (p50, p99) during it.
import { execFile, execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createCable, createStack, openTap } from '../../dist/index.js';
import { parseIp, parseMac } from '../../dist/wire/address.js';
import { buildEthernetFrame, EtherType } from '../../dist/wire/ethernet.js';
import { buildIPv4Packet, IpProtocol } from '../../dist/wire/ipv4.js';
import { buildTcpSegment, TcpFlags } from '../../dist/wire/tcp.js';
import { Cleanup, nowMs, quantile } from '../lib/util.js';

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

/** Whether an Ethernet frame is an IPv4 TCP SYN-ACK (no options in IP). */
function isSynAck(f) {
  return f[12] === 0x08 && f[13] === 0x00 && f[23] === 6 && (f[47] & 0x12) === 0x12;
}

/**
 * A legitimate client on its own cable: `workers` loops, each connecting to
 * the flooded stack's listener, making 10 request/response exchanges of 64
 * bytes, closing and starting over. Records each exchange's latency.
 */
async function legitimate(cleanup, victim, workers) {
  const client = createStack();
  cleanup.add(() => client.close());
  const [lc, lv] = createCable({ mtu: 1500 });
  victim.addInterface({ link: lv, ipv4: '10.10.0.1/24' });
  client.addInterface({ link: lc, ipv4: '10.10.0.2/24' });
  const state = { latencies: [], connections: 0, failures: 0, running: true };
  const session = () => new Promise((resolve) => {
    const sock = client.connect(80, '10.10.0.1');
    let left = 10;
    let sentAt = 0;
    let got = 0;
    const ask = () => {
      sentAt = nowMs();
      got = 0;
      sock.write(Buffer.alloc(64, left));
    };
    sock.on('connect', () => {
      state.connections++;
      ask();
    });
    sock.on('data', (d) => {
      got += d.length;
      if (got < 64) return;
      if (state.measuring) state.latencies.push(nowMs() - sentAt);
      if (--left > 0 && state.running) ask();
      else sock.end();
    });
    sock.on('error', () => state.failures++);
    sock.on('close', resolve);
  });
  for (let i = 0; i < workers; i++) {
    (async () => {
      while (state.running) await session();
    })();
  }
  cleanup.add(() => (state.running = false));
  return state;
}

async function run(flood, timing) {
  const cleanup = new Cleanup();
  try {
    const victim = createStack();
    cleanup.add(() => victim.close());
    const [attacker, victimLink] = createCable();
    const synAcks = { total: 0 };
    attacker.attach((frame) => {
      if (isSynAck(frame)) synAcks.total++;
    });
    victim.addInterface({ link: victimLink, ipv4: '10.9.0.1/24', mac: '02:00:00:00:09:01' });
    // The attacker's address resolves (as it would on a real link), so every
    // answer to a SYN goes out on the wire, where it is counted.
    victim.neighbors.add({ address: '10.9.0.2', mac: '02:00:00:00:09:02' });
    await listen(victim, 80, (s) => s.on('error', () => {}).pipe(s));
    const legit = await legitimate(cleanup, victim, 4);
    const frames = flood ? synFrames(60_000) : [];
    const n = [await neighbour(cleanup, 1), await neighbour(cleanup, 2)];
    const end = nowMs() + timing.warmup;
    while (nowMs() < end) await new Promise((r) => setImmediate(r));
    const before = n.map((s) => s.received);
    let gap = 0;
    let last = nowMs();
    let sent = 0;
    const start = nowMs();
    const synAcksAtStart = synAcks.total;
    let lastSecond = { at: start, count: synAcks.total };
    let prevSecond = lastSecond;
    legit.measuring = true;
    const connectionsAtStart = legit.connections;
    const failuresAtStart = legit.failures;
    while (nowMs() - start < timing.duration) {
      if (flood) for (let i = 0; i < BURST; i++) attacker.send(frames[sent++ % frames.length]);
      await new Promise((r) => setImmediate(r));
      const now = nowMs();
      gap = Math.max(gap, now - last);
      last = now;
      if (now - lastSecond.at >= 1000) {
        prevSecond = lastSecond;
        lastSecond = { at: now, count: synAcks.total };
      }
    }
    legit.measuring = false;
    const seconds = (nowMs() - start) / 1000;
    const bytes = n.reduce((t, s, i) => t + s.received - before[i], 0);
    const st = victim.stats();
    const queueFull = Object.values(st.interfaces).reduce((t, i) => t + (i.rxDropped.queueFull ?? 0), 0);
    const lat = legit.latencies.slice().sort((a, b) => a - b);
    return {
      gbits: (bytes * 8) / seconds / 1e9 / 2, gapMs: gap, synsFed: (sent - queueFull) / seconds, synsSent: sent / seconds,
      synsAnswered: (synAcks.total - synAcksAtStart) / seconds,
      synsAnsweredLastSecond: ((lastSecond.count - prevSecond.count) * 1000) / (lastSecond.at - prevSecond.at || 1),
      legitP50: quantile(lat, 0.5), legitP99: quantile(lat, 0.99), legitExchanges: lat.length,
      legitConnections: legit.connections - connectionsAtStart, legitFailures: legit.failures - failuresAtStart,
      heapBytes: st.heapBytes, memoryBytes: st.memoryBytes,
    };
  } finally {
    cleanup.run();
  }
}

const FLOODER_C = new URL('../../test/support/synflood.c', import.meta.url).pathname;
const CLIENTS = new URL('../../test/support/echo-clients.mjs', import.meta.url).pathname;

/** Runs a command in namespace ns to its end; resolves with its last stdout line as JSON. */
async function jsonIn(ns, cmd, args) {
  const child = spawn('ip', ['netns', 'exec', ns, cmd, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  const [code] = await once(child, 'exit');
  if (code !== 0) throw new Error(`${cmd} exited ${code}`);
  return JSON.parse(out.trim().split('\n').pop());
}

/**
 * The kernel floods a stack on a TAP with raw SYNs (test/support/synflood.c
 * on an AF_PACKET socket, from an address nobody owns) for `seconds`, while
 * 10 Linux clients (test/support/echo-clients.mjs) keep connecting to the
 * same listener and exchanging 64-byte messages. Uses only API that older
 * builds have too, so the same script measures before and after.
 */
async function runTap(seconds) {
  const dir = mkdtempSync(join(tmpdir(), 'tt-flood-'));
  const ns = `tt-flood-${process.pid}`;
  const stack = createStack();
  try {
    const flooder = join(dir, 'synflood');
    await promisify(execFile)('cc', ['-O2', '-o', flooder, FLOODER_C]);
    execFileSync('ip', ['netns', 'add', ns]);
    const tap = openTap({ name: 'tt0', netns: `/run/netns/${ns}` });
    execFileSync('ip', ['-n', ns, 'addr', 'add', '10.77.0.1/24', 'dev', 'tt0']);
    stack.addInterface({ link: tap, ipv4: '10.77.0.2/24', mac: '02:00:00:00:77:02' });
    stack.neighbors.add({ address: '10.77.0.50', mac: '02:00:00:00:77:50' });
    await listen(stack, 7, (s) => s.on('error', () => {}).pipe(s));
    let maxMemory = 0;
    const sample = setInterval(() => (maxMemory = Math.max(maxMemory, stack.stats().memoryBytes)), 100);
    const tx0 = stack.stats().interfaces.eth0.txFrames;
    const started = nowMs();
    const flood = jsonIn(ns, flooder, ['tt0', '02:00:00:00:77:02', '10.77.0.50', '10.77.0.2', '7', String(seconds), '1000000000']);
    await new Promise((r) => setTimeout(r, 500));
    const clients = jsonIn(ns, process.execPath, [CLIENTS, '10.77.0.2', '7', '10', '20', String(seconds - 1.5)]);
    const [f, c] = await Promise.all([flood, clients]);
    clearInterval(sample);
    const elapsed = (nowMs() - started) / 1000;
    const answered = (stack.stats().interfaces.eth0.txFrames - tx0) / elapsed; // nearly all SYN-ACKs
    return { offered: f.sent / f.seconds, answered, ...c, maxMemory };
  } finally {
    stack.close();
    try {
      execFileSync('ip', ['netns', 'delete', ns], { stdio: 'ignore' });
    } catch {
      /* not made */
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

export default {
  name: 'flood',
  title: 'neighbours while one stack in the process is SYN-flooded',
  description: 'Two stack pairs transfer TCP bulk (MTU 1500) in one process with and without a SYN flood (4000 frames per turn) on a third stack, whose listener a client on a second cable keeps using; the neighbours\' throughput, the ratio, the worst event-loop gap, the SYNs fed to and answered by the flooded stack per second (whole flood and last second), and the client\'s request/response latency.',
  async run(ctx) {
    const timing = ctx.quick ? { warmup: 300, duration: 1500 } : { warmup: 1000, duration: 10000 };
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
      { id: 'flood-syns-answered', label: 'SYNs answered (SYN-ACKs sent), whole flood', unit: 'SYN/s', group: 'flood: SYNs' },
      { id: 'flood-syns-answered-last', label: 'SYNs answered in the last second of the flood', unit: 'SYN/s', group: 'flood: SYNs' },
      { id: 'flood-legit-p50', label: 'legitimate request/response during the flood, p50', unit: 'ms', group: 'flood: legitimate client' },
      { id: 'flood-legit-p99', label: 'legitimate request/response during the flood, p99', unit: 'ms', group: 'flood: legitimate client' },
    ];
    await ctx.measure({ label: 'neighbours during a SYN flood', doing, expect }, async () => {
      const r = await run(true, timing);
      return [
        { ...expect[0], value: r.gbits, detail: r },
        { ...expect[1], value: quiet ? r.gbits / quiet.gbits : null },
        { ...expect[2], value: r.gapMs },
        { ...expect[3], value: r.synsFed },
        { ...expect[4], value: r.synsAnswered },
        { ...expect[5], value: r.synsAnsweredLastSecond },
        { ...expect[6], value: r.legitExchanges ? r.legitP50 : null },
        { ...expect[7], value: r.legitExchanges ? r.legitP99 : null },
      ];
    });

    if (process.getuid?.() !== 0) {
      ctx.log('TAP flood skipped: needs root (a TAP device in a network namespace)');
      return;
    }
    const seconds = ctx.quick ? 5 : 20;
    const tapRows = [
      { id: 'flood-tap-offered', label: 'kernel SYN flood over TAP: SYNs offered', unit: 'SYN/s', group: 'flood over TAP: SYNs' },
      { id: 'flood-tap-answered', label: 'kernel SYN flood over TAP: SYNs answered', unit: 'SYN/s', group: 'flood over TAP: SYNs' },
      { id: 'flood-tap-p50', label: 'kernel clients during the TAP flood, request/response p50', unit: 'ms', group: 'flood over TAP: legitimate clients' },
      { id: 'flood-tap-p99', label: 'kernel clients during the TAP flood, request/response p99', unit: 'ms', group: 'flood over TAP: legitimate clients' },
      { id: 'flood-tap-memory', label: 'flooded stack memory, most seen', unit: 'MiB', group: 'flood over TAP: memory' },
    ];
    await ctx.measure({ label: 'kernel SYN flood over TAP with 10 Linux clients', doing: `${seconds} s`, expect: tapRows }, async () => {
      const r = await runTap(seconds);
      return [
        { ...tapRows[0], value: r.offered, detail: r },
        { ...tapRows[1], value: r.answered },
        { ...tapRows[2], value: r.p50 },
        { ...tapRows[3], value: r.p99 },
        { ...tapRows[4], value: r.maxMemory / 2 ** 20 },
      ];
    });
  },
};
