// Topologies (issue 15): the in-process switch, link emulation and VXLAN.
// - TCP bulk between two stacks at MTU 1500 on a plain cable, through a
//   switch, on an emulated cable with nothing set (the wrapper's own cost)
//   and on a second cable (a control), four connections taking turns in
//   short slices so that load on the machine hits all alike; the switch and
//   the emulator as ratios to the cable (target ≥ 0.9);
// - switch forwarding: 64-byte frames through createSwitch() between two
//   ports (known unicast) and flooded to 8 ports, frames/s;
// - VXLAN (root): a stack here on openVxlan() to the kernel's vxlan device in
//   a namespace over a veth, next to the kernel's vxlan to the kernel's vxlan
//   between two namespaces over a veth; TCP one way, Gbit/s.
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createCable, createStack, createSwitch, emulate, openVxlan } from '../../dist/index.js';
import { Cleanup, nowMs, sleep, withTimeout } from '../lib/util.js';

const PORT = 5001;

function frame(dst, src, size = 64) {
  const f = new Uint8Array(size);
  f.set(dst, 0);
  f.set(src, 6);
  f[12] = 0x88;
  f[13] = 0xb5;
  return f;
}

/** Frames/s through a switch: `ports` cable ends, frames from the first to `dst`. */
function switchRate(ports, broadcast, count) {
  const sw = createSwitch();
  try {
    const links = Array.from({ length: ports }, () => sw.createLink());
    let delivered = 0;
    for (const l of links) l.attach(() => delivered++);
    const macs = links.map((_, i) => new Uint8Array([2, 0, 0, 0, 0, i + 1]));
    // Every port speaks once, so unicast destinations are known.
    links.forEach((l, i) => l.send(frame(new Uint8Array(6).fill(0xff), macs[i])));
    const f = frame(broadcast ? new Uint8Array(6).fill(0xff) : macs[1], macs[0]);
    // Warm-up (the JIT), then the measured run.
    for (let i = 0; i < count / 10; i++) links[0].send(f);
    delivered = 0;
    const t0 = nowMs();
    for (let i = 0; i < count; i++) links[0].send(f);
    const seconds = (nowMs() - t0) / 1000;
    return { framesPerSecond: count / seconds, deliveriesPerSecond: delivered / seconds, count, seconds };
  } finally {
    sw.close();
  }
}

/**
 * One TCP stream a → b on links made by `makeLinks(cleanup)`, connected once
 * and kept: `slice(ms)` keeps the sender full for ms and reports what went
 * through, then lets the pipe drain, so that the next flow's slice does not
 * pay for this one's queued bytes. Flows of every kind stay open side by
 * side and take turns in short slices: a change in the machine's load (other
 * jobs, GC, the JIT) then falls on all of them alike, and the connection
 * setup and slow start are paid once, not per figure.
 */
async function openFlow(makeLinks, cleanup) {
  const [la, lb] = makeLinks(cleanup);
  const a = createStack();
  cleanup.add(() => a.close());
  const b = createStack();
  cleanup.add(() => b.close());
  a.addInterface({ link: la, ipv4: '10.0.0.1/24' });
  b.addInterface({ link: lb, ipv4: '10.0.0.2/24' });
  let received = 0;
  const server = b.createServer((s) => {
    s.on('data', (d) => (received += d.length));
    s.on('error', () => {});
  });
  await new Promise((resolve) => server.listen(PORT, resolve));
  cleanup.add(() => server.close());
  const sock = a.connect(PORT, '10.0.0.2');
  cleanup.add(() => sock.destroy());
  sock.on('error', () => {});
  await once(sock, 'connect');
  const chunk = Buffer.alloc(256 * 1024, 0x5a);
  let running = false;
  let written = 0;
  const pump = () => {
    while (running) {
      written += chunk.length;
      if (!sock.write(chunk)) return;
    }
  };
  sock.on('drain', pump);
  return {
    async slice(ms) {
      const r0 = received;
      const t0 = nowMs();
      const c0 = process.cpuUsage();
      running = true;
      pump();
      await sleep(ms);
      running = false;
      const bits = (received - r0) * 8;
      const seconds = (nowMs() - t0) / 1000;
      const cpu = process.cpuUsage(c0);
      const drainUntil = nowMs() + 5000;
      while (received < written && nowMs() < drainUntil) await sleep(1);
      if (received < written) throw new Error(`flow did not drain: ${written - received} bytes still in flight after 5 s`);
      // CPU seconds of this process as well: bits per CPU second are what
      // the link costs, even when other work on the machine takes the cores away.
      return { bits, seconds, cpuSeconds: (cpu.user + cpu.system) / 1e6 };
    },
    /** The sender's loss-recovery counters: a flow that stalled on a timeout shows it here. */
    tcpLoss: () => a.stats().tcpLoss,
  };
}

const LINKS = {
  cable: () => createCable({ mtu: 1500 }),
  // A second plain cable: its ratio to the first is the method's own noise.
  control: () => createCable({ mtu: 1500 }),
  switch: (cleanup) => {
    const sw = createSwitch();
    cleanup.add(() => sw.close());
    return [sw.createLink(), sw.createLink()];
  },
  emulated: () => {
    const [a, b] = createCable({ mtu: 1500 });
    return [emulate(a, {}), b];
  },
};

const median = (xs) => [...xs].sort((x, y) => x - y)[Math.floor((xs.length - 1) / 2)];

// A kernel TCP peer: `serve` accepts one connection and counts what it reads
// until the end, printing Gbit/s from first byte to last; `send HOST BYTES`
// connects and writes.
const KPEER = `
const net = require('net');
const [mode, a, b] = process.argv.slice(1);
if (mode === 'serve') {
  const server = net.createServer((c) => {
    server.close();
    let n = 0, t0 = 0;
    c.on('data', (d) => { if (!t0) t0 = performance.now(); n += d.length; });
    c.on('end', () => { console.log(JSON.stringify({ gbits: n * 8 / ((performance.now() - t0) / 1000) / 1e9, bytes: n })); process.exit(0); });
  });
  server.listen(${PORT}, () => console.log('listening'));
} else {
  const block = Buffer.alloc(1 << 20, 7);
  const c = net.connect(${PORT}, a, () => {
    let sent = 0;
    const pump = () => { while (sent < Number(b)) { sent += block.length; if (!c.write(block)) return c.once('drain', pump); } c.end(); };
    pump();
  });
  c.on('close', () => process.exit(0));
}
`;

const sh = (args) => execFileSync(args[0], args.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
const inNs = (ns, args) => sh(['ip', 'netns', 'exec', ns, ...args]);

async function kernelServer(ns) {
  const child = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', KPEER, 'serve'], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  await withTimeout((async () => { while (!out.includes('listening')) await sleep(20); })(), 10_000, 'kernel peer to listen');
  return {
    child,
    result: () => withTimeout((async () => {
      while (!out.includes('}')) await sleep(20);
      return JSON.parse(out.trim().split('\n').pop());
    })(), 120_000, 'kernel peer result'),
  };
}

async function vxlanStackToKernel(bytes) {
  const ns = `tt-bvx-${process.pid}`;
  const ours = `vxb${process.pid % 100000}`;
  const cleanup = new Cleanup();
  try {
    sh(['ip', 'netns', 'add', ns]);
    cleanup.add(() => sh(['ip', 'netns', 'delete', ns]));
    sh(['ip', 'link', 'add', ours, 'type', 'veth', 'peer', 'name', 'vtn0', 'netns', ns]);
    // Deleted by name, not only with the namespace: the kernel tears a
    // namespace down in the background, and until it has, our end and its
    // route would still be here for the next run's packets to take.
    cleanup.add(() => sh(['ip', 'link', 'delete', ours]));
    sh(['ip', 'addr', 'add', '198.18.25.1/24', 'dev', ours]);
    sh(['ip', 'link', 'set', ours, 'up']);
    inNs(ns, ['ip', 'link', 'set', 'lo', 'up']);
    inNs(ns, ['ip', 'addr', 'add', '198.18.25.2/24', 'dev', 'vtn0']);
    inNs(ns, ['ip', 'link', 'set', 'vtn0', 'up']);
    // The kernel's inner checksums must be finished before our UDP socket sees them (test/vxlan.test.ts says why).
    inNs(ns, ['ethtool', '-K', 'vtn0', 'tx', 'off']);
    inNs(ns, ['ip', 'link', 'add', 'vx0', 'type', 'vxlan', 'id', '42', 'remote', '198.18.25.1', 'local', '198.18.25.2', 'dstport', '4789', 'dev', 'vtn0']);
    inNs(ns, ['ip', 'addr', 'add', '10.42.0.1/24', 'dev', 'vx0']);
    inNs(ns, ['ip', 'link', 'set', 'vx0', 'up']);
    const link = await openVxlan({ vni: 42, local: '198.18.25.1', remotes: ['198.18.25.2'] });
    const stack = createStack();
    cleanup.add(() => stack.close());
    stack.addInterface({ link, ipv4: '10.42.0.2/24' });
    await stack.ping('10.42.0.1', { timeout: 2000 });
    const peer = await kernelServer(ns);
    cleanup.add(() => peer.child.kill());
    const sock = stack.connect(PORT, '10.42.0.1');
    await once(sock, 'connect');
    const block = Buffer.alloc(1 << 20, 9);
    for (let sent = 0; sent < bytes; sent += block.length) if (!sock.write(block)) await once(sock, 'drain');
    sock.end();
    const r = await peer.result();
    return { ...r, sendErrors: link.socketCounters.sendErrors };
  } finally {
    cleanup.run();
  }
}

async function vxlanKernelToKernel(bytes) {
  const [a, b] = [`tt-bvxa-${process.pid}`, `tt-bvxb-${process.pid}`];
  const cleanup = new Cleanup();
  try {
    sh(['ip', 'netns', 'add', a]);
    cleanup.add(() => sh(['ip', 'netns', 'delete', a]));
    sh(['ip', 'netns', 'add', b]);
    cleanup.add(() => sh(['ip', 'netns', 'delete', b]));
    inNs(a, ['ip', 'link', 'add', 'vtn0', 'type', 'veth', 'peer', 'name', 'vtn0', 'netns', b]);
    for (const [ns, inside, remote, vx] of [[a, '198.18.26.1', '198.18.26.2', '10.42.0.1'], [b, '198.18.26.2', '198.18.26.1', '10.42.0.2']]) {
      inNs(ns, ['ip', 'link', 'set', 'lo', 'up']);
      inNs(ns, ['ip', 'addr', 'add', `${inside}/24`, 'dev', 'vtn0']);
      inNs(ns, ['ip', 'link', 'set', 'vtn0', 'up']);
      inNs(ns, ['ip', 'link', 'add', 'vx0', 'type', 'vxlan', 'id', '42', 'remote', remote, 'local', inside, 'dstport', '4789', 'dev', 'vtn0']);
      inNs(ns, ['ip', 'addr', 'add', `${vx}/24`, 'dev', 'vx0']);
      inNs(ns, ['ip', 'link', 'set', 'vx0', 'up']);
    }
    const peer = await kernelServer(a);
    cleanup.add(() => peer.child.kill());
    const sender = spawn('ip', ['netns', 'exec', b, process.execPath, '-e', KPEER, 'send', '10.42.0.1', String(bytes)], { stdio: 'ignore' });
    cleanup.add(() => sender.kill());
    return await peer.result();
  } finally {
    cleanup.run();
  }
}

export default {
  name: 'topology',
  title: 'switch, link emulation, VXLAN',
  description: 'createSwitch() forwarding (frames/s) and TCP through it, emulate() with nothing set against a plain cable, both as ratios (target ≥ 0.9); as root, TCP from a stack on openVxlan() to the kernel\'s vxlan next to kernel vxlan ↔ kernel vxlan, over veths.',
  async run(ctx) {
    // Short slices, the kinds in turn (the order turning each time), pooled
    // into rounds: each round's ratio compares kinds that ran within the same
    // second or two, interleaved at a tenth of a second or so, so that the
    // load other jobs put on the machine, which moves on that scale, falls
    // on all alike. First a warm-up that lets V8 tier the wasm and the JS up
    // (the first seconds run on baseline code, a third slower, and would
    // favour whichever kind came last).
    const timing = ctx.quick
      ? { warmup: 1500, slice: 150, perRound: 4, rounds: 5 }
      : { warmup: 3000, slice: 200, perRound: 5, rounds: 15 };
    const runs = { cable: [], switch: [], emulated: [], control: [] };
    const tcpLoss = {};
    await ctx.measure({
      label: 'TCP through a switch and an idle emulator vs a cable, MTU 1500',
      doing: `${timing.rounds} rounds of ${timing.perRound} slices of ${timing.slice} ms per kind, interleaved`,
      expect: [
        { id: 'tcp-cable', label: 'TCP, 1 stream, cable, MTU 1500', unit: 'Gbit/s', group: 'TCP, 1 stream, MTU 1500' },
        { id: 'tcp-switch', label: 'TCP, 1 stream, through a switch, MTU 1500', unit: 'Gbit/s', group: 'TCP, 1 stream, MTU 1500' },
        { id: 'tcp-emulated', label: 'TCP, 1 stream, emulate() with nothing set, MTU 1500', unit: 'Gbit/s', group: 'TCP, 1 stream, MTU 1500' },
        { id: 'ratio-switch', label: 'switch / cable', unit: '×', group: 'ratio to a cable', target: { op: '>=', value: 0.9 } },
        { id: 'ratio-emulated', label: 'emulate() at rate 0 / cable', unit: '×', group: 'ratio to a cable', target: { op: '>=', value: 0.9 } },
        { id: 'ratio-switch-cpu', label: 'switch / cable, per CPU second', unit: '×', group: 'ratio to a cable', target: { op: '>=', value: 0.9 } },
        { id: 'ratio-emulated-cpu', label: 'emulate() at rate 0 / cable, per CPU second', unit: '×', group: 'ratio to a cable', target: { op: '>=', value: 0.9 } },
        { id: 'ratio-control', label: 'cable / cable (the method\'s noise)', unit: '×', group: 'ratio to a cable' },
      ],
    }, async () => {
      const kinds = Object.keys(runs);
      const cleanup = new Cleanup();
      try {
        const flows = {};
        for (const kind of kinds) flows[kind] = await withTimeout(openFlow(LINKS[kind], cleanup), 20_000, `${kind} flow`);
        for (const kind of kinds) await withTimeout(flows[kind].slice(timing.warmup / kinds.length), 30_000, `${kind} warm-up`);
        let turn = 0;
        for (let i = 0; i < timing.rounds; i++) {
          const sums = Object.fromEntries(kinds.map((k) => [k, { bits: 0, seconds: 0, cpuSeconds: 0 }]));
          for (let j = 0; j < timing.perRound; j++, turn++) {
            for (let k = 0; k < kinds.length; k++) {
              const kind = kinds[(turn + k) % kinds.length];
              const r = await withTimeout(flows[kind].slice(timing.slice), timing.slice + 20_000, kind);
              sums[kind].bits += r.bits;
              sums[kind].seconds += r.seconds;
              sums[kind].cpuSeconds += r.cpuSeconds;
            }
          }
          for (const kind of kinds) {
            const t = sums[kind];
            runs[kind].push({ gbits: t.bits / t.seconds / 1e9, perCpu: t.bits / t.cpuSeconds / 1e9 });
          }
        }
        for (const kind of kinds) tcpLoss[kind] = flows[kind].tcpLoss();
      } finally {
        cleanup.run();
      }
      const m = Object.fromEntries(Object.entries(runs).map(([k, v]) => [k, median(v.map((r) => r.gbits))]));
      // The ratio is the median of each round's own ratio (the rounds' kinds ran next to each other).
      const per = (k, f = 'gbits') => runs[k].map((v, i) => v[f] / runs.cable[i][f]);
      const range = (xs) => [Math.min(...xs), Math.max(...xs)];
      return [
        { id: 'tcp-cable', label: 'TCP, 1 stream, cable, MTU 1500', chartLabel: 'cable', unit: 'Gbit/s', value: m.cable, range: range(runs.cable.map((r) => r.gbits)), group: 'TCP, 1 stream, MTU 1500' },
        { id: 'tcp-switch', label: 'TCP, 1 stream, through a switch, MTU 1500', chartLabel: 'switch', unit: 'Gbit/s', value: m.switch, range: range(runs.switch.map((r) => r.gbits)), group: 'TCP, 1 stream, MTU 1500' },
        { id: 'tcp-emulated', label: 'TCP, 1 stream, emulate() with nothing set, MTU 1500', chartLabel: 'emulate()', unit: 'Gbit/s', value: m.emulated, range: range(runs.emulated.map((r) => r.gbits)), group: 'TCP, 1 stream, MTU 1500' },
        { id: 'ratio-switch', label: 'switch / cable', unit: '×', value: median(per('switch')), range: range(per('switch')), group: 'ratio to a cable', target: { op: '>=', value: 0.9 }, detail: { runs, tcpLoss } },
        { id: 'ratio-emulated', label: 'emulate() at rate 0 / cable', unit: '×', value: median(per('emulated')), range: range(per('emulated')), group: 'ratio to a cable', target: { op: '>=', value: 0.9 } },
        { id: 'ratio-switch-cpu', label: 'switch / cable, per CPU second', chartLabel: 'switch, per CPU s', unit: '×', value: median(per('switch', 'perCpu')), range: range(per('switch', 'perCpu')), group: 'ratio to a cable', target: { op: '>=', value: 0.9 } },
        { id: 'ratio-emulated-cpu', label: 'emulate() at rate 0 / cable, per CPU second', chartLabel: 'emulate(), per CPU s', unit: '×', value: median(per('emulated', 'perCpu')), range: range(per('emulated', 'perCpu')), group: 'ratio to a cable', target: { op: '>=', value: 0.9 } },
        { id: 'ratio-control', label: 'cable / cable (the method\'s noise)', chartLabel: 'cable / cable', unit: '×', value: median(per('control')), range: range(per('control')), group: 'ratio to a cable' },
      ];
    });

    // After the TCP figures: this loop of plain frames, broadcast ones among
    // them, trains the JIT on the switch's flood path; the TCP flows through
    // the switch should not start from that (per CPU second they came out a
    // few per cent lower after it: within the noise, but free to avoid).
    const count = ctx.quick ? 500_000 : 2_000_000;
    for (const [ports, broadcast, label, id] of [[2, false, 'switch, known unicast, 2 ports', 'switch-unicast'], [8, true, 'switch, broadcast to 7 of 8 ports', 'switch-flood']]) {
      await ctx.measure({ label, doing: `${count.toLocaleString('en-US')} 64-byte frames`, group: 'switch forwarding', unit: 'frames/s' }, async () => {
        const r = switchRate(ports, broadcast, count);
        return { id, label: `${label}: frames in`, chartLabel: label, unit: 'frames/s', value: r.framesPerSecond, detail: r };
      });
    }

    if (process.getuid?.() !== 0) {
      ctx.log('VXLAN skipped: needs root (namespaces, veths, the kernel\'s vxlan)');
      return;
    }
    const bytes = (ctx.quick ? 64 : 512) << 20;
    await ctx.measure({ label: 'VXLAN TCP, stack → kernel vxlan, over a veth', doing: `${bytes >> 20} MiB`, group: 'VXLAN TCP, MTU 1450', unit: 'Gbit/s' }, async () => {
      const r = await vxlanStackToKernel(bytes);
      return { id: 'vxlan-stack-kernel', label: 'VXLAN TCP, stack (openVxlan) → kernel vxlan', chartLabel: 'stack → kernel', unit: 'Gbit/s', value: r.gbits, detail: r };
    });
    await ctx.measure({ label: 'VXLAN TCP, kernel vxlan → kernel vxlan, over a veth', doing: `${bytes >> 20} MiB`, group: 'VXLAN TCP, MTU 1450', unit: 'Gbit/s' }, async () => {
      const r = await vxlanKernelToKernel(bytes);
      return { id: 'vxlan-kernel-kernel', label: 'VXLAN TCP, kernel vxlan → kernel vxlan', chartLabel: 'kernel → kernel', unit: 'Gbit/s', value: r.gbits, detail: r };
    });
  },
};
