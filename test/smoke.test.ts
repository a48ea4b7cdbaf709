import { describe, expect, it } from 'vitest';
import { createStack, createCable } from '../src/index.js';

describe('smoke', () => {
  it('echoes over TCP between two stacks', async () => {
    const a = createStack();
    const b = createStack();
    const [la, lb] = createCable();
    a.addInterface({ link: la, ipv4: '10.0.0.1/24' });
    b.addInterface({ link: lb, ipv4: '10.0.0.2/24' });
    const server = b.createServer((s) => s.pipe(s));
    await new Promise<void>((r) => server.listen(7, r));
    const sock = a.connect(7, '10.0.0.2');
    const got: Buffer[] = [];
    sock.on('data', (d) => got.push(d));
    await new Promise((r) => sock.once('connect', r));
    sock.end('hello');
    await new Promise((r) => sock.once('close', r));
    expect(Buffer.concat(got).toString()).toBe('hello');
    a.close();
    b.close();
  });
});
