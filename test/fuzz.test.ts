import { describe, expect, it } from 'vitest';
import { createCable, createStack, type Stack } from '../src/index.js';
import { fuzzFrames } from './support/frames.js';

const FRAMES = 100_000;
/** Frames per event-loop turn: within a stack's per-turn input budget (256), so none is dropped at its queue unfuzzed. */
const BATCH = 250;

function dropTotal(s: Stack): number {
  const st = s.stats();
  let n = 0;
  for (const c of Object.values(st.protocols)) n += c.drop;
  for (const i of Object.values(st.interfaces)) n += i.rxDropped.badLength + i.rxDropped.noMemory + i.rxDropped.queueFull;
  return n;
}

describe('malformed input', () => {
  it(`survives ${FRAMES.toLocaleString('en')} random and mutated frames, counts them as drops, and still answers`, async () => {
    const victim = createStack();
    const peer = createStack();
    try {
      const [attacker, victimLink] = createCable();
      let replies = 0;
      attacker.attach(() => replies++);
      victim.addInterface({ link: victimLink, ipv4: '10.9.0.1/24', ipv6: 'fd09::1/64', mac: '02:00:00:00:09:01' });
      const errors: Error[] = [];
      victim.on('error', (e) => errors.push(e));

      const target = {
        dstMac: '02:00:00:00:09:01', dstIpv4: '10.9.0.1', dstIpv6: 'fd09::1',
        srcMac: '02:00:00:00:09:02', srcIpv4: '10.9.0.2', srcIpv6: 'fd09::2',
      };
      let sent = 0;
      let mutated = 0;
      for (const f of fuzzFrames(target, FRAMES, 20261128)) {
        attacker.send(f.frame);
        sent++;
        if (f.mutation !== 'none') mutated++;
        if (sent % BATCH === 0) await new Promise((r) => setImmediate(r));
      }
      await new Promise((r) => setImmediate(r));

      expect(errors).toEqual([]);
      expect(victim.closed).toBe(false);
      const drops = dropTotal(victim);
      // Most mutated frames fail a check somewhere and are counted; valid ones
      // (and mutations that leave a frame valid) are processed instead.
      console.log(`fuzz: ${sent} frames, ${mutated} mutated, ${drops} counted drops, ${replies} replies`);
      expect(drops).toBeGreaterThan(mutated * 0.5);
      expect(replies).toBeGreaterThan(0);

      // Still healthy: a fresh peer on a new interface can ping it and talk TCP.
      const [p1, p2] = createCable();
      victim.addInterface({ link: p1, ipv4: '10.8.0.1/24' });
      peer.addInterface({ link: p2, ipv4: '10.8.0.2/24' });
      expect(await peer.ping('10.8.0.1')).toBeGreaterThanOrEqual(0);
      const server = victim.createServer((s) => s.end('alive'));
      server.listen(80);
      const sock = peer.connect(80, '10.8.0.1');
      const text = await new Promise<string>((resolve, reject) => {
        let t = '';
        sock.on('data', (d: Buffer) => (t += d));
        sock.on('end', () => resolve(t));
        sock.on('error', reject);
      });
      expect(text).toBe('alive');
    } finally {
      victim.close();
      peer.close();
    }
  }, 120_000);
});
