import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import { echoRoundTrip } from './support/transfer.js';
import { createCable, createStack, type RemoteInfo } from '../src/index.js';

describe('every MTU from 576 to 65520', () => {
  for (const mtu of [576, 1280, 1500, 9000, 65520]) {
    it(`carries TCP and fragmented UDP at MTU ${mtu}, never exceeding it`, async () => {
      const a = createStack();
      const b = createStack();
      const [la, lb] = createCable({ mtu });
      try {
        const v6 = mtu >= 1280; // IPv6 needs a 1280-byte link (RFC 8200 section 5)
        a.addInterface({ link: la, ipv4: '10.0.0.1/24', ipv6: v6 ? 'fd00::1/64' : undefined });
        b.addInterface({ link: lb, ipv4: '10.0.0.2/24', ipv6: v6 ? 'fd00::2/64' : undefined });
        b.createServer((s) => s.pipe(s)).listen(7);
        for (const host of v6 ? ['10.0.0.2', 'fd00::2'] : ['10.0.0.2']) {
          const r = await echoRoundTrip(a.connect(7, host), 2 * 1024 * 1024);
          expect(r.received).toBe(r.sent);
          expect(r.receivedSha256).toBe(r.sentSha256);
        }
        const server = b.createSocket('udp4');
        server.bind(53);
        const client = a.createSocket('udp4');
        const dgram = randomBytes(8000);
        const got = once(server, 'message');
        client.send(dgram, 53, '10.0.0.2');
        const [msg, rinfo] = (await got) as [Buffer, RemoteInfo];
        expect(Buffer.compare(msg, dgram)).toBe(0);
        expect(rinfo.size).toBe(8000);
        expect(la.counters.framesOversize + lb.counters.framesOversize).toBe(0);
        expect(la.counters.framesSent).toBeGreaterThan(0);
      } finally {
        a.close();
        b.close();
      }
    }, 60_000);
  }
});
