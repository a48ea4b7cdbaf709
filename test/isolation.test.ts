import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { B4, listen, pair, type Pair } from './support/pair.js';

const pairs: Pair[] = [];
afterEach(() => {
  for (const p of pairs.splice(0)) p.close();
});

async function echo(p: Pair, port: number): Promise<string> {
  await listen(p.b.createServer((s) => s.pipe(s)), port);
  const sock = p.a.connect(port, B4);
  const chunks: Buffer[] = [];
  sock.on('data', (d: Buffer) => chunks.push(d));
  const ended = once(sock, 'end');
  sock.end(`echo ${port}`);
  await ended;
  return Buffer.concat(chunks).toString();
}

describe('isolation', () => {
  for (const kind of ['trap', 'assert'] as const) {
    it(`a ${kind} in one stack ends only that stack`, async () => {
      const broken = pair();
      const healthy = pair();
      pairs.push(broken, healthy);
      // A connection on the stack that is about to fail.
      await listen(broken.b.createServer(() => undefined), 90);
      const doomed = broken.a.connect(90, B4);
      await once(doomed, 'connect');
      const doomedError = once(doomed, 'error');

      const errors: Error[] = [];
      broken.a.on('error', (e) => errors.push(e));
      expect(() => broken.a._trap(kind)).toThrow(/stack is closed/);
      expect(errors).toHaveLength(1);
      expect((errors[0] as NodeJS.ErrnoException).code).toBe('ERR_STACK_FAILED');
      expect(errors[0]!.message).toMatch(kind === 'assert' ? /lwIP assertion "tt_debug_assert called" failed/ : /wasm trap/);
      expect(broken.a.closed).toBe(true);
      const [sockErr] = await doomedError;
      expect((sockErr as NodeJS.ErrnoException).code).toBe('ERR_STACK_CLOSED');
      await expect(broken.a.ping(B4)).rejects.toMatchObject({ code: 'ERR_STACK_CLOSED' });

      // Everything else keeps working, including the failed stack's peer.
      expect(await echo(healthy, 91)).toBe('echo 91');
      expect(await healthy.a.ping(B4)).toBeGreaterThanOrEqual(0);
      expect(broken.b.stats().protocols.tcp.recv).toBeGreaterThan(0);
    });
  }
});
