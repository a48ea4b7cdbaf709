import { afterEach, describe, expect, it } from 'vitest';
import { createCable, createStack, type Stack } from '../src/index.js';
import { decodeDnsMessage, DnsRcode, DnsType, encodeDnsResponse } from '../src/wire/dns.js';

const stacks: Stack[] = [];
afterEach(() => {
  for (const s of stacks.splice(0)) s.close();
});

/** A stack running a small authoritative DNS server on UDP 53 (a real protocol peer for lwIP's resolver). */
function dnsServer(stack: Stack, zone: Record<string, { A?: string; AAAA?: string }>) {
  const sock = stack.createSocket('udp4');
  let queries = 0;
  sock.on('message', (msg: Buffer, rinfo: { address: string; port: number }) => {
    const query = decodeDnsMessage(msg);
    if (!query || query.questions.length !== 1) return;
    queries++;
    const q = query.questions[0]!;
    const entry = zone[q.name.toLowerCase()];
    const type = q.type === DnsType.AAAA ? 'AAAA' : q.type === DnsType.A ? 'A' : null;
    const value = entry && type ? entry[type] : undefined;
    const reply = value
      ? encodeDnsResponse(query, [{ type: q.type, value }])
      : encodeDnsResponse(query, [], { rcode: entry ? DnsRcode.NoError : DnsRcode.NXDomain });
    sock.send(reply, rinfo.port, rinfo.address);
  });
  sock.bind(53);
  return { get queries() { return queries; } };
}

/** A client stack whose DNS server is the other stack, 10.0.0.53. */
function clientAndServer(): { client: Stack; server: Stack } {
  const client = createStack({ dnsServers: ['10.0.0.53'] });
  const server = createStack();
  stacks.push(client, server);
  const [l1, l2] = createCable();
  client.addInterface({ link: l1, ipv4: '10.0.0.1/24' });
  server.addInterface({ link: l2, ipv4: '10.0.0.53/24' });
  return { client, server };
}

describe('DNS resolution', () => {
  it('resolves A and AAAA through the configured server, and caches', async () => {
    const { client, server } = clientAndServer();
    const dns = dnsServer(server, { 'app.example.test': { A: '192.0.2.10', AAAA: '2001:db8::10' } });
    expect(client.dnsServers).toEqual(['10.0.0.53']);

    expect(await client.resolve('app.example.test')).toEqual(['192.0.2.10']);
    expect(await client.resolve('app.example.test', { family: 6 })).toEqual(['2001:db8::10']);
    const before = dns.queries;
    expect(await client.resolve('APP.example.test')).toEqual(['192.0.2.10']); // lwIP's cache, case-insensitive
    expect(dns.queries).toBe(before);
    expect(await client.resolve('10.1.2.3')).toEqual(['10.1.2.3']); // literals are not looked up
  });

  it('rejects an unknown name with ENOTFOUND', async () => {
    const { client, server } = clientAndServer();
    dnsServer(server, {});
    await expect(client.resolve('missing.example.test')).rejects.toMatchObject({ code: 'ENOTFOUND' });
  });

  it('lets connect() take a host name', async () => {
    const { client, server } = clientAndServer();
    dnsServer(server, { 'web.example.test': { A: '10.0.0.53' } });
    server.createServer((s) => s.end('by name')).listen(80);
    const sock = client.connect(80, 'web.example.test');
    const text = await new Promise<string>((resolve, reject) => {
      let t = '';
      sock.on('data', (d: Buffer) => (t += d));
      sock.on('end', () => resolve(t));
      sock.on('error', reject);
    });
    expect(text).toBe('by name');
    expect(sock.remoteAddress).toBe('10.0.0.53');
  });
});
