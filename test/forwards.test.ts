/**
 * Port forwards (issue 17): the client's own address inside the sandbox,
 * ranges, dual-stack listeners, clear errors, automatic forwards, the host
 * names in the gateway's DNS.
 *
 * In-process first: the sandbox is a stack on a cable to the gateway and
 * clients are on this machine's loopback (which the sandbox sees as the
 * gateway's address). Then, as root, clients with addresses of their own
 * in a namespace joined by a veth pair to the namespace the gateway runs in
 * (test/support/topology.ts: nothing leaves the namespaces the test makes).
 */
import { createHash, randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import { once } from 'node:events';
import net from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { deviceTestsUnavailable } from './support/netns.js';
import { GatewayTopology, HOST_ADDRESS, HOST_ADDRESS6, INTERNET_ADDRESS, INTERNET_ADDRESS6, nodeServer, type RunningGateway } from './support/topology.js';
import { createCable, createStack, type Stack } from '../src/index.js';
import { createGateway, parseForward, type AutoForwardEvent, type Gateway, type GatewayOptions } from '../src/gateway/gateway.js';
import { parsePortRanges, parseProcNet } from '../src/gateway/forwards.js';
import { parseGatewayArgs } from '../src/cli/gateway-command.js';
import { parseSlirp4netnsArgs } from '../src/cli/slirp4netns-command.js';

const cleanup: (() => void)[] = [];
afterEach(() => {
  for (const fn of cleanup.splice(0).reverse()) fn();
});

const noUpstream = {
  resolve4: () => Promise.reject(Object.assign(new Error('no upstream in tests'), { code: 'ESERVFAIL' })),
  resolve6: () => Promise.reject(Object.assign(new Error('no upstream in tests'), { code: 'ESERVFAIL' })),
};

function setup(options: Partial<GatewayOptions> = {}): { gw: Gateway; sandbox: Stack } {
  const [gwLink, sandboxLink] = createCable({ mtu: 1500 });
  const gw = createGateway({ link: gwLink, resolver: noUpstream, ipv6: true, ...options });
  const sandbox = createStack({ dnsServers: ['10.0.2.3'] });
  const iface = sandbox.addInterface({ link: sandboxLink, ipv4: '10.0.2.100/24', gateway: '10.0.2.2', ipv6: 'fd00::100/64' });
  sandbox.routes.add({ prefix: '::/0', gateway: 'fd00::2', interface: iface });
  cleanup.push(() => {
    sandbox.close();
    gw.close();
  });
  return { gw, sandbox };
}

/** A TCP server in the sandbox answering "REMOTEADDR REMOTEPORT". */
function whoServer(sandbox: Stack, port: number): void {
  const server = sandbox.createServer((s) => s.end(`${s.remoteAddress} ${s.remotePort}`));
  server.listen(port);
  cleanup.push(() => server.close());
}

/** Connects, returns what the server said and the client's own port. */
async function ask(port: number, host = '127.0.0.1'): Promise<{ text: string; localPort: number }> {
  return new Promise((resolve, reject) => {
    const c = net.connect(port, host);
    let text = '';
    c.on('data', (d: Buffer) => (text += d));
    c.on('end', () => resolve({ text, localPort: c.localPort! }));
    c.on('error', reject);
  });
}

async function refused(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const c = net.connect(port, host);
    c.on('connect', () => {
      c.destroy();
      resolve(false);
    });
    c.on('error', () => resolve(true));
  });
}

/** A free port on the host's loopback for TCP and UDP both (probed, then released). */
async function freePort(): Promise<number> {
  for (;;) {
    const s = net.createServer().listen(0, '127.0.0.1');
    await once(s, 'listening');
    const port = (s.address() as net.AddressInfo).port;
    s.close();
    const u = dgram.createSocket('udp4');
    const ok = await new Promise<boolean>((resolve) => {
      u.once('error', () => resolve(false));
      u.bind(port, '127.0.0.1', () => resolve(true));
    });
    u.close();
    if (ok) return port;
  }
}

describe('port forwards, in process', () => {
  it('shows a loopback client to the sandbox as the gateway address with its own port (TCP, IPv4 and IPv6)', async () => {
    const { gw, sandbox } = setup();
    whoServer(sandbox, 8080);
    const v4 = await gw.addForward({ hostPort: 0, guestPort: 8080 });
    const r4 = await ask(v4.hostPort);
    expect(r4.text).toBe(`10.0.2.2 ${r4.localPort}`);
    const v6 = await gw.addForward({ hostPort: 0, hostAddress: '::1', guestPort: 8080, guestAddress: 'fd00::100' });
    const r6 = await ask(v6.hostPort, '::1');
    expect(r6.text).toBe(`fd00::2 ${r6.localPort}`);
  });

  it('carries 64 MiB intact through a preserved forward', async () => {
    const { gw, sandbox } = setup();
    const server = sandbox.createServer((s) => {
      const h = createHash('sha256');
      let n = 0;
      s.on('data', (d: Buffer) => {
        h.update(d);
        n += d.length;
      });
      s.on('end', () => s.end(`${n} ${h.digest('hex')}`));
    });
    server.listen(9000);
    const f = await gw.addForward({ hostPort: 0, guestPort: 9000 });
    const block = randomBytes(1 << 20);
    const sent = createHash('sha256');
    const reply = await new Promise<string>((resolve, reject) => {
      const c = net.connect(f.hostPort, '127.0.0.1');
      let text = '';
      c.on('data', (d: Buffer) => (text += d));
      c.on('end', () => resolve(text));
      c.on('error', reject);
      let i = 0;
      const pump = () => {
        while (i < 64) {
          sent.update(block);
          i++;
          if (!c.write(block)) return void c.once('drain', pump);
        }
        c.end();
      };
      pump();
    });
    expect(reply).toBe(`${64 << 20} ${sent.digest('hex')}`);
  }, 60_000);

  it('UDP: the sandbox sees the client at the gateway address and its port, and its reply comes back through the forward', async () => {
    const { gw, sandbox } = setup();
    const u = sandbox.createSocket('udp4');
    u.on('message', (m: Buffer, r: { address: string; port: number }) => u.send(`${m} from ${r.address} ${r.port}`, r.port, r.address));
    u.bind(5353);
    await once(u, 'listening');
    const f = await gw.addForward({ protocol: 'udp', hostPort: 0, guestPort: 5353 });
    const client = dgram.createSocket('udp4');
    cleanup.push(() => client.close());
    client.bind(0, '127.0.0.1');
    await once(client, 'listening');
    const reply = once(client, 'message');
    client.send('hi', f.hostPort, '127.0.0.1');
    const [msg, rinfo] = (await reply) as [Buffer, dgram.RemoteInfo];
    expect(String(msg)).toBe(`hi from 10.0.2.2 ${client.address().port}`);
    expect(rinfo.port).toBe(f.hostPort); // from the forward's own socket, not a NAT one
    expect(gw.metrics().udpFlowsOpened).toBe(0);
  });

  it('UDP: a sandbox that keeps sending to a preserved client keeps its mapping past the idle time', async () => {
    const { gw, sandbox } = setup({ udpIdleTimeout: 300 });
    const u = sandbox.createSocket('udp4');
    u.on('message', (_m: Buffer, r: { address: string; port: number }) => {
      let n = 0;
      const t = setInterval(() => {
        u.send(`tick ${n}`, r.port, r.address);
        if (++n === 8) clearInterval(t);
      }, 100);
    });
    u.bind(5400);
    await once(u, 'listening');
    const f = await gw.addForward({ protocol: 'udp', hostPort: 0, guestPort: 5400 });
    const client = dgram.createSocket('udp4');
    cleanup.push(() => client.close());
    const got: { text: string; port: number }[] = [];
    client.on('message', (m, r) => got.push({ text: String(m), port: r.port }));
    client.send('start', f.hostPort, '127.0.0.1');
    await new Promise((r) => setTimeout(r, 1200));
    expect(got.map((g) => g.text)).toEqual([0, 1, 2, 3, 4, 5, 6, 7].map((n) => `tick ${n}`));
    expect(new Set(got.map((g) => g.port))).toEqual(new Set([f.hostPort]));
    expect(gw.metrics().udpFlowsOpened).toBe(0); // nothing went out by NAT
  });

  it('with preserveSource: false the sandbox sees the gateway with a port of its own (TCP) and UDP still answers', async () => {
    const { gw, sandbox } = setup({ preserveSource: false });
    whoServer(sandbox, 8080);
    const f = await gw.addForward({ hostPort: 0, guestPort: 8080 });
    const seen = new Set<number>();
    for (let i = 0; i < 3; i++) {
      const r = await ask(f.hostPort);
      const [address, port] = r.text.split(' ');
      expect(address).toBe('10.0.2.2');
      if (Number(port) !== r.localPort) seen.add(Number(port));
    }
    expect(seen.size).toBeGreaterThan(0);
  });

  it('forwards ranges, parses -p forms, and names the port of an overlap or a taken one', async () => {
    expect(parseForward('8000-8002:9000-9002')).toEqual({ hostAddress: undefined, hostPort: 8000, guestPort: 9000, protocol: 'tcp', count: 3 });
    expect(parseForward('[::1]:8080:80/udp')).toEqual({ hostAddress: '::1', hostPort: 8080, guestPort: 80, protocol: 'udp' });
    expect(parseForward('0.0.0.0:8080:80')).toMatchObject({ hostAddress: '0.0.0.0' });
    expect(() => parseForward('8000-8002:9000-9001')).toThrow(/same length/);
    expect(() => parseForward('[::1:8080:80')).toThrow(TypeError);
    const { gw, sandbox } = setup();
    const base = await freePort();
    // Three consecutive free ports: retried from another base when one is taken.
    let f;
    for (let tries = 0; ; tries++) {
      try {
        f = await gw.addForward({ hostPort: base + tries * 7, guestPort: 9000, count: 3 });
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE' || tries > 20) throw err;
      }
    }
    expect(f).toMatchObject({ count: 3, guestPort: 9000 });
    for (let i = 0; i < 3; i++) whoServer(sandbox, 9000 + i);
    for (let i = 0; i < 3; i++) expect((await ask(f.hostPort + i)).text).toMatch(/^10\.0\.2\.2 \d+$/);
    await expect(gw.addForward({ hostPort: f.hostPort + 2, guestPort: 80, count: 2 })).rejects.toMatchObject({
      code: 'EADDRINUSE',
      message: expect.stringContaining(`port ${f.hostPort + 2}`),
    });
    // A dual-stack forward overlaps an IPv4 one on the same port.
    await expect(gw.addForward({ hostPort: f.hostPort + 1, hostAddress: '::', guestPort: 80 })).rejects.toMatchObject({ code: 'EADDRINUSE' });
    // Taken by another program: the error names it; nothing of the range stays open.
    const taken = net.createServer().listen(0, '127.0.0.1');
    await once(taken, 'listening');
    cleanup.push(() => taken.close());
    const port = (taken.address() as net.AddressInfo).port;
    await expect(gw.addForward({ hostPort: port, guestPort: 80 })).rejects.toMatchObject({
      code: 'EADDRINUSE',
      message: expect.stringContaining(`127.0.0.1:${port}`),
    });
    expect(gw.forwards).toHaveLength(1);
    // Bad values are TypeErrors naming the option.
    await expect(gw.addForward({ hostPort: 65535, guestPort: 80, count: 2 })).rejects.toThrow(/"hostPort"/);
    await expect(gw.addForward({ hostPort: 0, guestPort: 80, count: 2 })).rejects.toThrow(TypeError);
    await expect(gw.addForward({ hostPort: 1, guestPort: 80, count: 0 })).rejects.toThrow(/"count"/);
    await expect(gw.addForward({ hostPort: 1, guestPort: 80, hostAddress: 'nope' })).rejects.toThrow(/"hostAddress"/);
  });

  it('listens on IPv4 and IPv6 at :: (a dual-stack listener); the v4 client shows as itself, ::1 as the v6 gateway', async () => {
    const { gw, sandbox } = setup();
    whoServer(sandbox, 8080);
    const f = await gw.addForward({ hostPort: 0, hostAddress: '::', guestPort: 8080 });
    expect(f.hostAddress).toBe('::');
    const r4 = await ask(f.hostPort, '127.0.0.1');
    expect(r4.text).toBe(`10.0.2.2 ${r4.localPort}`);
    // An IPv6 client of an IPv4 guest: another family, so from the gateway's address (a port of its own).
    const r6 = await ask(f.hostPort, '::1');
    expect(r6.text).toMatch(/^10\.0\.2\.2 \d+$/);
    const u = sandbox.createSocket('udp4');
    u.on('message', (m: Buffer, r: { address: string; port: number }) => u.send(`${m} ${r.address}`, r.port, r.address));
    u.bind(5300);
    await once(u, 'listening');
    const fu = await gw.addForward({ protocol: 'udp', hostPort: 0, hostAddress: '::', guestPort: 5300 });
    for (const [type, host] of [['udp4', '127.0.0.1'], ['udp6', '::1']] as const) {
      const c = dgram.createSocket(type);
      cleanup.push(() => c.close());
      const reply = once(c, 'message');
      c.send(type, fu.hostPort, host);
      expect(String(((await reply) as [Buffer])[0])).toBe(`${type} 10.0.2.2`);
    }
  });

  it('auto: forwards what an in-process sandbox listens on within a second, and stops within a second; skips taken ports and ports outside the ranges', async () => {
    const { gw, sandbox } = setup();
    const [inside, outside, busy] = [await freePort(), await freePort(), await freePort()];
    const lo = Math.min(inside, busy);
    const hi = Math.max(inside, busy);
    const ranges = `${lo}-${hi}`;
    const inRanges = outside < lo || outside > hi;
    const events: AutoForwardEvent[] = [];
    gw.on('auto-forward', (e: AutoForwardEvent) => events.push(e));
    const auto = gw.autoForward({ source: sandbox, ports: ranges });
    await auto.started;
    const blocker = net.createServer((s) => s.end('the host program')).listen(busy, '127.0.0.1');
    await once(blocker, 'listening');
    cleanup.push(() => blocker.close());

    const server = sandbox.createServer((s) => s.end('auto'));
    server.listen(inside);
    const t0 = performance.now();
    while ((await refused(inside)) && performance.now() - t0 < 3000) await new Promise((r) => setTimeout(r, 20));
    const upMs = performance.now() - t0;
    expect(upMs).toBeLessThan(1000);
    expect((await ask(inside)).text).toBe('auto');

    const busyServer = sandbox.createServer((s) => s.end('sandbox'));
    busyServer.listen(busy);
    cleanup.push(() => busyServer.close());
    if (inRanges) {
      const out = sandbox.createServer((s) => s.end('x'));
      out.listen(outside);
      cleanup.push(() => out.close());
    }
    await new Promise((r) => setTimeout(r, 700));
    expect(events).toContainEqual(expect.objectContaining({ action: 'skip', protocol: 'tcp', port: busy, reason: expect.stringContaining('in use') }));
    expect((await ask(busy)).text).toBe('the host program'); // never taken over
    if (inRanges) expect(await refused(outside)).toBe(true);

    server.close();
    const t1 = performance.now();
    while (!(await refused(inside)) && performance.now() - t1 < 3000) await new Promise((r) => setTimeout(r, 20));
    expect(performance.now() - t1).toBeLessThan(1000);
    expect(events).toContainEqual({ action: 'add', protocol: 'tcp', port: inside });
    expect(events).toContainEqual({ action: 'remove', protocol: 'tcp', port: inside });

    // UDP too.
    const u = sandbox.createSocket('udp4');
    u.on('message', (m: Buffer, r: { address: string; port: number }) => u.send(`auto ${m}`, r.port, r.address));
    u.bind(inside);
    await once(u, 'listening');
    await new Promise((r) => setTimeout(r, 600));
    const c = dgram.createSocket('udp4');
    cleanup.push(() => c.close());
    const reply = once(c, 'message');
    c.send('udp', inside, '127.0.0.1');
    expect(String(((await reply) as [Buffer])[0])).toBe('auto udp');
    auto.stop();
    expect(gw.forwards).toHaveLength(0);
  });

  it('parses port ranges and /proc/net listings', () => {
    expect(parsePortRanges('80,8000-8002/tcp,53/udp')).toEqual({ tcp: [[80, 80], [8000, 8002]], udp: [[80, 80], [53, 53]] });
    expect(parsePortRanges(undefined)).toEqual({ tcp: [[1, 65535]], udp: [[1, 65535]] });
    expect(() => parsePortRanges('0-5')).toThrow(TypeError);
    const tcp = [
      '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
      '   0: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0',
      '   1: 0100007F:0035 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2 1 0 100 0 0 10 0',
      '   2: 6402000A:1F90 0202000A:D431 01 00000000:00000000 00:00000000 00000000     0        0 3 1 0 100 0 0 10 0',
    ].join('\n');
    expect(parseProcNet(tcp, 'tcp')).toEqual([{ protocol: 'tcp', address: '0.0.0.0', port: 8080 }, { protocol: 'tcp', address: '127.0.0.1', port: 53 }]);
    const tcp6 = 'header\n   0: 00000000000000000000000001000000:0050 00000000000000000000000000000000:0000 0A 0 0 0 0 0\n';
    expect(parseProcNet(tcp6, 'tcp')).toEqual([{ protocol: 'tcp', address: '::1', port: 80 }]);
  });

  it('resolves host.containers.internal, host.docker.internal and host.lima.internal to the host with host loopback, NXDOMAIN without', async () => {
    const { sandbox } = setup({ hostLoopback: true });
    for (const name of ['host.containers.internal', 'host.docker.internal', 'host.lima.internal']) {
      expect(await sandbox.resolve(name)).toEqual(['10.0.2.2']);
    }
    expect(await sandbox.resolve('host.docker.internal', { family: 6 })).toEqual(['fd00::2']);
    const off = setup({ hostLoopback: false });
    for (const name of ['host.containers.internal', 'host.docker.internal', 'host.lima.internal']) {
      await expect(off.sandbox.resolve(name)).rejects.toMatchObject({ code: 'ENOTFOUND' });
    }
    expect(off.gw.dns.counters.nxdomain).toBe(3);
    expect(off.gw.dns.counters.upstreamLookups).toBe(0);
  });

  it('parses the command\'s forward flags: ranges, [IPv6], --no-preserve-source, --forward-auto with and without ranges', () => {
    const ns = ['--netns', '/proc/self/ns/net'];
    const cmd = parseGatewayArgs([...ns, '-p', '8000-8001:9000-9001', '-p', '[::1]:53:53/udp', '--no-preserve-source', '--forward-auto'])!;
    expect(cmd.forwards).toEqual([
      { hostAddress: undefined, hostPort: 8000, guestPort: 9000, protocol: 'tcp', count: 2 },
      { hostAddress: '::1', hostPort: 53, guestPort: 53, protocol: 'udp' },
    ]);
    expect(cmd).toMatchObject({ preserveSource: false, autoForward: '' });
    expect(parseGatewayArgs(['--forward-auto', '80,53/udp', ...ns])).toMatchObject({ autoForward: '80,53/udp', preserveSource: true });
    expect(parseGatewayArgs([...ns, '--forward-auto=1-100'])).toMatchObject({ autoForward: '1-100' });
    expect(parseGatewayArgs(ns)!.autoForward).toBeUndefined();
    expect(() => parseGatewayArgs([...ns, '--forward-auto=99999'])).toThrow(/--forward-auto 99999: expected port ranges/);
    expect(() => parseGatewayArgs([...ns, '-p', '8000-8002:9000'])).toThrow(/-p 8000-8002:9000: .*same length/);
    expect(() => parseGatewayArgs([...ns, '-p', '0-3:1-4'])).toThrow(/-p 0-3:1-4: /);
    // The slirp4netns-compatible command preserves by default; its own flag turns it off.
    const slirp = (args: string[]) => parseSlirp4netnsArgs([...args, '--netns-type=path', '/proc/self/ns/net']) as { gateway: { preserveSource?: boolean } };
    expect(slirp([]).gateway.preserveSource).toBe(true);
    expect(slirp(['--no-preserve-source']).gateway.preserveSource).toBe(false);
  });

  it("rejects forwards: 'auto' without a source, by name", () => {
    const [link] = createCable({ mtu: 1500 });
    expect(() => createGateway({ link, forwards: 'auto' })).toThrow(/"autoForward"/);
  });
});

// ---------------------------------------------------------------- root: clients with addresses of their own

const skipRoot = deviceTestsUnavailable();
if (skipRoot) console.warn(`forwards.test.ts: namespace tests skipped: ${skipRoot}`);

const GATEWAY_SCRIPT = new URL('./support/forward-gateway.mjs', import.meta.url).pathname;
const DIST = new URL('../dist/index.js', import.meta.url).href;

/**
 * Connects to HOST PORT from the client namespace, sends MIB MiB of random
 * data (0: nothing), half-closes, prints {reply, localAddress, localPort, sha256}.
 */
const TCP_CLIENT = `
const crypto = require('crypto');
const [host, port, mib] = process.argv.slice(1);
const c = require('net').connect(Number(port), host);
const h = crypto.createHash('sha256');
let reply = '';
c.on('data', (d) => (reply += d));
c.on('end', () => { console.log(JSON.stringify({ reply, localAddress: c.localAddress, localPort: c.localPort, sha256: h.digest('hex') })); process.exit(0); });
c.on('error', (e) => { console.log(JSON.stringify({ error: e.code })); process.exit(0); });
c.on('connect', () => {
  const block = crypto.randomBytes(1 << 20);
  let i = 0;
  const pump = () => {
    while (i < Number(mib)) { h.update(block); i++; if (!c.write(block)) return c.once('drain', pump); }
    c.end();
  };
  pump();
});
setTimeout(() => { console.log(JSON.stringify({ error: 'TIMEOUT' })); process.exit(0); }, 60000);
`;

/** Sends one datagram from a bound socket; prints {reply, localPort}. */
const UDP_CLIENT = `
const [host, port] = process.argv.slice(1);
const s = require('dgram').createSocket(host.includes(':') ? 'udp6' : 'udp4');
s.on('message', (m) => { console.log(JSON.stringify({ reply: String(m), localPort: s.address().port })); process.exit(0); });
s.bind(0, () => s.send('hi', Number(port), host));
setTimeout(() => { console.log(JSON.stringify({ reply: null })); process.exit(0); }, 5000);
`;

/** The kernel's servers in the TAP namespace: "REMOTEADDR REMOTEPORT" on TCP 8080 and UDP 5353 (dual-stack), byte count and sha256 on 9000. */
const SANDBOX_SERVERS = `
const net = require('net');
const crypto = require('crypto');
const plain = (a) => a.replace(/^::ffff:/, '');
net.createServer((s) => s.end(plain(s.remoteAddress) + ' ' + s.remotePort)).listen(8080, '::');
net.createServer((s) => {
  const h = crypto.createHash('sha256');
  let n = 0;
  s.on('data', (d) => { h.update(d); n += d.length; });
  s.on('end', () => s.end(n + ' ' + h.digest('hex') + ' ' + plain(s.remoteAddress) + ' ' + s.remotePort));
}).listen(9000, '::');
const u = require('dgram').createSocket({ type: 'udp6', ipv6Only: false });
u.on('message', (m, r) => u.send(plain(r.address) + ' ' + r.port, r.port, r.address));
u.bind(5353, '::', () => console.log('listening'));
`;

/**
 * Run in the host namespace: starts a server (TCP or UDP on 0.0.0.0:PORT)
 * in namespace NS, then measures how long after it listens 127.0.0.1:PORT
 * answers here, and how long after it is killed it stops answering.
 * Prints {up, down} in ms (null: not within 3 s).
 */
const AUTO_PROBE = `
const { spawn } = require('child_process');
const net = require('net');
const dgram = require('dgram');
const [ns, port, proto] = process.argv.slice(1);
const SERVER = proto === 'udp'
  ? "const u = require('dgram').createSocket('udp4'); u.on('message', (m, r) => u.send('up', r.port, r.address)); u.bind(Number(process.argv[1]), '0.0.0.0', () => console.log('listening'));"
  : "require('net').createServer((s) => s.end('up')).listen(Number(process.argv[1]), '0.0.0.0', () => console.log('listening'));";
const answers = () => new Promise((resolve) => {
  if (proto === 'udp') {
    const s = dgram.createSocket('udp4');
    const done = (v) => { clearTimeout(t); s.close(); resolve(v); };
    const t = setTimeout(() => done(null), 100);
    s.on('message', () => done(true));
    s.on('error', () => done(false));
    s.connect(Number(port), '127.0.0.1', () => s.send('x'));
  } else {
    const c = net.connect(Number(port), '127.0.0.1');
    c.on('data', () => { c.destroy(); resolve(true); });
    c.on('error', () => resolve(false));
  }
});
const until = async (want) => {
  const t0 = performance.now();
  while (performance.now() - t0 < 3000) {
    const v = await answers();
    if (want ? v === true : v === false) return Math.round(performance.now() - t0);
    await new Promise((r) => setTimeout(r, 20));
  }
  return null;
};
const child = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', SERVER, port], { stdio: ['ignore', 'pipe', 'inherit'] });
child.stdout.once('data', async () => {
  const up = await until(true);
  child.kill('SIGKILL');
  await new Promise((r) => child.once('exit', r));
  const down = await until(false);
  console.log(JSON.stringify({ up, down }));
  process.exit(0);
});
`;

interface TcpResult { reply?: string; localAddress?: string; localPort?: number; sha256?: string; error?: string }
interface UdpResult { reply: string | null; localPort?: number }

describe.skipIf(skipRoot)('port forwards from a client in its own namespace (root)', () => {
  let topo: GatewayTopology;
  const stops: (() => Promise<unknown> | void)[] = [];
  beforeAll(async () => {
    topo = await GatewayTopology.create();
  }, 60_000);
  afterAll(async () => topo?.delete());
  afterEach(async () => {
    for (const fn of stops.splice(0).reverse()) await fn();
  });

  const tcp = (host: string, port: number, mib = 0) => topo.nodeJson<TcpResult>(topo.internet, TCP_CLIENT, [host, String(port), String(mib)]);
  const udp = (host: string, port: number) => topo.nodeJson<UdpResult>(topo.internet, UDP_CLIENT, [host, String(port)]);

  async function inProcessGateway(preserve: boolean): Promise<void> {
    const real = topo.host.spawn(process.execPath, [GATEWAY_SCRIPT, DIST, HOST_ADDRESS, HOST_ADDRESS6, preserve ? '1' : '0']);
    let out = '';
    let err = '';
    real.stdout!.on('data', (d: Buffer) => (out += d));
    real.stderr!.on('data', (d: Buffer) => (err += d));
    stops.push(() => void real.kill('SIGKILL'));
    const t0 = Date.now();
    while (!out.includes('\n') && real.exitCode === null && Date.now() - t0 < 20_000) await new Promise((r) => setTimeout(r, 50));
    expect(out, err).toContain('"ready":true');
  }

  async function commandGateway(args: string[]): Promise<RunningGateway> {
    const gw = await topo.startGateway(args);
    stops.push(() => gw.stop());
    return gw;
  }

  it('in-process sandbox: TCP and UDP, IPv4 and IPv6, arrive from the client\'s veth address and port; 64 MiB intact', async () => {
    await inProcessGateway(true);
    for (const [host, client] of [[HOST_ADDRESS, INTERNET_ADDRESS], [HOST_ADDRESS6, INTERNET_ADDRESS6]]) {
      const t = await tcp(host, 18080);
      expect(t.reply).toBe(`${client} ${t.localPort}`);
      const u = await udp(host, 15353);
      expect(u.reply).toBe(`${client} ${u.localPort}`);
    }
    const big = await tcp(HOST_ADDRESS, 19000, 64);
    expect(big.reply).toBe(`${64 << 20} ${big.sha256} ${INTERNET_ADDRESS} ${big.localPort}`);
  }, 120_000);

  it('in-process sandbox with preserveSource: false: the gateway\'s address', async () => {
    await inProcessGateway(false);
    expect((await tcp(HOST_ADDRESS, 18080)).reply).toMatch(/^10\.0\.2\.2 \d+$/);
    expect((await tcp(HOST_ADDRESS6, 18080)).reply).toMatch(/^fd00::2 \d+$/);
    expect((await udp(HOST_ADDRESS, 15353)).reply).toMatch(/^10\.0\.2\.2 \d+$/);
  }, 60_000);

  it('TAP namespace (the kernel\'s servers): -p and add_hostfwd forwards show the client\'s address, v4 and v6, TCP and UDP; 64 MiB intact; --no-preserve-source shows 10.0.2.2', async () => {
    const servers = await nodeServer(topo.sandbox, SANDBOX_SERVERS);
    stops.push(() => void servers.kill('SIGKILL'));
    const dir = mkdtempSync(join(tmpdir(), 'tt-fwd-'));
    stops.push(() => rmSync(dir, { recursive: true, force: true }));
    const api = join(dir, 'api.sock');
    const gw = await commandGateway(['--enable-ipv6', '--api-socket', api,
      '-p', `${HOST_ADDRESS}:18080:8080`, '-p', `${HOST_ADDRESS}:19000:9000`, '-p', `${HOST_ADDRESS}:15353:5353/udp`]);
    expect(gw.readyLine).toContain(`forward tcp ${HOST_ADDRESS}:18080->8080`);
    const guest6 = / ipv6 (fd00::[0-9a-f:]+)\/64 /.exec(gw.readyLine)![1]!;
    const request = (body: object) => new Promise<unknown>((resolve, reject) => {
      const c = net.connect(api);
      let text = '';
      c.on('data', (d: Buffer) => (text += d));
      c.on('end', () => resolve(JSON.parse(text)));
      c.on('error', reject);
      c.end(JSON.stringify(body));
    });
    for (const [proto, port, guest] of [['tcp', 18080, 8080], ['udp', 15353, 5353]] as const) {
      expect(await request({ execute: 'add_hostfwd', arguments: { proto, host_addr: HOST_ADDRESS6, host_port: port, guest_addr: guest6, guest_port: guest } }))
        .toMatchObject({ return: { id: expect.any(Number) } });
    }
    for (const [host, client] of [[HOST_ADDRESS, INTERNET_ADDRESS], [HOST_ADDRESS6, INTERNET_ADDRESS6]]) {
      const t = await tcp(host, 18080);
      expect(t.reply).toBe(`${client} ${t.localPort}`);
      const u = await udp(host, 15353);
      expect(u.reply).toBe(`${client} ${u.localPort}`);
    }
    const big = await tcp(HOST_ADDRESS, 19000, 64);
    expect(big.reply).toBe(`${64 << 20} ${big.sha256} ${INTERNET_ADDRESS} ${big.localPort}`);
    // Without host loopback the host names are NXDOMAIN (getent: exit 2).
    await expect(topo.sandbox.exec('getent', ['hosts', 'host.containers.internal'])).rejects.toMatchObject({ code: 2 });
    expect(await gw.stop()).toEqual({ code: 0, signal: null });

    await commandGateway(['--no-preserve-source', '-p', `${HOST_ADDRESS}:18080:8080`, '-p', `${HOST_ADDRESS}:15353:5353/udp`]);
    expect((await tcp(HOST_ADDRESS, 18080)).reply).toMatch(/^10\.0\.2\.2 \d+$/);
    expect((await udp(HOST_ADDRESS, 15353)).reply).toMatch(/^10\.0\.2\.2 \d+$/);
  }, 120_000);

  it('ranges and a dual-stack listener through the command; a taken port and an overlapping range fail naming the port', async () => {
    const servers = await nodeServer(topo.sandbox, SANDBOX_SERVERS);
    stops.push(() => void servers.kill('SIGKILL'));
    const gw = await commandGateway(['--enable-ipv6', '-p', '[::]:28080-28081:8080-8081', '-p', '[::]:25353:5353/udp']);
    expect(gw.readyLine).toContain('forward tcp [::]:28080-28081->8080-8081');
    for (const [host, client] of [[HOST_ADDRESS, INTERNET_ADDRESS], [HOST_ADDRESS6, INTERNET_ADDRESS6]]) {
      // An IPv6 client of the IPv4 guest address comes from the gateway: another family.
      const t = await tcp(host, 28080);
      expect(t.reply).toMatch(host === HOST_ADDRESS ? new RegExp(`^${client} ${t.localPort}$`) : /^10\.0\.2\.2 \d+$/);
      const u = await udp(host, 25353);
      expect(u.reply).toMatch(host === HOST_ADDRESS ? new RegExp(`^${client} ${u.localPort}$`) : /^10\.0\.2\.2 \d+$/);
    }
    // 8081 has no server in the namespace: the forward is there, the sandbox refuses.
    expect((await tcp(HOST_ADDRESS, 28081)).error ?? 'connected').toMatch(/ECONNRESET|connected/);
    await gw.stop();

    const holder = await nodeServer(topo.host, "require('net').createServer().listen(28085, '127.0.0.1', () => console.log('listening'))");
    stops.push(() => void holder.kill('SIGKILL'));
    for (const [args, message] of [
      [['-p', '28084-28086:8080-8082'], /28085/],
      [['-p', '28090-28095:8080-8085', '-p', '28093:80'], /port 28093 .*overlaps/],
    ] as const) {
      const child = topo.host.spawn(process.execPath, [new URL('../bin/tcpip-ts.js', import.meta.url).pathname, 'gateway', '--netns', topo.sandbox.path, ...args]);
      let err = '';
      child.stderr!.on('data', (d: Buffer) => (err += d));
      const [code] = (await once(child, 'exit')) as [number];
      expect(code).toBe(1);
      expect(err.trim().split('\n')).toHaveLength(1);
      expect(err).toMatch(message);
    }
  }, 120_000);

  it('--forward-auto: a server started in the namespace answers on the host within a second and stops within a second; outside the ranges nothing; a taken host port is skipped and left alone', async () => {
    const holder = await nodeServer(topo.host, "require('net').createServer((s) => s.end('host program')).listen(20060, '127.0.0.1', () => console.log('listening'))");
    stops.push(() => void holder.kill('SIGKILL'));
    const gw = await commandGateway(['--host-loopback', '--forward-auto=20000-20100']);
    expect(gw.readyLine).toContain('forward-auto 20000-20100');
    for (const proto of ['tcp', 'udp']) {
      const r = await topo.nodeJson<{ up: number | null; down: number | null }>(topo.host, AUTO_PROBE, [topo.sandbox.name, '20050', proto]);
      expect(r.up, proto).not.toBeNull();
      expect(r.up!, proto).toBeLessThan(1000);
      expect(r.down, proto).not.toBeNull();
      expect(r.down!, proto).toBeLessThan(1000);
    }
    const outside = await nodeServer(topo.sandbox, "require('net').createServer((s) => s.end('x')).listen(20200, () => console.log('listening'))");
    stops.push(() => void outside.kill('SIGKILL'));
    const taken = await nodeServer(topo.sandbox, "require('net').createServer((s) => s.end('sandbox')).listen(20060, () => console.log('listening'))");
    stops.push(() => void taken.kill('SIGKILL'));
    await new Promise((r) => setTimeout(r, 1200));
    expect(gw.stderr()).toMatch(/forward-auto: skipped tcp 20060: .*in use/);
    const probe = `const c = require('net').connect(Number(process.argv[1]), '127.0.0.1'); let t = ''; c.on('data', (d) => (t += d)); c.on('end', () => console.log(JSON.stringify(t))); c.on('error', (e) => console.log(JSON.stringify(e.code)));`;
    expect(await topo.nodeJson(topo.host, probe, ['20060'])).toBe('host program');
    expect(await topo.nodeJson(topo.host, probe, ['20200'])).toBe('ECONNREFUSED');
    // With host loopback the host names answer the gateway address.
    expect(await topo.sandbox.exec('getent', ['hosts', 'host.docker.internal'])).toMatch(/^10\.0\.2\.2\s+host\.docker\.internal/);
    // The process that reads the namespace's /proc/net ends with the gateway, even a killed one.
    const holders = async () => {
      const pids = (await topo.sandbox.exec('ip', ['netns', 'pids', topo.sandbox.name]).catch(() => '')).split('\n').filter(Boolean);
      const lines = await Promise.all(pids.map((pid) => readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')));
      return lines.filter((l) => l.split('\0').join(' ').trim() === 'sh -c read _').length;
    };
    expect(await holders()).toBe(1);
    gw.child.kill('SIGKILL');
    await once(gw.child, 'exit');
    rmSync(`/etc/netns/${topo.sandbox.name}`, { recursive: true, force: true }); // the killed gateway's resolv.conf
    const t0 = Date.now();
    while ((await holders()) > 0 && Date.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 50));
    expect(await holders()).toBe(0);
  }, 120_000);
});
