import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createCable, createStack, ManualClock, type Stack } from '../src/index.js';
import { createGateway, type FlowInfo, type Gateway } from '../src/gateway/gateway.js';
import { TcpSplice, type HostBudget } from '../src/gateway/tcp-splice.js';

// The gateway's TCP splice (src/gateway/tcp-splice.ts): a sandbox stack on a
// cable to the gateway, host servers on this machine's loopback
// (hostLoopback). What the splice promises: ordered half-closes, nothing
// lost when a side closes with data still on its way, resets crossing, and
// a slow reader on either side holding the other back.
const cleanup: (() => void)[] = [];
afterEach(() => {
  for (const fn of cleanup.splice(0).reverse()) fn();
});

/** A TCP segment on the cable, as far as these tests look at it. */
interface Segment {
  sport: number;
  dport: number;
  seq: number;
  ack: number;
  flags: number;
  payload: number;
}
const FIN = 0x01;
const SYN = 0x02;

function parseSegment(frame: Uint8Array): Segment | null {
  if (frame.length < 14 + 20 + 20 || frame[12] !== 0x08 || frame[13] !== 0x00) return null;
  const ip = frame.subarray(14);
  if (ip[9] !== 6) return null;
  const ihl = (ip[0]! & 15) * 4;
  const total = (ip[2]! << 8) | ip[3]!;
  const tcp = ip.subarray(ihl);
  const u32 = (o: number) => ((tcp[o]! << 24) | (tcp[o + 1]! << 16) | (tcp[o + 2]! << 8) | tcp[o + 3]!) >>> 0;
  return {
    sport: (tcp[0]! << 8) | tcp[1]!,
    dport: (tcp[2]! << 8) | tcp[3]!,
    seq: u32(4),
    ack: u32(8),
    flags: tcp[13]!,
    payload: total - ihl - (tcp[12]! >> 4) * 4,
  };
}

/** Records the TCP segments each side puts on the cable. */
function recordSegments(link: { send(frame: Uint8Array): void }): Segment[] {
  const out: Segment[] = [];
  const send = link.send.bind(link);
  link.send = (frame: Uint8Array) => {
    const seg = parseSegment(frame);
    if (seg) out.push(seg);
    send(frame);
  };
  return out;
}

function setup(record?: { gateway: Segment[]; sandbox: Segment[] }, clock?: ManualClock): { gw: Gateway; sandbox: Stack } {
  const [gwLink, sandboxLink] = createCable({ mtu: 1500 });
  if (record) {
    record.gateway = recordSegments(gwLink);
    record.sandbox = recordSegments(sandboxLink);
  }
  const gw = createGateway({ link: gwLink, hostLoopback: true, stack: clock ? { clock } : undefined });
  const sandbox = createStack();
  sandbox.addInterface({ link: sandboxLink, ipv4: '10.0.2.100/24', gateway: '10.0.2.2' });
  cleanup.push(() => {
    sandbox.close();
    gw.close();
  });
  return { gw, sandbox };
}

async function hostServer(handler: (s: net.Socket) => void, options: net.ServerOpts = {}): Promise<number> {
  const server = net.createServer(options, handler);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  cleanup.push(() => server.close());
  return (server.address() as net.AddressInfo).port;
}

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

function collect(sock: NodeJS.ReadableStream): Promise<Buffer> {
  const parts: Buffer[] = [];
  sock.on('data', (d: Buffer) => parts.push(d));
  return once(sock, 'end').then(() => Buffer.concat(parts));
}

const waitFor = async (check: () => boolean, ms: number, what: string) => {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
};

describe('gateway TCP splice', () => {
  it('delivers everything the host wrote before closing, to a sandbox that reads late, then FIN', async () => {
    const { gw, sandbox } = setup();
    const body = randomBytes(4 * 1024 * 1024);
    let hostClosed = false;
    // The host answers the request with 4 MiB and closes at once: its socket
    // is gone while most of the body still waits in the gateway and lwIP.
    const port = await hostServer((s) => {
      s.once('data', () => s.end(body));
      s.on('close', () => (hostClosed = true));
    });
    const sock = sandbox.connect({ port, host: '10.0.2.2', allowHalfOpen: true });
    await once(sock, 'connect');
    sock.pause();
    sock.end('GET');
    await waitFor(() => hostClosed, 10_000, 'the host socket to close');
    const got = collect(sock);
    sock.resume();
    const received = await got;
    expect(received.length).toBe(body.length);
    expect(sha256(received)).toBe(sha256(body));
    await waitFor(() => gw.metrics().tcpOpen === 0, 5000, 'the flow to close');
  }, 30_000);

  it('a slow sandbox reader pauses the host socket (the host\'s writes back up) and loses nothing', async () => {
    const { sandbox } = setup();
    const body = randomBytes(32 * 1024 * 1024);
    let hostSide!: net.Socket;
    let backedUp = false;
    const port = await hostServer((s) => {
      hostSide = s;
      s.on('error', () => {});
      // Written in pieces: write() turns false once the gateway stops reading.
      let at = 0;
      const more = () => {
        while (at < body.length) {
          const ok = s.write(body.subarray(at, at + 65536));
          at += 65536;
          if (!ok) {
            backedUp = true;
            s.once('drain', more);
            return;
          }
        }
        s.end();
      };
      more();
    });
    const sock = sandbox.connect({ port, host: '10.0.2.2' });
    await once(sock, 'connect');
    sock.pause();
    await waitFor(() => backedUp, 10_000, 'the host writer to back up');
    // And it stays backed up while the sandbox does not read: the gateway
    // stopped reading its host socket instead of buffering the body.
    await new Promise((r) => setTimeout(r, 300));
    expect(hostSide.writableLength).toBeGreaterThan(0);
    expect(hostSide.bytesWritten - hostSide.writableLength).toBeLessThan(body.length / 2);
    const got = collect(sock);
    sock.resume();
    const received = await got;
    expect(sha256(received)).toBe(sha256(body));
  }, 30_000);

  it('a host reset resets the sandbox side, and a sandbox reset resets the host side', async () => {
    const { sandbox } = setup();
    const hostErrors: string[] = [];
    let resetByHost = true;
    const port = await hostServer((s) => {
      s.on('error', (err: NodeJS.ErrnoException) => hostErrors.push(err.code ?? ''));
      if (resetByHost) s.once('data', () => s.resetAndDestroy());
    });
    const a = sandbox.connect({ port, host: '10.0.2.2' });
    await once(a, 'connect');
    a.write('x');
    const [err] = await once(a, 'error');
    expect((err as NodeJS.ErrnoException).code).toBe('ECONNRESET');

    resetByHost = false;
    const b = sandbox.connect({ port, host: '10.0.2.2' });
    await once(b, 'connect');
    b.write('y');
    await new Promise((r) => setTimeout(r, 50));
    b.destroy(); // before either side finished: RST
    await waitFor(() => hostErrors.length > 0, 5000, 'the host side to see the reset');
    expect(hostErrors).toEqual(['ECONNRESET']);
  }, 20_000);

  it('a burst of short connections: each gets its own bytes, every flow closes and is counted once', async () => {
    const { gw, sandbox } = setup();
    const port = await hostServer((s) => s.once('data', (d: Buffer) => s.end(Buffer.concat([d, d]))));
    const closed: FlowInfo[] = [];
    gw.on('flow-close', (f: FlowInfo) => closed.push(f));
    const N = 40;
    const replies = await Promise.all(Array.from({ length: N }, async (_, i) => {
      const sock = sandbox.connect({ port, host: '10.0.2.2' });
      await once(sock, 'connect');
      const got = collect(sock);
      sock.end(`conn-${i};`);
      return (await got).toString();
    }));
    expect(replies).toEqual(Array.from({ length: N }, (_, i) => `conn-${i};conn-${i};`));
    await waitFor(() => closed.length === N, 5000, 'every flow to close');
    expect(gw.metrics()).toMatchObject({ tcpOpened: N, tcpOpen: 0 });
    const byFrom = new Map(closed.map((f) => [f.from, f]));
    expect(byFrom.size).toBe(N);
    for (const f of closed) {
      expect(f.protocol).toBe('tcp');
      expect([7, 8]).toContain(f.bytesOut); // 'conn-N;' for N < 10, 'conn-NN;' after
      expect(f.bytesIn).toBe(2 * f.bytesOut);
    }
  }, 20_000);

  it('the ACK of the sandbox\'s FIN rides on the gateway\'s own FIN when the host closes in turn', async () => {
    const record = { gateway: [] as Segment[], sandbox: [] as Segment[] };
    // The gateway's time stands still: its held ACK could only leave with
    // its FIN, however long the host takes on a loaded machine.
    const { gw, sandbox } = setup(record, new ManualClock());
    // allowHalfOpen off: the host server ends as soon as it sees our FIN.
    const port = await hostServer((s) => s.resume());
    const sock = sandbox.connect({ port, host: '10.0.2.2' });
    await once(sock, 'connect');
    sock.end('bye');
    await once(sock, 'close');
    await waitFor(() => gw.metrics().tcpOpen === 0, 5000, 'the flow to close');
    const fin = record.sandbox.find((g) => g.dport === port && (g.flags & FIN));
    expect(fin).toBeDefined();
    const finAck = (fin!.seq + fin!.payload + 1) >>> 0;
    // The first gateway segment that acknowledges the sandbox's FIN.
    const acking = record.gateway.find((g) => g.sport === port && !(g.flags & SYN) && g.ack === finAck);
    expect(acking).toBeDefined();
    expect(acking!.flags & FIN).toBe(FIN);
  }, 20_000);

  it('a host that stays open after the sandbox\'s FIN: the FIN is still acknowledged, with a bare ACK', async () => {
    const record = { gateway: [] as Segment[], sandbox: [] as Segment[] };
    const clock = new ManualClock();
    const { sandbox } = setup(record, clock);
    let hostSide!: net.Socket;
    const port = await hostServer((s) => {
      hostSide = s;
      s.resume();
    }, { allowHalfOpen: true });
    const sock = sandbox.connect({ port, host: '10.0.2.2', allowHalfOpen: true });
    await once(sock, 'connect');
    sock.end('half');
    await waitFor(() => record.sandbox.some((g) => g.dport === port && (g.flags & FIN)), 5000, 'the sandbox\'s FIN');
    const fin = record.sandbox.find((g) => g.dport === port && (g.flags & FIN))!;
    const finAck = (fin.seq + fin.payload + 1) >>> 0;
    const acked = () => record.gateway.some((g) => g.sport === port && g.ack === finAck);
    await new Promise((r) => setTimeout(r, 20));
    expect(acked()).toBe(false); // held for a FIN of the gateway's own
    await clock.advance(50); // past the 40 ms the ACK waits at most
    await waitFor(acked, 5000, 'the ACK of the FIN');
    const acking = record.gateway.find((g) => g.sport === port && g.ack === finAck)!;
    expect(acking.flags & FIN).toBe(0);
    // The host side still talks to the half-closed sandbox, then closes.
    const got = collect(sock);
    hostSide.end('still here');
    expect((await got).toString()).toBe('still here');
  }, 20_000);

  it('connections one after another to one host port work while its listener lingers and after it closed', async () => {
    const clock = new ManualClock();
    const { gw, sandbox } = setup(undefined, clock);
    const port = await hostServer((s) => s.once('data', (d: Buffer) => s.end(d)));
    const roundTrip = async (text: string) => {
      const sock = sandbox.connect({ port, host: '10.0.2.2' });
      await once(sock, 'connect');
      const got = collect(sock);
      sock.end(text);
      return (await got).toString();
    };
    // Back to back: the second and third reuse the first one's listener.
    expect(await roundTrip('one')).toBe('one');
    expect(await roundTrip('two')).toBe('two');
    await clock.advance(500);
    expect(await roundTrip('three')).toBe('three');
    // Idle past the linger (1 s): the listener is closed; the next flow makes another.
    await clock.advance(2500);
    expect(await roundTrip('four')).toBe('four');
    await waitFor(() => gw.metrics().tcpOpen === 0, 5000, 'the flows to close');
    expect(gw.metrics().tcpOpened).toBe(4);
  }, 20_000);

  it('with a host budget: a host socket paused for the turn resumes on the next and loses nothing', async () => {
    // A stack's connection spliced by hand to a host socket, under a small
    // budget (64 KiB per turn) standing in for the gateway's.
    const [aLink, bLink] = createCable({ mtu: 1500 });
    const near = createStack();
    near.addInterface({ link: aLink, ipv4: '10.9.0.1/24' });
    const far = createStack();
    far.addInterface({ link: bLink, ipv4: '10.9.0.2/24' });
    cleanup.push(() => {
      near.close();
      far.close();
    });
    const body = randomBytes(4 * 1024 * 1024);
    const port = await hostServer((s) => s.end(body));
    let left = 65536;
    let pausedTurns = 0;
    const waiting: { budgetResume(): void }[] = [];
    const budget: HostBudget = {
      take(bytes, source) {
        left -= bytes;
        if (left > 0) return false;
        pausedTurns++;
        waiting.push(source);
        if (waiting.length === 1) {
          setImmediate(() => {
            left = 65536;
            for (const w of waiting.splice(0)) w.budgetResume();
          });
        }
        return true;
      },
    };
    const received = new Promise<Buffer>((resolve) => {
      far.createServer((sock) => resolve(collect(sock))).listen(7000);
    });
    const host = net.connect(port, '127.0.0.1');
    await once(host, 'connect');
    const inner = near.tcpConnect({ family: 4, bytes: new Uint8Array([10, 9, 0, 2]), zone: 0 }, 7000);
    await new Promise<void>((resolve) => {
      inner.handler = { connect: resolve, data: () => {}, end: () => {}, sent: () => {}, error: () => {} };
    });
    let closed = false;
    new TcpSplice(near, inner, host, [], () => (closed = true), budget);
    const got = await received;
    expect(sha256(got)).toBe(sha256(body));
    expect(pausedTurns).toBeGreaterThan(0);
    await waitFor(() => closed, 5000, 'the splice to close');
  }, 20_000);
});
