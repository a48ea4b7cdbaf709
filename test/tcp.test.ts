import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { createCable, createStack, ManualClock, type TcpSocket } from '../src/index.js';
import { A4, B4, B6, listen, pair, type Pair } from './support/pair.js';

let p: Pair | null = null;
afterEach(() => {
  p?.close();
  p = null;
});

function collect(socket: TcpSocket): Promise<Buffer> {
  const chunks: Buffer[] = [];
  socket.on('data', (d: Buffer) => chunks.push(d));
  return once(socket, 'end').then(() => Buffer.concat(chunks));
}

describe('TCP between two stacks', () => {
  it('echoes and reports addresses and byte counts', async () => {
    p = pair();
    const server = p.b.createServer((s) => s.pipe(s));
    const port = await listen(server, 7);
    expect(port).toBe(7);
    const sock = p.a.connect(7, B4);
    await once(sock, 'connect');
    expect(sock.remoteAddress).toBe(B4);
    expect(sock.remotePort).toBe(7);
    expect(sock.localAddress).toBe(A4);
    expect(sock.localPort).toBeGreaterThan(1023);
    const received = collect(sock);
    const closed = once(sock, 'close');
    sock.end('hello, stack');
    expect((await received).toString()).toBe('hello, stack');
    await closed;
    expect(sock.bytesWritten).toBe(12);
    expect(sock.bytesRead).toBe(12);
  });

  it('echoes over IPv6', async () => {
    p = pair();
    await listen(p.b.createServer((s) => s.pipe(s)), 8);
    const sock = p.a.connect(8, B6);
    await once(sock, 'connect');
    expect(sock.remoteFamily).toBe('IPv6');
    expect(sock.remoteAddress).toBe(B6);
    const received = collect(sock);
    sock.end('six');
    expect((await received).toString()).toBe('six');
  });

  for (const mtu of [1500, 65520]) {
    it(`moves 256 MiB each way with sha256 equality at MTU ${mtu}`, async () => {
      p = pair({ mtu });
      const size = 256 * 1024 * 1024;
      const block = randomBytes(1024 * 1024);
      const digest = async (sock: TcpSocket) => {
        const h = createHash('sha256');
        let n = 0;
        sock.on('data', (d: Buffer) => {
          h.update(d);
          n += d.length;
        });
        await once(sock, 'end');
        return { n, sum: h.digest('hex') };
      };
      const send = async (sock: TcpSocket) => {
        const h = createHash('sha256');
        for (let sent = 0; sent < size; sent += block.length) {
          block[0] = sent >>> 20; // vary the blocks so reordering would show
          h.update(block);
          if (!sock.write(Buffer.from(block))) await once(sock, 'drain');
        }
        sock.end();
        return h.digest('hex');
      };
      let serverSide!: Promise<[{ n: number; sum: string }, string]>;
      const server = p.b.createServer({ allowHalfOpen: true }, (s) => {
        serverSide = Promise.all([digest(s), send(s)]);
      });
      await listen(server, 9);
      const client = p.a.connect({ port: 9, host: B4, allowHalfOpen: true });
      await once(client, 'connect');
      const [clientGot, clientSent] = await Promise.all([digest(client), send(client)]);
      const [serverGot, serverSent] = await serverSide;
      expect(serverGot.n).toBe(size);
      expect(clientGot.n).toBe(size);
      expect(serverGot.sum).toBe(clientSent);
      expect(clientGot.sum).toBe(serverSent);
    }, 120_000);
  }

  it('half-closes in both directions', async () => {
    p = pair();
    // Server: reads until the client's FIN, then answers and closes.
    const server = p.b.createServer({ allowHalfOpen: true }, (s) => {
      const got: Buffer[] = [];
      s.on('data', (d: Buffer) => got.push(d));
      s.on('end', () => s.end(`got ${Buffer.concat(got).toString()}`));
    });
    await listen(server, 10);
    const c = p.a.connect({ port: 10, host: B4, allowHalfOpen: true });
    await once(c, 'connect');
    const reply = collect(c);
    c.end('request');
    expect((await reply).toString()).toBe('got request');

    // Client reads the server's data after the server half-closed first.
    const server2 = p.b.createServer({ allowHalfOpen: true }, (s) => {
      s.end('first');
      s.on('data', () => undefined);
      s.on('end', () => undefined);
    });
    await listen(server2, 11);
    const c2 = p.a.connect({ port: 11, host: B4, allowHalfOpen: true });
    const first = collect(c2);
    const closed = once(c2, 'close');
    expect((await first).toString()).toBe('first');
    expect(c2.writable).toBe(true); // our side is still open after their FIN
    c2.end('late');
    await closed;
  });

  it('destroy() resets the connection: the peer sees ECONNRESET', async () => {
    p = pair();
    let serverSocket!: TcpSocket;
    const accepted = new Promise<void>((resolve) => {
      void listen(p!.b.createServer((s) => {
        serverSocket = s;
        resolve();
      }), 12);
    });
    const c = p.a.connect(12, B4);
    await once(c, 'connect');
    await accepted;
    const err = once(serverSocket, 'error');
    c.destroy();
    const [e] = await err;
    expect((e as NodeJS.ErrnoException).code).toBe('ECONNRESET');
  });

  it('gives ECONNREFUSED for a closed port', async () => {
    p = pair();
    const c = p.a.connect(4444, B4);
    const [err] = await once(c, 'error');
    expect((err as NodeJS.ErrnoException).code).toBe('ECONNREFUSED');
    expect((err as Error).message).toBe(`connect ECONNREFUSED ${B4}:4444`);
  });

  it('gives EADDRINUSE for a port already listened on', async () => {
    p = pair();
    await listen(p.b.createServer(() => undefined), 80);
    const second = p.b.createServer(() => undefined);
    second.listen(80);
    const [err] = await once(second, 'error');
    expect((err as NodeJS.ErrnoException).code).toBe('EADDRINUSE');
  });

  it('gives ETIMEDOUT connecting to an address nobody answers (manual clock)', async () => {
    const clock = new ManualClock();
    const a = createStack({ clock });
    const [la] = createCable();
    a.addInterface({ link: la, ipv4: '10.0.0.1/24' });
    try {
      const c = a.connect(80, '10.0.0.99');
      let error: NodeJS.ErrnoException | null = null;
      c.on('error', (e) => (error = e));
      for (let t = 0; t < 600 && !error; t += 5) await clock.advance(5000);
      expect(error).not.toBeNull();
      expect(error!.code).toBe('ETIMEDOUT');
      expect(clock.now()).toBeGreaterThan(10_000); // it retried before giving up
    } finally {
      a.close();
    }
  });

  it('completes 1,000 concurrent connections', async () => {
    p = pair();
    await listen(p.b.createServer((s) => s.pipe(s)), 13);
    const n = 1000;
    const results = await Promise.all(
      Array.from({ length: n }, async (_, i) => {
        const c = p!.a.connect(13, B4);
        const got = collect(c);
        c.end(`conn ${i}`);
        return (await got).toString();
      }),
    );
    results.forEach((r, i) => expect(r).toBe(`conn ${i}`));
  }, 60_000);

  it('throttles a slow reader without losing data, and resumes', async () => {
    p = pair();
    let serverSocket!: TcpSocket;
    const accepted = new Promise<void>((resolve) => {
      void listen(p!.b.createServer((s) => {
        serverSocket = s;
        s.pause(); // the reader does not read yet
        resolve();
      }), 14);
    });
    const c = p.a.connect(14, B4);
    await once(c, 'connect');
    await accepted;
    const block = randomBytes(64 * 1024);
    const h = createHash('sha256');
    let sent = 0;
    let sawBackpressure = false;
    // Write until write() says stop and stays stopped: the receive window closed.
    for (let i = 0; i < 20_000; i++) {
      h.update(block);
      sent += block.length;
      if (!c.write(block)) {
        sawBackpressure = true;
        const drained = await Promise.race([once(c, 'drain').then(() => true), new Promise((r) => setTimeout(() => r(false), 300))]);
        if (!drained) break;
      }
    }
    expect(sawBackpressure).toBe(true);
    // Bounded: lwIP's window and send buffer plus the stream buffers, not everything written.
    expect(serverSocket.readableLength).toBeLessThan(8 * 1024 * 1024);
    const got = createHash('sha256');
    let n = 0;
    serverSocket.on('data', (d: Buffer) => {
      got.update(d);
      n += d.length;
    });
    c.end();
    serverSocket.resume();
    await once(serverSocket, 'end');
    expect(n).toBe(sent);
    expect(got.digest('hex')).toBe(h.digest('hex'));
  }, 60_000);

  it('lets the server stop listening with close(cb) after connections end', async () => {
    p = pair();
    const server = p.b.createServer((s) => s.end('bye'));
    await listen(server, 15);
    const c = p.a.connect(15, B4);
    const got = collect(c);
    expect((await got).toString()).toBe('bye');
    await new Promise<void>((resolve, reject) => server.close((err) => (err ? reject(err) : resolve())));
    const refused = p.a.connect(15, B4);
    const [err] = await once(refused, 'error');
    expect((err as NodeJS.ErrnoException).code).toBe('ECONNREFUSED');
  });
});
