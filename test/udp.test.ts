import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import type { RemoteInfo } from '../src/index.js';
import { A4, A6, B4, B6, pair, type Pair } from './support/pair.js';

let p: Pair | null = null;
afterEach(() => {
  p?.close();
  p = null;
});

describe('UDP between two stacks', () => {
  it('round-trips a datagram with dgram-shaped sockets', async () => {
    p = pair();
    const server = p.b.createSocket('udp4');
    server.on('message', (msg: Buffer, rinfo: RemoteInfo) => server.send(Buffer.concat([Buffer.from('re: '), msg]), rinfo.port, rinfo.address));
    server.bind(5353);
    await once(server, 'listening');
    expect(server.address()).toEqual({ address: '0.0.0.0', family: 'IPv4', port: 5353 });

    const client = p.a.createSocket('udp4');
    client.bind(0, A4);
    await once(client, 'listening');
    const reply = once(client, 'message');
    const sent = new Promise<number>((resolve, reject) => client.send('ping', 5353, B4, (err, n) => (err ? reject(err) : resolve(n!))));
    expect(await sent).toBe(4);
    const [msg, rinfo] = (await reply) as [Buffer, RemoteInfo];
    expect(msg.toString()).toBe('re: ping');
    expect(rinfo).toEqual({ address: B4, family: 'IPv4', port: 5353, size: 8 });
  });

  it('carries a 60 KB datagram in fragments and reassembles it', async () => {
    p = pair();
    const server = p.b.createSocket('udp4');
    server.bind(9000);
    await once(server, 'listening');
    const client = p.a.createSocket('udp4');
    const payload = randomBytes(60 * 1024);
    const got = once(server, 'message');
    client.send(payload, 9000, B4);
    const [msg] = (await got) as [Buffer];
    expect(msg.length).toBe(payload.length);
    expect(Buffer.compare(msg, payload)).toBe(0);
    // 60 KB over MTU 1500 is 42 fragments out and 42 in.
    expect(p.a.stats().protocols.ipFrag.xmit).toBeGreaterThanOrEqual(42);
    expect(p.b.stats().protocols.ipFrag.recv).toBeGreaterThanOrEqual(42);
  });

  it('round-trips over IPv6, including a fragmented datagram', async () => {
    p = pair();
    const server = p.b.createSocket('udp6');
    server.on('message', (msg: Buffer, rinfo: RemoteInfo) => server.send(msg, rinfo.port, rinfo.address));
    server.bind(7000, B6);
    await once(server, 'listening');
    const client = p.a.createSocket('udp6');
    for (const size of [5, 60 * 1024]) {
      const payload = randomBytes(size);
      const got = once(client, 'message');
      client.send(payload, 7000, B6);
      const [msg, rinfo] = (await got) as [Buffer, RemoteInfo];
      expect(Buffer.compare(msg, payload)).toBe(0);
      expect(rinfo.address).toBe(B6);
      expect(rinfo.family).toBe('IPv6');
    }
    expect(p.a.stats().protocols.ip6Frag.xmit).toBeGreaterThan(0);
    void A6;
  });

  it('reports EADDRINUSE when the port is taken', async () => {
    p = pair();
    const one = p.b.createSocket('udp4');
    one.bind(6000);
    await once(one, 'listening');
    const two = p.b.createSocket('udp4');
    two.bind(6000);
    const [err] = await once(two, 'error');
    expect((err as NodeJS.ErrnoException).code).toBe('EADDRINUSE');
  });
});
