/**
 * TCP over links that lose and reorder frames: data arrives whole and in
 * order (sha256 both ways), and it is loss recovery (SACK/RACK fast
 * recovery) that brings it, not only retransmission timeouts. Speed is for
 * bench/scenarios/loss.js; these assert integrity.
 *
 * 1. Two stacks in this process over a cable wrapped in test/support/lossy.ts
 *    (seeded): loss and 25 % reordering both ways.
 * 2. A stack on a TAP in a namespace, a Linux client there (Node on the
 *    kernel's TCP) sending to and receiving from it at once: the loss is
 *    made on the kernel side by netem (with 25 % reordering), or, on kernels
 *    built without netem (this project's CI has none), by iptables' random
 *    statistic match, with the reordering then done on the stack's side by
 *    the lossy wrapper around the TAP.
 */
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { createCable, createStack, type Stack } from '../src/index.js';
import { openTap } from '../src/node/links.js';
import { lossy } from './support/lossy.js';
import { deviceTestsUnavailable, Netns } from './support/netns.js';
import { transfer } from './support/transfer.js';

const MiB = 1024 * 1024;

const stacks: Stack[] = [];
const namespaces: Netns[] = [];
afterEach(async () => {
  for (const s of stacks.splice(0)) s.close();
  for (const ns of namespaces.splice(0)) await ns.delete();
});

describe('TCP between two stacks over a lossy, reordering link', () => {
  for (const [loss, mib] of [[0.01, 64], [0.05, 8]] as const) {
    it(`moves ${mib} MiB each way intact at ${loss * 100} % loss and 25 % reordering`, async () => {
      const a = createStack();
      const b = createStack();
      stacks.push(a, b);
      const [la, lb] = createCable({ mtu: 1500 });
      const wa = lossy(la, { loss, reorder: 0.25, seed: 12 });
      const wb = lossy(lb, { loss, reorder: 0.25, seed: 34 });
      a.addInterface({ link: wa, ipv4: '10.0.0.1/24' });
      b.addInterface({ link: wb, ipv4: '10.0.0.2/24' });
      const served = new Promise<ReturnType<typeof transfer>>((resolve) => {
        b.createServer({ allowHalfOpen: true }, (c) => resolve(transfer(c, mib * MiB))).listen(80);
      });
      const client = a.connect({ port: 80, host: '10.0.0.2', allowHalfOpen: true });
      await once(client, 'connect');
      const [mine, theirs] = await Promise.all([transfer(client, mib * MiB), served.then((p) => p)]);
      expect(mine.received).toBe(mib * MiB);
      expect(theirs.received).toBe(mib * MiB);
      expect(theirs.receivedSha256).toBe(mine.sentSha256);
      expect(mine.receivedSha256).toBe(theirs.sentSha256);
      expect(wa.lossCounters.dropped + wb.lossCounters.dropped).toBeGreaterThan(100);
      expect(wa.lossCounters.reordered + wb.lossCounters.reordered).toBeGreaterThan(100);
      // Each side recovered from losses by fast recovery, not only by timeouts.
      for (const s of [a, b]) {
        const l = s.stats().tcpLoss;
        expect(l.recoveries).toBeGreaterThan(0);
        expect(l.sacked).toBeGreaterThan(0);
        expect(l.retransmits).toBeGreaterThan(0);
      }
    }, 60_000);
  }

  it('recovers the same way with NewReno as with CUBIC', async () => {
    const a = createStack({ congestionControl: 'newreno' });
    const b = createStack({ congestionControl: 'newreno' });
    stacks.push(a, b);
    const [la, lb] = createCable({ mtu: 1500 });
    a.addInterface({ link: lossy(la, { loss: 0.02, seed: 5 }), ipv4: '10.0.0.1/24' });
    b.addInterface({ link: lossy(lb, { loss: 0.02, seed: 6 }), ipv4: '10.0.0.2/24' });
    const served = new Promise<ReturnType<typeof transfer>>((resolve) => {
      b.createServer({ allowHalfOpen: true }, (c) => resolve(transfer(c, 8 * MiB))).listen(80);
    });
    const client = a.connect({ port: 80, host: '10.0.0.2', allowHalfOpen: true });
    await once(client, 'connect');
    const [mine, theirs] = await Promise.all([transfer(client, 8 * MiB), served.then((p) => p)]);
    expect(theirs.receivedSha256).toBe(mine.sentSha256);
    expect(mine.receivedSha256).toBe(theirs.sentSha256);
    expect(a.stats().tcpLoss.recoveries).toBeGreaterThan(0);
  }, 60_000);

  it('rejects an unknown congestionControl with a TypeError naming it', () => {
    expect(() => createStack({ congestionControl: 'bbr' as 'cubic' })).toThrow(TypeError);
    expect(() => createStack({ congestionControl: 'bbr' as 'cubic' })).toThrow(/congestionControl/);
  });
});

// The Linux side: sends `bytes` random bytes and half-closes while reading
// what the stack sends until it ends; prints both sha256s as JSON.
const CLIENT = `
const net = require('net');
const { createHash, randomBytes } = require('crypto');
const [host, port, bytes] = [process.argv[1], Number(process.argv[2]), Number(process.argv[3])];
const sent = createHash('sha256'), got = createHash('sha256');
let received = 0;
const c = net.connect(port, host, () => {
  let off = 0;
  const pump = () => {
    while (off < bytes) {
      const chunk = randomBytes(Math.min(1 << 20, bytes - off));
      off += chunk.length;
      sent.update(chunk);
      if (!c.write(chunk)) return c.once('drain', pump);
    }
    c.end();
  };
  pump();
});
c.on('data', (d) => { got.update(d); received += d.length; });
c.on('end', () => console.log(JSON.stringify({ received, sentSha256: sent.digest('hex'), receivedSha256: got.digest('hex') })));
c.on('error', (e) => { console.error(e.message); process.exit(1); });
`;

/** Whether this kernel has netem (minimal kernels are often built without it). */
function hasNetem(ns: Netns): boolean {
  const sh = (...args: string[]) => execFileSync('ip', ['netns', 'exec', ns.name, ...args], { stdio: 'ignore' });
  try {
    sh('ip', 'link', 'add', 'probe0', 'type', 'veth', 'peer', 'name', 'probe1');
    sh('tc', 'qdisc', 'add', 'dev', 'probe0', 'root', 'netem', 'loss', '1%');
    return true;
  } catch {
    return false;
  } finally {
    try {
      sh('ip', 'link', 'del', 'probe0');
    } catch {
      /* never made */
    }
  }
}

const skip = deviceTestsUnavailable();
if (skip) console.warn(`loss.test.ts (kernel peer) skipped: ${skip}`);
const maybe = skip ? describe.skip : describe;

maybe('TCP between a stack and the kernel over a TAP with loss on the kernel side', () => {
  for (const loss of [0.01, 0.05]) {
    it(`moves 64 MiB to and from a Linux client intact at ${loss * 100} % loss and 25 % reordering`, async () => {
      const ns = await Netns.create('tt-loss');
      namespaces.push(ns);
      const netem = hasNetem(ns);
      const stack = createStack();
      stacks.push(stack);
      const tap = openTap({ name: 'tt0', netns: ns.path, mtu: 1500 });
      await ns.exec('ip', ['addr', 'add', '10.79.0.1/24', 'dev', 'tt0']);
      const pct = `${loss * 100}%`;
      // What the kernel receives is dropped by the statistic match either
      // way (netem acts on egress only).
      await ns.exec('iptables', ['-A', 'INPUT', '-i', 'tt0', '-m', 'statistic', '--mode', 'random', '--probability', String(loss), '-j', 'DROP']);
      let link = tap as Parameters<Stack['addInterface']>[0]['link'];
      if (netem) {
        await ns.exec('tc', ['qdisc', 'add', 'dev', 'tt0', 'root', 'netem', 'loss', pct, 'delay', '1ms', 'reorder', '75%']);
      } else {
        console.warn('loss.test.ts: this kernel has no netem; kernel-side loss by iptables statistic, 25 % reordering by the stack-side wrapper');
        await ns.exec('iptables', ['-A', 'OUTPUT', '-o', 'tt0', '-m', 'statistic', '--mode', 'random', '--probability', String(loss), '-j', 'DROP']);
        link = lossy(tap, { reorder: 0.25, seed: 7 });
      }
      stack.addInterface({ link, ipv4: '10.79.0.2/24' });
      const bytes = 64 * MiB;
      const served = new Promise<ReturnType<typeof transfer>>((resolve) => {
        stack.createServer({ allowHalfOpen: true }, (c) => resolve(transfer(c, bytes))).listen(8080);
      });
      const out = await ns.exec(process.execPath, ['-e', CLIENT, '10.79.0.2', '8080', String(bytes)], { timeout: 80_000 });
      const linux = JSON.parse(out) as { received: number; sentSha256: string; receivedSha256: string };
      const ours = await served;
      expect(ours.received).toBe(bytes);
      expect(linux.received).toBe(bytes);
      expect(ours.receivedSha256).toBe(linux.sentSha256);
      expect(linux.receivedSha256).toBe(ours.sentSha256);
      const l = stack.stats().tcpLoss;
      expect(l.sacked).toBeGreaterThan(0); // Linux's SACK blocks reached the scoreboard
      expect(l.recoveries).toBeGreaterThan(0);
    }, 90_000);
  }
});
