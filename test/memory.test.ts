/**
 * The memory budget: a stack driven to its budget through the public API
 * (connections whose peer does not read hold their send buffers) makes
 * writes wait, fails UDP sends with ENOBUFS, refuses new connections both
 * ways, keeps its memory within the budget, and once the peer reads again
 * moves every byte, says 'drain', and works as before.
 */
import { once } from 'node:events';
import { createHash } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { createCable, createStack, type Stack, type TcpSocket } from '../src/index.js';
import { A4, B4, listen } from './support/pair.js';

const BUDGET = 4 * 1024 * 1024;
const stacks: Stack[] = [];
afterEach(() => {
  for (const s of stacks.splice(0)) s.close();
});

function twoStacks(): { a: Stack; b: Stack } {
  const a = createStack({ memoryBudget: BUDGET });
  const b = createStack();
  stacks.push(a, b);
  const [la, lb] = createCable({ mtu: 1500 });
  a.addInterface({ link: la, ipv4: `${A4}/24`, mac: '02:00:00:00:00:01' });
  b.addInterface({ link: lb, ipv4: `${B4}/24`, mac: '02:00:00:00:00:02' });
  return { a, b };
}

function sendUdp(stack: Stack, port: number): Promise<Error | null> {
  const u = stack.createSocket('udp4');
  return new Promise((resolve) => u.send(Buffer.alloc(1000, 1), port, B4, (err) => {
    u.close();
    resolve(err ?? null);
  }));
}

function connectError(stack: Stack, port: number, host: string): Promise<string> {
  const c = stack.connect(port, host);
  return new Promise((resolve) => {
    c.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'no code'));
    c.once('connect', () => {
      c.destroy();
      resolve('connected');
    });
  });
}

async function echoOnce(from: Stack, port: number, host: string): Promise<string> {
  const c = from.connect(port, host);
  await once(c, 'connect');
  const chunks: Buffer[] = [];
  c.on('data', (d: Buffer) => chunks.push(d));
  c.end('ping');
  await once(c, 'end');
  return Buffer.concat(chunks).toString();
}

describe('memory budget', () => {
  it('rejects bad budgets with a TypeError naming the option', () => {
    for (const bad of [0, 1000, 1024 * 1024 - 1, 2 ** 31 + 1, 1024 * 1024 + 0.5, '4MiB', Number.NaN, null]) {
      expect(() => createStack({ memoryBudget: bad as number })).toThrow(TypeError);
      expect(() => createStack({ memoryBudget: bad as number })).toThrow(/memoryBudget/);
    }
    const s = createStack({ memoryBudget: 1024 * 1024 });
    stacks.push(s);
    expect(s.stats().memoryBudget).toBe(1024 * 1024);
    expect(createStack().stats().memoryBudget).toBe(64 * 1024 * 1024);
  });

  it('at the budget: writes wait, UDP fails with ENOBUFS, connections are refused; then it recovers fully', async () => {
    const { a, b } = twoStacks();
    // Servers on both sides, set up before the budget is reached.
    const bSockets: TcpSocket[] = [];
    await listen(b.createServer({ pauseOnConnect: true }, (s) => bSockets.push(s)), 80);
    await listen(b.createServer((s) => s.pipe(s)), 7);
    await listen(a.createServer((s) => s.pipe(s)), 7);
    b.createSocket('udp4').bind(9);

    // Eight connections from a, each writing 3 MiB to a reader that does not
    // read: b's windows close after 1 MiB each, and a's send buffers fill
    // a's budget.
    const PER = 3 * 1024 * 1024;
    const block = Buffer.alloc(64 * 1024);
    const senders: Array<{ socket: TcpSocket; hash: ReturnType<typeof createHash>; drains: number; done: Promise<void> }> = [];
    const sockets: TcpSocket[] = [];
    for (let i = 0; i < 8; i++) {
      const socket = a.connect(80, B4);
      await once(socket, 'connect');
      sockets.push(socket);
    }
    for (const [i, socket] of sockets.entries()) {
      const hash = createHash('sha256');
      const entry = { socket, hash, drains: 0, done: Promise.resolve() };
      socket.on('drain', () => entry.drains++);
      entry.done = (async () => {
        for (let sent = 0; sent < PER; sent += block.length) {
          block.fill(i + sent / block.length);
          hash.update(block);
          if (!socket.write(Buffer.from(block))) await once(socket, 'drain');
        }
        socket.end();
      })();
      senders.push(entry);
    }
    const deadline = Date.now() + 10_000;
    while (!a.stats().memoryTight && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    const tight = a.stats();
    expect(tight.memoryTight).toBe(true);
    expect(tight.memoryInUse).toBeLessThanOrEqual(BUDGET);
    // The instance's memory: the budget plus static data and the C stack.
    expect(tight.memoryBytes).toBeLessThanOrEqual(BUDGET + 512 * 1024);

    // What can wait, waits; what cannot, fails with Node's codes.
    expect(((await sendUdp(a, 9)) as NodeJS.ErrnoException | null)?.code).toBe('ENOBUFS');
    expect(await connectError(a, 7, B4)).toBe('ENOBUFS');
    expect(await connectError(b, 7, A4)).toBe('ECONNREFUSED');
    // Still at the budget, and still within it.
    const still = a.stats();
    expect(still.memoryTight).toBe(true);
    expect(still.memoryBytes).toBeLessThanOrEqual(BUDGET + 512 * 1024);

    // The reader reads: every byte arrives intact, the writers get 'drain'.
    const received = await Promise.all(bSockets.map((s) => {
      const h = createHash('sha256');
      let n = 0;
      s.on('data', (d: Buffer) => {
        h.update(d);
        n += d.length;
      });
      s.resume();
      return once(s, 'end').then(() => ({ n, digest: h.digest('hex') }));
    }));
    await Promise.all(senders.map((s) => s.done));
    const sentDigests = senders.map((s) => s.hash.digest('hex')).sort();
    expect(received.map((r) => r.n)).toEqual(Array(8).fill(PER));
    expect(received.map((r) => r.digest).sort()).toEqual(sentDigests);
    expect(senders.some((s) => s.drains > 0)).toBe(true);

    // Fully recovered: datagrams and new connections both ways work again.
    await new Promise((r) => setTimeout(r, 50));
    expect(a.stats().memoryTight).toBe(false);
    expect(await sendUdp(a, 9)).toBe(null);
    expect(await echoOnce(a, 7, B4)).toBe('ping');
    expect(await echoOnce(b, 7, A4)).toBe('ping');
    expect(a.stats().memoryBytes).toBeLessThanOrEqual(BUDGET + 512 * 1024);
  }, 60_000);
});
