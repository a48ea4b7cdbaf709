import { describe, expect, it } from 'vitest';
import { createCable, createStack } from '../src/index.js';

describe('bad options throw a TypeError naming the option', () => {
  it('createStack', () => {
    expect(() => createStack({ arpMaxAge: 0 })).toThrow(TypeError);
    expect(() => createStack({ arpMaxAge: 0 })).toThrow(/"arpMaxAge"/);
    expect(() => createStack({ forwarding: 'yes' as never })).toThrow(/"forwarding"/);
    expect(() => createStack({ dnsServers: ['not-an-ip'] })).toThrow(/"dnsServers\[0\]"/);
  });

  it('createCable', () => {
    expect(() => createCable({ mtu: 100 })).toThrow(/"mtu"/);
    expect(() => createCable({ mtu: 70000 })).toThrow(/"mtu"/);
    expect(() => createCable({ medium: 'wifi' as never })).toThrow(/"medium"/);
  });

  it('addInterface', () => {
    const s = createStack();
    try {
      const [l] = createCable({ mtu: 1500 });
      expect(() => s.addInterface({ link: {} as never })).toThrow(/"link"/);
      expect(() => s.addInterface({ link: l, ipv4: '10.0.0.1' })).toThrow(/"ipv4"/);
      expect(() => s.addInterface({ link: l, ipv4: '10.0.0.300/24' })).toThrow(/"ipv4"/);
      expect(() => s.addInterface({ link: l, ipv6: '10.0.0.1/24' })).toThrow(/"ipv6"/);
      expect(() => s.addInterface({ link: l, ipv6: ['fd00::1/64', 'nope'] })).toThrow(/"ipv6\[1\]"/);
      expect(() => s.addInterface({ link: l, mac: '00:11' })).toThrow(/"mac"/);
      expect(() => s.addInterface({ link: l, mtu: 9000 })).toThrow(/"mtu"/);
      expect(() => s.addInterface({ link: l, gateway: 'x' })).toThrow(/"gateway"/);
      expect(() => s.addInterface({ link: l, dhcp: 1 as never })).toThrow(/"dhcp"/);
      expect(s.interfaces).toHaveLength(0); // nothing half-added
    } finally {
      s.close();
    }
  });

  it('sockets and servers', () => {
    const s = createStack();
    try {
      expect(() => s.connect(0, '10.0.0.1')).toThrow(/"port"/);
      expect(() => s.connect({ port: 80, host: '10.0.0.1', localAddress: 'x' })).toThrow(/"localAddress"/);
      expect(() => s.createServer().listen(70000)).toThrow(/"port"/);
      expect(() => s.createServer().listen(80, 'nope')).toThrow(/"host"/);
      expect(() => s.createSocket('udp5' as never)).toThrow(/"type"/);
      const u = s.createSocket('udp4');
      expect(() => u.send('x', 0, '10.0.0.1')).toThrow(/"port"/);
      expect(() => u.send('x', 53, 'bad')).toThrow(/"address"/);
      u.close();
    } finally {
      s.close();
    }
  });

  it('ping and resolve reject with TypeErrors', async () => {
    const s = createStack();
    try {
      await expect(s.ping('nope')).rejects.toThrow(/"address"/);
      await expect(s.ping('10.0.0.1', { timeout: -1 })).rejects.toThrow(/"timeout"/);
      await expect(s.resolve('')).rejects.toThrow(/"name"/);
    } finally {
      s.close();
    }
  });
});
