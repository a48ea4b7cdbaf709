import { afterEach, describe, expect, it } from 'vitest';
import { createCable, createStack, ManualClock } from '../src/index.js';
import { A6, B4, B6, pair, type Pair } from './support/pair.js';

let p: Pair | null = null;
afterEach(() => {
  p?.close();
  p = null;
});

describe('ICMP echo', () => {
  it('pings over IPv4 and gets a round-trip time', async () => {
    p = pair();
    const rtt = await p.a.ping(B4);
    expect(rtt).toBeGreaterThanOrEqual(0);
    expect(rtt).toBeLessThan(1000);
    expect(p.b.stats().protocols.icmp.recv).toBeGreaterThan(0);
    expect(p.b.stats().protocols.icmp.xmit).toBeGreaterThan(0);
  });

  it('pings over IPv6, global and link-local', async () => {
    p = pair();
    expect(await p.a.ping(B6)).toBeGreaterThanOrEqual(0);
    const linkLocal = p.b.interfaces[0]!.ipv6.find((a) => a.address.startsWith('fe80'))!.address;
    expect(await p.a.ping(`${linkLocal}%eth0`)).toBeGreaterThanOrEqual(0);
    expect(p.b.stats().protocols.icmp6.recv).toBeGreaterThan(0);
    void A6;
  });

  it('times out with ETIMEDOUT when nobody answers (manual clock)', async () => {
    const clock = new ManualClock();
    const a = createStack({ clock });
    const [la] = createCable();
    a.addInterface({ link: la, ipv4: '10.0.0.1/24' });
    try {
      const result = a.ping('10.0.0.50', { timeout: 2000 }).then(() => 'answered', (e: NodeJS.ErrnoException) => e.code);
      await clock.advance(2500);
      expect(await result).toBe('ETIMEDOUT');
    } finally {
      a.close();
    }
  });

  it('fails fast with ENETUNREACH when there is no route', async () => {
    p = pair();
    await expect(p.a.ping('192.168.77.1')).rejects.toMatchObject({ code: 'ENETUNREACH' });
  });
});
