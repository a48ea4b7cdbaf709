// TCP throughput under random loss: 0.1 %, 1 % and 5 % of frames dropped
// both ways (and none, the bound the others are measured against), at MTU
// 1500 and 65520, for
//   - kernel ↔ tcpip-ts over a TAP in a namespace made for the run, the loss
//     applied on the kernel side (netem when the kernel has it; otherwise
//     iptables' statistic match, which drops at random the same way but
//     cannot delay or reorder);
//   - Linux ↔ Linux over a veth pair between two namespaces, the same loss
//     on one end: the reference (target: tcpip-ts ≥ 0.5 × Linux). A veth
//     keeps its segmentation offloads, so the loss falls on 64 KiB
//     super-packets, not 1500-byte frames as on a TAP without offloads: at
//     MTU 1500 two more rows compare like with like, Linux with offloads
//     off (TSO, GSO, GRO) and tcpip-ts on a TAP with `offload: true`;
//   - two stacks in this process over a cable that drops frames (seeded).
// Each run moves data one way for a fixed time and counts what arrived, so a
// slow case costs seconds, not minutes. Needs root for the first two.
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createCable, createStack, openTap } from '../../dist/index.js';

const RATES = [0, 0.001, 0.01, 0.05];
const MTUS = [1500, 65520];

// The kernel peer: `send` writes until killed; `receive SECONDS` counts
// what arrives in that long from the connection and prints it. Counting at
// the receiver for a fixed time keeps a slow case to seconds (a full send
// buffer at 0.3 Mbit/s would take half a minute to drain).
const PEER = `
const net = require('net');
const [mode, arg, host] = [process.argv[1], process.argv[2], process.argv[3]];
const block = Buffer.alloc(1 << 20, 7);
function pump(c) { const go = () => { while (c.write(block)); c.once('drain', go); }; go(); }
function count(c) {
  let n = 0;
  c.on('data', (d) => (n += d.length));
  setTimeout(() => { console.log('bytes ' + n); process.exit(0); }, Number(arg) * 1000);
}
const serve = (c) => { c.on('error', () => {}); if (mode === 'send') { c.resume(); pump(c); } else count(c); };
if (host) {
  const c = net.connect(9000, host, () => serve(c));
} else {
  const server = net.createServer((c) => { server.close(); serve(c); });
  server.listen(9000, () => console.log('listening'));
}
`;

function sh(...args) {
  return execFileSync(args[0], args.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
}

let netemKnown;
/** Whether this kernel has netem (many minimal kernels are built without it). */
function hasNetem() {
  if (netemKnown !== undefined) return netemKnown;
  const ns = `tt-netem-probe-${process.pid}`;
  sh('ip', 'netns', 'add', ns);
  try {
    sh('ip', '-n', ns, 'link', 'add', 'p0', 'type', 'veth', 'peer', 'name', 'p1');
    sh('ip', 'netns', 'exec', ns, 'tc', 'qdisc', 'add', 'dev', 'p0', 'root', 'netem', 'loss', '1%');
    netemKnown = true;
  } catch {
    netemKnown = false;
  } finally {
    sh('ip', 'netns', 'delete', ns);
  }
  return netemKnown;
}

/** Drops `rate` of the frames `dev` in namespace `ns` sends and receives. */
function addLoss(ns, dev, rate) {
  if (rate === 0) return;
  if (hasNetem()) {
    // netem acts on egress; what the kernel receives is dropped by the
    // statistic match below (an ifb for ingress netem is another module).
    sh('ip', 'netns', 'exec', ns, 'tc', 'qdisc', 'add', 'dev', dev, 'root', 'netem', 'loss', `${rate * 100}%`);
  } else {
    sh('ip', 'netns', 'exec', ns, 'iptables', '-A', 'OUTPUT', '-o', dev, '-m', 'statistic', '--mode', 'random', '--probability', String(rate), '-j', 'DROP');
  }
  sh('ip', 'netns', 'exec', ns, 'iptables', '-A', 'INPUT', '-i', dev, '-m', 'statistic', '--mode', 'random', '--probability', String(rate), '-j', 'DROP');
}

function startPeer(ns, args) {
  const peer = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', PEER, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  peer.stdout.on('data', (d) => (out += d));
  const line = (re) => new Promise((resolve, reject) => {
    const check = () => { const m = re.exec(out); if (m) resolve(m); };
    peer.stdout.on('data', check);
    check();
    peer.once('exit', (code) => setTimeout(() => reject(new Error(`peer exited ${code}: ${out.trim()}`)), 50));
  });
  return { peer, line };
}

const mbit = (bytes, seconds) => (bytes * 8) / seconds / 1e6;

/** The stack on a TAP, the kernel peer in the namespace; returns Mbit/s. */
async function kernelStack(mtu, rate, direction, seconds, offload = false) {
  const ns = `tt-loss-${process.pid}`;
  sh('ip', 'netns', 'add', ns);
  const stack = createStack();
  try {
    const tap = openTap({ name: 'tt0', netns: `/run/netns/${ns}`, mtu, offload });
    sh('ip', '-n', ns, 'addr', 'add', '10.77.0.1/24', 'dev', 'tt0');
    stack.addInterface({ link: tap, ipv4: '10.77.0.2/24' });
    addLoss(ns, 'tt0', rate);
    // direction: who sends. 'kernel' sends to the stack, 'stack' to the kernel.
    const { peer, line } = startPeer(ns, direction === 'kernel' ? ['send'] : ['receive', String(seconds)]);
    try {
      await line(/listening/);
      const sock = stack.connect(9000, '10.77.0.1');
      sock.on('error', () => {});
      await once(sock, 'connect');
      if (direction === 'kernel') {
        let n = 0;
        sock.on('data', (d) => (n += d.length));
        await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
        sock.destroy();
        return mbit(n, seconds);
      }
      const got = line(/bytes (\d+)/);
      let done = false;
      const stop = new AbortController();
      got.catch(() => {}).finally(() => { done = true; stop.abort(); });
      const block = Buffer.alloc(1 << 20, 9);
      while (!done) if (!sock.write(block)) await once(sock, 'drain', { signal: stop.signal }).catch(() => {});
      sock.destroy();
      const [, n] = await got;
      return mbit(Number(n), seconds);
    } finally {
      peer.kill();
    }
  } finally {
    stack.close();
    sh('ip', 'netns', 'delete', ns);
  }
}

/** Linux ↔ Linux over a veth, the loss on one end as for the TAP; `offloads` false turns TSO, GSO and GRO off on both ends. */
async function linuxLinux(mtu, rate, seconds, offloads = true) {
  const a = `tt-loss-a-${process.pid}`;
  const b = `tt-loss-b-${process.pid}`;
  sh('ip', 'netns', 'add', a);
  sh('ip', 'netns', 'add', b);
  try {
    sh('ip', '-n', a, 'link', 'add', 'v0', 'mtu', String(mtu), 'type', 'veth', 'peer', 'name', 'v1', 'mtu', String(mtu), 'netns', b);
    sh('ip', '-n', a, 'addr', 'add', '10.78.0.1/24', 'dev', 'v0');
    sh('ip', '-n', b, 'addr', 'add', '10.78.0.2/24', 'dev', 'v1');
    sh('ip', '-n', a, 'link', 'set', 'v0', 'up');
    sh('ip', '-n', b, 'link', 'set', 'v1', 'up');
    if (!offloads) {
      sh('ip', 'netns', 'exec', a, 'ethtool', '-K', 'v0', 'tso', 'off', 'gso', 'off', 'gro', 'off');
      sh('ip', 'netns', 'exec', b, 'ethtool', '-K', 'v1', 'tso', 'off', 'gso', 'off', 'gro', 'off');
    }
    addLoss(a, 'v0', rate);
    const server = startPeer(a, ['receive', String(seconds)]);
    try {
      await server.line(/listening/);
      const client = startPeer(b, ['send', '0', '10.78.0.1']);
      try {
        const [, n] = await server.line(/bytes (\d+)/);
        return mbit(Number(n), seconds);
      } finally {
        client.peer.kill();
      }
    } finally {
      server.peer.kill();
    }
  } finally {
    sh('ip', 'netns', 'delete', a);
    sh('ip', 'netns', 'delete', b);
  }
}

/** A seeded drop of `rate` of the frames one end of a cable sends. */
function dropping(link, rate, seed) {
  let s = seed >>> 0;
  const random = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), s | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return { ...link, medium: link.medium, mtu: link.mtu, attach: (r) => link.attach(r), send: (f) => { if (random() >= rate) link.send(f); }, close: () => link.close() };
}

/** Two stacks in this process over a lossy cable; returns Mbit/s. */
async function inProcess(mtu, rate, seconds) {
  const a = createStack();
  const b = createStack();
  try {
    const [la, lb] = createCable({ mtu });
    a.addInterface({ link: dropping(la, rate, 1), ipv4: '10.0.0.1/24' });
    b.addInterface({ link: dropping(lb, rate, 2), ipv4: '10.0.0.2/24' });
    let n = 0;
    b.createServer((c) => {
      c.on('error', () => {});
      c.on('data', (d) => (n += d.length));
    }).listen(9000);
    const sock = a.connect(9000, '10.0.0.2');
    sock.on('error', () => {});
    await once(sock, 'connect');
    let done = false;
    const stop = new AbortController();
    const timer = setTimeout(() => { done = true; stop.abort(); }, seconds * 1000);
    const block = Buffer.alloc(1 << 20, 9);
    while (!done) if (!sock.write(block)) await once(sock, 'drain', { signal: stop.signal }).catch(() => {});
    clearTimeout(timer);
    const moved = n;
    sock.destroy();
    return mbit(moved, seconds);
  } finally {
    a.close();
    b.close();
  }
}

const pct = (rate) => `${rate * 100} %`;

export default {
  name: 'loss',
  title: 'TCP under random loss',
  description: 'Bulk TCP at 0, 0.1, 1 and 5 % frame loss both ways, MTU 1500 and 65520: kernel ↔ tcpip-ts over a TAP (each direction), Linux ↔ Linux over a veth (the reference; target tcpip-ts ≥ 0.5 × Linux), at MTU 1500 also Linux with offloads off and tcpip-ts on a TAP with offload (like with like), and two stacks in process over a lossy cable. Needs root for the kernel rows.',
  async run(ctx) {
    const seconds = ctx.quick ? 2 : 5;
    const root = process.getuid?.() === 0;
    if (!root) ctx.log('kernel rows skipped: needs root (network namespaces, a TAP device)');
    else ctx.log(`kernel-side loss by ${hasNetem() ? 'netem' : 'iptables statistic (this kernel has no netem)'}`);
    for (const mtu of MTUS) {
      for (const rate of RATES) {
        const at = `${pct(rate)} loss, MTU ${mtu}`;
        const id = `${rate * 1000}-${mtu}`;
        let linux;
        if (root) {
          [linux] = await ctx.measure({ label: `Linux ↔ Linux, ${at}`, doing: `${seconds} s`, group: `MTU ${mtu}`, unit: 'Mbit/s' }, async () => ({
            id: `linux-${id}`, label: `Linux → Linux over veth, ${at}`, chartLabel: `Linux, ${pct(rate)}`, unit: 'Mbit/s', value: await linuxLinux(mtu, rate, seconds),
          }));
          for (const direction of ['stack', 'kernel']) {
            const name = direction === 'stack' ? 'tcpip-ts → kernel' : 'kernel → tcpip-ts';
            const target = linux?.value ? { op: '>=', value: +(linux.value * 0.5).toFixed(1) } : undefined;
            await ctx.measure({ label: `${name}, ${at}`, doing: `${seconds} s`, group: `MTU ${mtu}`, unit: 'Mbit/s', target }, async () => ({
              id: `tap-${direction}-${id}`, label: `${name} over TAP, ${at}`, chartLabel: `${name}, ${pct(rate)}`, unit: 'Mbit/s', target, value: await kernelStack(mtu, rate, direction, seconds),
            }));
          }
          if (mtu === 1500) {
            // Like with like: both with segmentation offloads, or both without.
            const plain = { label: `Linux ↔ Linux, offloads off, ${at}`, doing: `${seconds} s`, group: `MTU ${mtu}`, unit: 'Mbit/s' };
            await ctx.measure(plain, async () => ({
              id: `linux-nooffload-${id}`, label: `Linux → Linux over veth, offloads off, ${at}`, chartLabel: `Linux no offloads, ${pct(rate)}`, unit: 'Mbit/s', value: await linuxLinux(mtu, rate, seconds, false),
            }));
            const target = linux?.value ? { op: '>=', value: +(linux.value * 0.5).toFixed(1) } : undefined;
            await ctx.measure({ label: `tcpip-ts → kernel, TAP offload, ${at}`, doing: `${seconds} s`, group: `MTU ${mtu}`, unit: 'Mbit/s', target }, async () => ({
              id: `tap-offload-stack-${id}`, label: `tcpip-ts → kernel over TAP with offload, ${at}`, chartLabel: `tcpip-ts → kernel offload, ${pct(rate)}`, unit: 'Mbit/s', target, value: await kernelStack(mtu, rate, 'stack', seconds, true),
            }));
          }
        }
        await ctx.measure({ label: `stack → stack in process, ${at}`, doing: `${seconds} s`, group: `MTU ${mtu}`, unit: 'Mbit/s' }, async () => ({
          id: `inprocess-${id}`, label: `stack → stack in process, ${at}`, chartLabel: `in process, ${pct(rate)}`, unit: 'Mbit/s', value: await inProcess(mtu, rate, seconds),
        }));
      }
    }
  },
};
