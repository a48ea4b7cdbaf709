import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../src/index.js';
import { A4, B4, B6, pair, type Pair } from './support/pair.js';

let p: Pair | null = null;
afterEach(() => {
  p?.close();
  p = null;
});

describe('neighbour cache', () => {
  it('learns entries, keeps static ones, and expires dynamic ones after the configured age', async () => {
    const clock = new ManualClock();
    p = pair({ stack: { clock, arpMaxAge: 60 } });
    p.a.neighbors.add({ address: '10.0.0.77', mac: '02:00:00:00:00:77' });
    const ping = p.a.ping(B4);
    await clock.advance(10);
    await ping;
    const learned = p.a.neighbors.list();
    expect(learned).toContainEqual(expect.objectContaining({ family: 4, address: B4, mac: '02:00:00:00:00:02', state: 'reachable', interface: 'eth0' }));
    expect(learned).toContainEqual(expect.objectContaining({ family: 4, address: '10.0.0.77', mac: '02:00:00:00:00:77', state: 'static' }));
    // B learned A from the request.
    expect(p.b.neighbors.list().some((n) => n.address === A4)).toBe(true);

    await clock.advance(30_000);
    expect(p.a.neighbors.list().some((n) => n.address === B4)).toBe(true);
    await clock.advance(40_000); // past 60 s
    const aged = p.a.neighbors.list();
    expect(aged.some((n) => n.address === B4 && n.family === 4)).toBe(false);
    expect(aged.some((n) => n.address === '10.0.0.77' && n.state === 'static')).toBe(true);
  });

  it('deletes single entries and flushes dynamic ones', async () => {
    p = pair();
    await p.a.ping(B4);
    await p.a.ping(B6);
    p.a.neighbors.add({ address: '10.0.0.99', mac: '02:00:00:00:00:99' });
    const before = p.a.neighbors.list();
    expect(before.some((n) => n.address === B6 && n.family === 6)).toBe(true);
    expect(p.a.neighbors.delete(B4)).toBe(true);
    expect(p.a.neighbors.delete(B4)).toBe(false);
    expect(p.a.neighbors.list().some((n) => n.address === B4)).toBe(false);
    p.a.neighbors.flush();
    const after = p.a.neighbors.list();
    expect(after.some((n) => n.address === B6)).toBe(false);
    expect(after.map((n) => n.address)).toEqual(['10.0.0.99']);
    expect(p.a.neighbors.delete('10.0.0.99')).toBe(true);
  });

  it('rejects bad entries with a TypeError naming the option', () => {
    p = pair();
    expect(() => p!.a.neighbors.add({ address: 'nope', mac: '02:00:00:00:00:01' })).toThrow(/"address"/);
    expect(() => p!.a.neighbors.add({ address: '10.0.0.5', mac: 'zz' })).toThrow(TypeError);
    expect(() => p!.a.neighbors.add({ address: '10.0.0.5', mac: 'zz' })).toThrow(/"mac"/);
  });
});
