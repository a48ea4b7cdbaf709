import dgram from 'node:dgram';
import { promises as dnsPromises } from 'node:dns';
import { once } from 'node:events';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createCable, createStack, type Stack } from '../src/index.js';
import { openTap } from '../src/node/links.js';
import { DnsForwarder, type UpstreamResolver } from '../src/gateway/dns-server.js';
import { EgressPolicy } from '../src/gateway/policy.js';
import {
  DNS, DnsRcode, DnsType, decodeDnsMessage, encodeDnsMessage, encodeDnsQuery, encodeDnsResponse,
  type DnsMessage, type DnsRecordInit,
} from '../src/wire/dns.js';
import { deviceTestsUnavailable, Netns } from './support/netns.js';

const cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

// ------------------------------------------------------------ the upstream: a real DNS server on loopback

type Zone = Record<string, { A?: string[]; AAAA?: string[]; CNAME?: string; ttl?: number; rcode?: number }>;

const ZONE: Zone = {
  'app.example.test': { A: ['192.0.2.10'], AAAA: ['2001:db8::10'], ttl: 300 },
  'www.example.test': { CNAME: 'app.example.test', ttl: 120 },
  'v4only.example.test': { A: ['192.0.2.20'] },
  'short.example.test': { A: ['192.0.2.30'], ttl: 2 },
  'fail.example.test': { rcode: DnsRcode.ServFail },
  'many.example.test': { A: Array.from({ length: 40 }, (_, i) => `198.51.100.${i + 1}`) },
  'other.test': { A: ['203.0.113.5'] },
};

/** Answers from `zone` as a recursive server would (following CNAMEs into the answer). */
function answer(zone: Zone, query: DnsMessage): { answers: DnsRecordInit[]; rcode: number } {
  const q = query.questions[0]!;
  const answers: DnsRecordInit[] = [];
  let name = q.name.toLowerCase();
  for (let hops = 0; hops < 8; hops++) {
    const entry = zone[name];
    if (!entry) return { answers, rcode: answers.length ? DnsRcode.NoError : DnsRcode.NXDomain };
    if (entry.rcode) return { answers: [], rcode: entry.rcode };
    const ttl = entry.ttl ?? 60;
    if (entry.CNAME) {
      answers.push({ name, type: DnsType.CNAME, value: entry.CNAME, ttl });
      if (q.type === DnsType.CNAME) break;
      name = entry.CNAME;
      continue;
    }
    const list = q.type === DnsType.A ? entry.A : q.type === DnsType.AAAA ? entry.AAAA : undefined;
    for (const value of list ?? []) answers.push({ name, type: q.type, value, ttl });
    break;
  }
  return { answers, rcode: DnsRcode.NoError };
}

/** node:dgram + node:net on 127.0.0.1, one port for both: c-ares retries over TCP when a reply is truncated. */
async function loopbackDnsServer(zone: Zone) {
  const asked: string[] = [];
  const reply = (bytes: Uint8Array, limit: number): Uint8Array | null => {
    const query = decodeDnsMessage(bytes);
    if (!query || query.qr || query.questions.length !== 1) return null;
    const q = query.questions[0]!;
    asked.push(`${q.type}/${q.name.toLowerCase()}`);
    const { answers, rcode } = answer(zone, query);
    const full = encodeDnsResponse(query, answers, { rcode });
    if (full.length <= limit) return full;
    const tc = encodeDnsResponse(query, [], { rcode });
    tc[DNS.FLAGS]! |= DNS.TC >> 8;
    return tc;
  };
  for (let attempt = 0; ; attempt++) {
    const udp = dgram.createSocket('udp4');
    udp.on('message', (msg, rinfo) => {
      const query = decodeDnsMessage(msg);
      const opt = query?.additionals.find((r) => r.type === DnsType.OPT);
      const out = reply(msg, opt ? opt.class : 512);
      if (out) udp.send(out, rinfo.port, rinfo.address);
    });
    udp.bind(0, '127.0.0.1');
    await once(udp, 'listening');
    const port = udp.address().port;
    const tcp = net.createServer((sock) => {
      let buf = Buffer.alloc(0);
      sock.on('error', () => undefined);
      sock.on('data', (d) => {
        buf = Buffer.concat([buf, d]);
        while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
          const out = reply(buf.subarray(2, 2 + buf.readUInt16BE(0)), 0xffff);
          buf = buf.subarray(2 + buf.readUInt16BE(0));
          if (out) sock.write(Buffer.concat([Buffer.from([out.length >> 8, out.length & 0xff]), out]));
        }
      });
    });
    const ok = await new Promise<boolean>((resolve) => {
      tcp.once('error', () => resolve(false));
      tcp.listen(port, '127.0.0.1', () => resolve(true));
    });
    if (!ok) {
      udp.close();
      if (attempt > 20) throw new Error('no port free for both UDP and TCP');
      continue;
    }
    const close = async () => {
      udp.close();
      await new Promise((r) => tcp.close(r));
    };
    cleanup.push(close);
    return { port, asked };
  }
}

async function upstreamResolver(zone: Zone = ZONE) {
  const server = await loopbackDnsServer(zone);
  const resolver = new dnsPromises.Resolver({ timeout: 1000, tries: 1 });
  resolver.setServers([`127.0.0.1:${server.port}`]);
  cleanup.push(() => resolver.cancel());
  return { resolver, asked: server.asked };
}

// ------------------------------------------------------------ stacks

function manualClock(start = 1_000_000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => void (t += ms) };
}

function stack(options?: Parameters<typeof createStack>[0]): Stack {
  const s = createStack(options);
  cleanup.push(() => s.close());
  return s;
}

/** A forwarder on 10.53.0.1 and a client stack on 10.53.0.2 using it. */
async function pair(options: Partial<ConstructorParameters<typeof DnsForwarder>[0]> = {}) {
  const up = options.resolver ? null : await upstreamResolver();
  const server = stack();
  const client = stack({ dnsServers: ['10.53.0.1'] });
  const [a, b] = createCable();
  server.addInterface({ link: a, ipv4: '10.53.0.1/24', ipv6: 'fd53::1/64' });
  client.addInterface({ link: b, ipv4: '10.53.0.2/24', ipv6: 'fd53::2/64' });
  const clock = manualClock();
  const policy = new EgressPolicy({ rules: ['allow tcp:name:*.example.test:443', 'deny *'], clock });
  const forwarder = new DnsForwarder({ stack: server, address: '10.53.0.1', resolver: up?.resolver, policy, clock, ...options });
  cleanup.push(() => forwarder.close());
  await forwarder.listen();
  return { server, client, forwarder, policy, clock, asked: up?.asked ?? [] };
}

let nextId = 1;

/** A DNS query over UDP from the client stack; resolves with the decoded reply, or null after `wait` ms. */
async function udpQuery(client: Stack, server: string, bytes: Uint8Array, wait = 2000): Promise<DnsMessage | null> {
  const sock = client.createSocket('udp4');
  try {
    const reply = new Promise<DnsMessage | null>((resolve) => {
      const timer = setTimeout(() => resolve(null), wait);
      sock.on('message', (msg: Buffer) => {
        clearTimeout(timer);
        resolve(decodeDnsMessage(Uint8Array.from(msg)));
      });
    });
    sock.send(bytes, 53, server);
    return await reply;
  } finally {
    sock.close();
  }
}

/** A tiny DNS-over-TCP client (RFC 1035 section 4.2.2 framing) over the stack's connect. */
async function tcpQuery(client: Stack, server: string, queries: Uint8Array[]): Promise<DnsMessage[]> {
  const sock = client.connect(53, server);
  const framed = Buffer.concat(queries.map((q) => Buffer.concat([Buffer.from([q.length >> 8, q.length & 0xff]), q])));
  sock.end(framed); // pipelined, then half-closed: the server answers all, then closes
  let buf = Buffer.alloc(0);
  sock.on('data', (d: Buffer) => (buf = Buffer.concat([buf, d])));
  await new Promise<void>((resolve, reject) => {
    sock.on('end', resolve);
    sock.on('error', reject);
  });
  const byId = new Map<number, DnsMessage>();
  while (buf.length >= 2) {
    const len = buf.readUInt16BE(0);
    const m = decodeDnsMessage(Uint8Array.from(buf.subarray(2, 2 + len)))!;
    byId.set(m.id, m);
    buf = buf.subarray(2 + len);
  }
  // Answers to pipelined queries may come in any order (RFC 7766 section 6.2.1.1): match by id.
  return queries.map((q) => byId.get((q[0]! << 8) | q[1]!)!);
}

const query = (name: string, type: number, extra: Partial<Parameters<typeof encodeDnsMessage>[0]> = {}) =>
  extra.additionals ? encodeDnsMessage({ id: nextId++, recursionDesired: true, questions: [{ name, type }], ...extra }) : encodeDnsQuery({ id: nextId++, name, type });

const values = (m: DnsMessage | null | undefined) => m?.answers.map((a) => `${a.name} ${a.type} ${a.value}`);

describe('DnsForwarder on a stack, over a real DNS server on loopback', () => {
  it('answers the other stack’s resolve() with A and AAAA, NXDOMAIN as ENOTFOUND, and the policy learns', async () => {
    const { client, forwarder, policy } = await pair();
    expect(await client.resolve('app.example.test')).toEqual(['192.0.2.10']);
    expect(await client.resolve('app.example.test', { family: 6 })).toEqual(['2001:db8::10']);
    await expect(client.resolve('missing.example.test')).rejects.toMatchObject({ code: 'ENOTFOUND' });
    await expect(client.resolve('fail.example.test')).rejects.toMatchObject({ code: 'ENOTFOUND' }); // SERVFAIL
    expect(await client.resolve('www.example.test')).toEqual(['192.0.2.10']); // through a CNAME

    const c = forwarder.counters;
    expect(c.udp).toBeGreaterThanOrEqual(5);
    expect(c.nxdomain).toBeGreaterThanOrEqual(1);
    expect(c.servfail).toBeGreaterThanOrEqual(1);
    expect(c.malformed).toBe(0);

    // The policy admits exactly what the name resolved to.
    expect(policy.decide({ protocol: 'tcp', address: '192.0.2.10', port: 443 })).toMatchObject({ allowed: true, index: 0 });
    expect(policy.decide({ protocol: 'tcp', address: '2001:db8::10', port: 443 })).toMatchObject({ allowed: true, index: 0 });
    expect(policy.decide({ protocol: 'tcp', address: '192.0.2.11', port: 443 })).toMatchObject({ allowed: false, index: 1 });
    expect(policy.namesOf('192.0.2.10').sort()).toEqual(['app.example.test', 'www.example.test']);
  });

  it('answers over TCP with 2-byte framing, pipelined, the same as over UDP', async () => {
    const { client } = await pair();
    const [a, aaaa, nx] = await tcpQuery(client, '10.53.0.1', [
      query('app.example.test', DnsType.A),
      query('App.Example.Test', DnsType.AAAA),
      query('nope.example.test', DnsType.A),
    ]);
    expect(a!.qr).toBe(true);
    expect(values(a)).toEqual(['app.example.test 1 192.0.2.10']);
    expect(a!.answers[0]!.ttl).toBe(300);
    expect(values(aaaa)).toEqual(['App.Example.Test 28 2001:db8::10']); // the question's spelling (0x20)
    expect(nx!.rcode).toBe(DnsRcode.NXDomain);
    const overUdp = await udpQuery(client, '10.53.0.1', query('app.example.test', DnsType.A));
    expect(values(overUdp)).toEqual(values(a));

    // More than the 16 answered at once: the rest wait in the TCP window, none is lost.
    const names = Array.from({ length: 50 }, (_, i) => (i % 2 ? 'app.example.test' : `n${i}.example.test`));
    const replies = await tcpQuery(client, '10.53.0.1', names.map((n) => query(n, DnsType.A)));
    expect(replies.map((m) => m.rcode)).toEqual(names.map((n) => (n.startsWith('app') ? DnsRcode.NoError : DnsRcode.NXDomain)));
  });

  it('passes CNAME chains on and answers CNAME queries', async () => {
    const { client } = await pair();
    const a = await udpQuery(client, '10.53.0.1', query('www.example.test', DnsType.A));
    expect(values(a)).toEqual(['www.example.test 5 app.example.test', 'app.example.test 1 192.0.2.10']);
    const cname = await udpQuery(client, '10.53.0.1', query('www.example.test', DnsType.CNAME));
    expect(values(cname)).toEqual(['www.example.test 5 app.example.test']);
    const none = await udpQuery(client, '10.53.0.1', query('v4only.example.test', DnsType.AAAA));
    expect(none!.rcode).toBe(DnsRcode.NoError); // the name exists: NODATA, not NXDOMAIN
    expect(none!.answers).toEqual([]);
  });

  it('caches for the TTL, counting it down, and shares a lookup between concurrent queries', async () => {
    const { client, forwarder, clock, asked } = await pair({ cnames: false });
    const first = await udpQuery(client, '10.53.0.1', query('short.example.test', DnsType.A));
    expect(first!.answers[0]!.ttl).toBe(2);
    clock.advance(1_000);
    const second = await udpQuery(client, '10.53.0.1', query('short.example.test', DnsType.A));
    expect(second!.answers[0]!.ttl).toBe(1);
    expect(asked.filter((q) => q === '1/short.example.test')).toHaveLength(1);
    expect(forwarder.counters.cacheHits).toBe(1);
    clock.advance(1_000); // expired
    await udpQuery(client, '10.53.0.1', query('short.example.test', DnsType.A));
    expect(asked.filter((q) => q === '1/short.example.test')).toHaveLength(2);

    const together = await Promise.all([1, 2, 3].map(() => forwarder.respond(query('app.example.test', DnsType.AAAA))));
    expect(together.map((r) => values(decodeDnsMessage(r!)))).toEqual(Array(3).fill(['app.example.test 28 2001:db8::10']));
    expect(asked.filter((q) => q === '28/app.example.test')).toHaveLength(1);

    // Negative answers are cached too, for negativeTtl.
    await udpQuery(client, '10.53.0.1', query('gone.example.test', DnsType.A));
    await udpQuery(client, '10.53.0.1', query('gone.example.test', DnsType.A));
    expect(asked.filter((q) => q === '1/gone.example.test')).toHaveLength(1);
  });

  it('truncates big UDP answers (TC, then TCP has them all) unless EDNS offers room', async () => {
    const { client, forwarder } = await pair({ cnames: false });
    const udp = await udpQuery(client, '10.53.0.1', query('many.example.test', DnsType.A));
    expect(udp!.truncated).toBe(true);
    expect(udp!.answers).toEqual([]);
    expect(forwarder.counters.truncated).toBe(1);
    const [tcp] = await tcpQuery(client, '10.53.0.1', [query('many.example.test', DnsType.A)]);
    expect(tcp!.truncated).toBe(false);
    expect(tcp!.answers).toHaveLength(40);
    const opt: DnsRecordInit = { name: '.', type: DnsType.OPT, class: 4096, ttl: 0, data: new Uint8Array(0) };
    const edns = await udpQuery(client, '10.53.0.1', query('many.example.test', DnsType.A, { additionals: [opt] }));
    expect(edns!.truncated).toBe(false);
    expect(edns!.answers).toHaveLength(40);
    expect(edns!.additionals.find((r) => r.type === DnsType.OPT)?.class).toBe(1232); // our payload size
  });

  it('answers static hosts records authoritatively, and the policy learns them', async () => {
    const { client, forwarder, policy } = await pair({ hosts: { 'Gateway.Example.Test': ['10.53.0.1', 'fd53::1'] } });
    expect(await client.resolve('gateway.example.test')).toEqual(['10.53.0.1']);
    expect(await client.resolve('gateway.example.test', { family: 6 })).toEqual(['fd53::1']);
    const m = await udpQuery(client, '10.53.0.1', query('GATEWAY.example.test', DnsType.A));
    expect(m!.authoritative).toBe(true);
    expect(m!.answers[0]!.ttl).toBe(60);
    expect(forwarder.counters.hostsHits).toBe(3);
    expect(policy.decide({ protocol: 'tcp', address: '10.53.0.1', port: 443 }).allowed).toBe(true);
  });

  it('counts and drops malformed queries; unsupported types and opcodes get NOTIMP', async () => {
    const { client, forwarder } = await pair();
    expect(await udpQuery(client, '10.53.0.1', Uint8Array.from([1, 2, 3]), 300)).toBeNull();
    const resp = encodeDnsResponse(decodeDnsMessage(query('app.example.test', DnsType.A))!, []);
    expect(await udpQuery(client, '10.53.0.1', resp, 300)).toBeNull(); // a response: no reflection
    const two = encodeDnsMessage({ id: 9, questions: [{ name: 'a.test', type: 1 }, { name: 'b.test', type: 1 }] });
    expect(await udpQuery(client, '10.53.0.1', two, 300)).toBeNull();
    expect(forwarder.counters.malformed).toBe(3);

    const mx = await udpQuery(client, '10.53.0.1', query('app.example.test', DnsType.MX));
    expect(mx!.rcode).toBe(DnsRcode.NotImp);
    const status = await udpQuery(client, '10.53.0.1', encodeDnsMessage({ id: 7, opcode: 2, questions: [{ name: 'a.test', type: 1 }] }));
    expect(status!.rcode).toBe(DnsRcode.NotImp);

    // A TCP length under a header's size cannot be resynchronised: the connection is closed.
    const sock = client.connect(53, '10.53.0.1');
    sock.on('error', () => undefined); // reset by the server
    sock.write(Buffer.from([0, 3, 1, 2, 3]));
    sock.resume();
    await new Promise((resolve) => sock.on('close', resolve));
    expect(forwarder.counters.malformed).toBe(4);
  });

  it('answers SERVFAIL when the upstream is slow, and through a resolver that is not node:dns', async () => {
    const slow: UpstreamResolver = {
      resolve4: (name) => (name === 'slow.test' ? new Promise(() => undefined) : Promise.resolve([{ address: '192.0.2.99', ttl: 5 }])),
      resolve6: () => Promise.reject(Object.assign(new Error('no data'), { code: 'ENODATA' })),
    };
    const { client, forwarder } = await pair({ resolver: slow, timeout: 100 });
    const m = await udpQuery(client, '10.53.0.1', query('slow.test', DnsType.A));
    expect(m!.rcode).toBe(DnsRcode.ServFail);
    expect(values(await udpQuery(client, '10.53.0.1', query('fast.test', DnsType.A)))).toEqual(['fast.test 1 192.0.2.99']);
    expect((await udpQuery(client, '10.53.0.1', query('fast.test', DnsType.AAAA)))!.answers).toEqual([]);
    // Without resolveCname there are no CNAME queries.
    expect((await udpQuery(client, '10.53.0.1', query('fast.test', DnsType.CNAME)))!.rcode).toBe(DnsRcode.NotImp);
    expect(forwarder.counters.servfail).toBe(1);
  });

  it('serves IPv6 clients, and every address when none is given', async () => {
    const up = await upstreamResolver();
    const server = stack();
    const client = stack({ dnsServers: ['fd54::1'] });
    const [a, b] = createCable();
    server.addInterface({ link: a, ipv4: '10.54.0.1/24', ipv6: 'fd54::1/64' });
    client.addInterface({ link: b, ipv4: '10.54.0.2/24', ipv6: 'fd54::2/64' });
    const forwarder = new DnsForwarder({ stack: server, resolver: up.resolver });
    cleanup.push(() => forwarder.close());
    await forwarder.listen();
    expect(await client.resolve('app.example.test', { family: 6 })).toEqual(['2001:db8::10']);
    client.dnsServers = ['10.54.0.1'];
    expect(await client.resolve('app.example.test')).toEqual(['192.0.2.10']);
    const [overV6] = await tcpQuery(client, 'fd54::1', [query('app.example.test', DnsType.A)]);
    expect(values(overV6)).toEqual(['app.example.test 1 192.0.2.10']);
  });

  it('rejects a taken port, and bad options with TypeErrors naming them', async () => {
    const s = stack();
    const [a] = createCable();
    s.addInterface({ link: a, ipv4: '10.55.0.1/24' });
    const resolver = { resolve4: async () => [], resolve6: async () => [] };
    const first = new DnsForwarder({ stack: s, address: '10.55.0.1', resolver });
    cleanup.push(() => first.close());
    await first.listen();
    const second = new DnsForwarder({ stack: s, address: '10.55.0.1', resolver });
    await expect(second.listen()).rejects.toMatchObject({ code: 'EADDRINUSE' });

    const bad: Array<[object, string]> = [
      [{}, 'stack'],
      [{ stack: s, address: 'ten' }, 'address'],
      [{ stack: s, address: ['10.55.0.1', 'x'] }, 'address[1]'],
      [{ stack: s, port: 0 }, 'port'],
      [{ stack: s, resolver: {} }, 'resolver'],
      [{ stack: s, policy: {} }, 'policy'],
      [{ stack: s, hosts: [] }, 'hosts'],
      [{ stack: s, hosts: { 'a b': ['10.0.0.1'] } }, "hosts['a b']"],
      [{ stack: s, hosts: { 'a.test': ['10.0.0.300'] } }, "hosts['a.test'][0]"],
      [{ stack: s, cacheSize: -1 }, 'cacheSize'],
      [{ stack: s, negativeTtl: NaN }, 'negativeTtl'],
      [{ stack: s, timeout: 0 }, 'timeout'],
      [{ stack: s, maxPending: 1.5 }, 'maxPending'],
      [{ stack: s, tcp: 'yes' }, 'tcp'],
      [{ stack: s, clock: Date.now }, 'clock'],
    ];
    await expect(first.respond(query('a.test', DnsType.A), { maxSize: 100 })).rejects.toThrow(/"maxSize"/);
    for (const [options, name] of bad) {
      expect(() => new DnsForwarder(options as ConstructorParameters<typeof DnsForwarder>[0]), name).toThrow(TypeError);
      expect(() => new DnsForwarder(options as ConstructorParameters<typeof DnsForwarder>[0]), name).toThrow(`"${name}"`);
    }
  });
});

// ------------------------------------------------------------ the Linux resolver in a namespace

const skip = deviceTestsUnavailable();
const maybe = skip ? describe.skip : describe;

maybe('DnsForwarder for a namespace: glibc and busybox resolvers', () => {
  it('getent hosts and nslookup in the namespace resolve through the forwarder on a TAP', async () => {
    const up = await upstreamResolver();
    const ns = await Netns.create('tt-dns');
    cleanup.push(() => ns.delete());
    // `ip netns exec` bind-mounts /etc/netns/NAME/* over /etc/*.
    const etc = `/etc/netns/${ns.name}`;
    mkdirSync(etc, { recursive: true });
    cleanup.push(() => rmSync(etc, { recursive: true, force: true }));
    writeFileSync(`${etc}/resolv.conf`, 'nameserver 10.79.0.2\noptions timeout:2 attempts:2\n');
    writeFileSync(`${etc}/hosts`, '127.0.0.1 localhost\n'); // so the names below come from DNS

    const tap = openTap({ name: 'tt0', netns: ns.path, mtu: 1500 });
    const s = stack();
    await ns.exec('ip', ['addr', 'add', '10.79.0.1/24', 'dev', 'tt0']);
    s.addInterface({ link: tap, ipv4: '10.79.0.2/24' });
    const policy = new EgressPolicy({ rules: ['allow name:*.example.test', 'deny *'] });
    const forwarder = new DnsForwarder({ stack: s, address: '10.79.0.2', resolver: up.resolver, policy });
    cleanup.push(() => forwarder.close());
    await forwarder.listen();

    const v4 = await ns.exec('getent', ['ahostsv4', 'app.example.test']);
    expect(v4).toMatch(/^192\.0\.2\.10\s/m);
    const hosts = await ns.exec('getent', ['hosts', 'www.example.test']);
    expect(hosts).toMatch(/^(2001:db8::10|192\.0\.2\.10)\s+app\.example\.test www\.example\.test$/m); // canonical name, then the alias
    await expect(ns.exec('getent', ['hosts', 'missing.example.test'])).rejects.toMatchObject({ code: 2 }); // not found

    const look = await ns.exec('busybox', ['nslookup', 'app.example.test', '10.79.0.2']);
    expect(look).toContain('192.0.2.10');
    expect(look).toContain('2001:db8::10');
    // 40 addresses do not fit 512 bytes: the UDP reply is truncated and glibc asks again over TCP.
    const many = await ns.exec('getent', ['ahostsv4', 'many.example.test']);
    expect(new Set(many.trim().split('\n').map((l) => l.split(/\s+/)[0]))).toEqual(new Set(ZONE['many.example.test']!.A));
    expect(forwarder.counters.truncated).toBeGreaterThanOrEqual(1);
    expect(forwarder.counters.tcp).toBeGreaterThanOrEqual(1);

    expect(forwarder.counters.udp).toBeGreaterThanOrEqual(4);
    expect(policy.decide({ protocol: 'tcp', address: '192.0.2.10', port: 80 }).allowed).toBe(true);
    expect(policy.decide({ protocol: 'tcp', address: '203.0.113.5', port: 80 }).allowed).toBe(false);
  });
});
