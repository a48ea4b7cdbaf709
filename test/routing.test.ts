import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { createCable, createLoopback, createStack, ManualClock, type Stack } from '../src/index.js';

const stacks: Stack[] = [];
afterEach(() => {
  for (const s of stacks.splice(0)) s.close();
});

/**
 * A --net1-- R --net2-- B
 *            R --net3-- C
 * B owns 10.50.0.9 and C owns 10.50.1.9 (on loopback interfaces); R routes
 * 10.50.0.0/16 to B and the more specific 10.50.1.0/24 to C.
 */
function topology(clock?: ManualClock) {
  const mk = () => {
    const s = createStack({ clock });
    stacks.push(s);
    return s;
  };
  const a = mk(), r = mk(), b = mk(), c = mk();
  const [a1, r1] = createCable();
  const [r2, b2] = createCable();
  const [r3, c3] = createCable();
  a.addInterface({ link: a1, ipv4: '10.1.0.2/24', gateway: '10.1.0.1' });
  r.addInterface({ link: r1, ipv4: '10.1.0.1/24' });
  r.addInterface({ link: r2, ipv4: '10.2.0.1/24' });
  r.addInterface({ link: r3, ipv4: '10.3.0.1/24' });
  b.addInterface({ link: b2, ipv4: '10.2.0.2/24', gateway: '10.2.0.1' });
  c.addInterface({ link: c3, ipv4: '10.3.0.2/24', gateway: '10.3.0.1' });
  b.addInterface({ link: createLoopback(), ipv4: '10.50.0.9/32' });
  c.addInterface({ link: createLoopback(), ipv4: '10.50.1.9/32' });
  r.routes.add({ prefix: '10.50.0.0/16', gateway: '10.2.0.2' });
  r.routes.add({ prefix: '10.50.1.0/24', gateway: '10.3.0.2' });
  r.forwarding = true;
  return { a, r, b, c };
}

describe('routing and forwarding', () => {
  it('forwards between two subnets by its routing table', async () => {
    const { a, r, b } = topology();
    expect(await a.ping('10.2.0.2')).toBeGreaterThanOrEqual(0);
    const server = b.createServer((s) => s.pipe(s));
    server.listen(80);
    await once(server, 'listening');
    const sock = a.connect(80, '10.2.0.2');
    const chunks: Buffer[] = [];
    sock.on('data', (d: Buffer) => chunks.push(d));
    const ended = once(sock, 'end');
    sock.end('through the router');
    await ended;
    expect(Buffer.concat(chunks).toString()).toBe('through the router');
    expect(sock.localAddress).toBe('10.1.0.2');
    expect(r.stats().protocols.ip.fw).toBeGreaterThan(0);
  });

  it('picks the longest matching prefix, then falls back when it is removed', async () => {
    const { a, r, b, c } = topology();
    expect(await a.ping('10.50.0.9')).toBeGreaterThanOrEqual(0); // /16 → B
    const cBefore = c.stats().protocols.icmp.recv;
    expect(await a.ping('10.50.1.9')).toBeGreaterThanOrEqual(0); // /24 → C, not B
    expect(c.stats().protocols.icmp.recv).toBeGreaterThan(cBefore);

    const routes = r.routes.list();
    expect(routes).toContainEqual({ prefix: '10.50.1.0/24', gateway: '10.3.0.2', interface: 'eth2', metric: 0 });
    expect(routes).toContainEqual({ prefix: '10.50.0.0/16', gateway: '10.2.0.2', interface: 'eth1', metric: 0 });

    expect(r.routes.remove({ prefix: '10.50.1.0/24' })).toBe(1);
    // Now the /16 wins and B, which does not own 10.50.1.9 and does not forward, drops it.
    const bNoRoute = b.stats().protocols.ip.rterr; // not ours and not forwarded: counted as a routing drop
    await expect(a.ping('10.50.1.9', { timeout: 300 })).rejects.toMatchObject({ code: 'ETIMEDOUT' });
    expect(b.stats().protocols.ip.rterr).toBeGreaterThan(bNoRoute);
  });

  it('prefers the lower metric between equal prefixes', async () => {
    const { a, r, c } = topology();
    r.routes.add({ prefix: '10.60.0.0/16', gateway: '10.2.0.2', metric: 20 });
    r.routes.add({ prefix: '10.60.0.0/16', gateway: '10.3.0.2', metric: 10 });
    c.addInterface({ link: createLoopback(), ipv4: '10.60.0.1/32' });
    expect(await a.ping('10.60.0.1')).toBeGreaterThanOrEqual(0);
  });

  it('does not forward when forwarding is off', async () => {
    const { a, r } = topology();
    r.forwarding = false;
    await expect(a.ping('10.2.0.2', { timeout: 300 })).rejects.toMatchObject({ code: 'ETIMEDOUT' });
    r.forwarding = true;
    expect(await a.ping('10.2.0.2')).toBeGreaterThanOrEqual(0);
  });

  it('routes IPv6 by longest prefix through a router too', async () => {
    const mk = () => {
      const s = createStack();
      stacks.push(s);
      return s;
    };
    const a = mk(), r = mk(), b = mk();
    const [a1, r1] = createCable();
    const [r2, b2] = createCable();
    a.addInterface({ link: a1, ipv6: 'fd01::2/64', gateway: 'fd01::1' });
    r.addInterface({ link: r1, ipv6: 'fd01::1/64' });
    r.addInterface({ link: r2, ipv6: 'fd02::1/64' });
    b.addInterface({ link: b2, ipv6: 'fd02::2/64', gateway: 'fd02::1' });
    r.forwarding = true;
    expect(await a.ping('fd02::2')).toBeGreaterThanOrEqual(0);
  });

  it('rejects bad routes with a TypeError naming the option', () => {
    const { r } = topology();
    expect(() => r.routes.add({ prefix: '10.0.0.0' })).toThrow(/"prefix"/);
    expect(() => r.routes.add({ prefix: '10.0.0.0/8', gateway: 'fd00::1' })).toThrow(/"gateway"/);
    expect(() => r.routes.add({ prefix: '10.0.0.0/8', gateway: '192.168.1.1' })).toThrow(/"interface"/);
    expect(() => r.routes.add({ prefix: '10.0.0.0/8', interface: 'eth9' })).toThrow(/"interface"/);
    expect(() => r.routes.add({ prefix: '10.0.0.0/8', interface: 'eth0', metric: -1 })).toThrow(/"metric"/);
  });

  it('gives ENETUNREACH for a destination with no route', async () => {
    const a = createStack();
    stacks.push(a);
    a.addInterface({ link: createCable()[0], ipv4: '10.1.0.2/24' });
    const sock = a.connect(80, '172.20.0.1');
    const [err] = await once(sock, 'error');
    expect((err as NodeJS.ErrnoException).code).toBe('ENETUNREACH');
  });
});
