import { createHash, randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { queryOverTcp } from './support/dns-tcp.js';
import { echoRoundTrip } from './support/transfer.js';
import { createCable, createStack, type Stack } from '../src/index.js';
import { createGateway, parseForward, type FlowInfo, type Gateway } from '../src/gateway/gateway.js';

// In-process: the sandbox is a stack on a cable to the gateway, and every
// host socket the gateway opens goes to this machine's loopback (through
// hostLoopback). Gateways reaching other hosts are tested in namespaces.
const cleanup: (() => void)[] = [];
afterEach(() => {
  for (const fn of cleanup.splice(0).reverse()) fn();
});

function setup(options: { hostLoopback?: boolean } = {}): { gw: Gateway; sandbox: Stack } {
  const [gwLink, sandboxLink] = createCable({ mtu: 1500 });
  const gw = createGateway({
    link: gwLink,
    hostLoopback: options.hostLoopback ?? true,
    hosts: { 'host.test': ['10.0.2.2'], 'six.test': ['fd00::2'] },
    // Never asked in these tests (only `hosts` names are looked up); fails loudly if it were.
    resolver: {
      resolve4: () => Promise.reject(Object.assign(new Error('no upstream in tests'), { code: 'ESERVFAIL' })),
      resolve6: () => Promise.reject(Object.assign(new Error('no upstream in tests'), { code: 'ESERVFAIL' })),
    },
  });
  const sandbox = createStack({ dnsServers: ['10.0.2.3'] });
  sandbox.addInterface({ link: sandboxLink, ipv4: '10.0.2.100/24', gateway: '10.0.2.2' });
  cleanup.push(() => {
    sandbox.close();
    gw.close();
  });
  return { gw, sandbox };
}

async function hostServer(handler: (s: net.Socket) => void, options: net.ServerOpts = {}): Promise<number> {
  const server = net.createServer(options, handler);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  cleanup.push(() => server.close());
  return (server.address() as net.AddressInfo).port;
}

describe('gateway (slirp mode) over host sockets', () => {
  it('carries HTTP from the sandbox to a server on the host loopback', async () => {
    const { gw, sandbox } = setup();
    const app = http.createServer((req, res) => res.end(`host says hi to ${req.socket.remoteAddress}`));
    app.listen(0, '127.0.0.1');
    await once(app, 'listening');
    cleanup.push(() => app.close());
    const port = (app.address() as net.AddressInfo).port;
    const opened: FlowInfo[] = [];
    gw.on('flow-open', (f: FlowInfo) => opened.push(f));
    const body = await new Promise<string>((resolve, reject) => {
      http.get({ host: '10.0.2.2', port, agent: sandbox.httpAgent() }, (res) => {
        let t = '';
        res.on('data', (d: Buffer) => (t += d));
        res.on('end', () => resolve(t));
      }).on('error', reject);
    });
    expect(body).toBe('host says hi to 127.0.0.1');
    expect(opened).toContainEqual(expect.objectContaining({ protocol: 'tcp', to: `10.0.2.2:${port}` }));
    expect(gw.metrics().tcpOpened).toBe(1);
  });

  it('carries connections to one host address:port one after another while earlier ones stay open', async () => {
    // Each later SYN needs a listener on 10.0.2.2:port while the accepted
    // connections before it hold that address:port in lwIP.
    const { gw, sandbox } = setup();
    const port = await hostServer((s) => s.pipe(s));
    const open: ReturnType<Stack['connect']>[] = [];
    for (let i = 0; i < 4; i++) {
      const sock = sandbox.connect({ port, host: '10.0.2.2' });
      open.push(sock);
      await once(sock, 'connect');
      sock.write(`hello ${i}`);
      const [echo] = (await once(sock, 'data')) as [Buffer];
      expect(echo.toString()).toBe(`hello ${i}`);
    }
    expect(gw.metrics()).toMatchObject({ tcpOpened: 4, tcpOpen: 4 });
    for (const sock of open) sock.destroy();
  });

  it('moves 64 MiB each way with sha256 equality and passes half-close', async () => {
    const { sandbox } = setup();
    const port = await hostServer((s) => s.pipe(s), { allowHalfOpen: true });
    const sock = sandbox.connect({ port, host: '10.0.2.2', allowHalfOpen: true });
    await once(sock, 'connect');
    // Ends once the host saw our FIN, finished echoing, and sent its own.
    const r = await echoRoundTrip(sock, 64 * 1024 * 1024);
    expect(r.received).toBe(r.sent);
    expect(r.receivedSha256).toBe(r.sentSha256);
  }, 60_000);

  it('answers a refused host port with RST: the sandbox gets ECONNREFUSED at once', async () => {
    const { gw, sandbox } = setup();
    const closed = net.createServer().listen(0, '127.0.0.1');
    await once(closed, 'listening');
    const port = (closed.address() as net.AddressInfo).port;
    closed.close();
    const started = Date.now();
    const sock = sandbox.connect(port, '10.0.2.2');
    const [err] = await once(sock, 'error');
    expect((err as NodeJS.ErrnoException).code).toBe('ECONNREFUSED');
    expect(Date.now() - started).toBeLessThan(1000);
    expect(gw.metrics().tcpRefused).toBe(1);
  });

  it('refuses the host loopback when hostLoopback is off', async () => {
    const { gw, sandbox } = setup({ hostLoopback: false });
    const port = await hostServer((s) => s.end('should not be reached'));
    const sock = sandbox.connect(port, '10.0.2.2');
    const [err] = await once(sock, 'error');
    expect((err as NodeJS.ErrnoException).code).toBe('ECONNREFUSED');
    expect(gw.metrics().denied).toBe(1);
  });

  it('relays UDP both ways; replies come from the address the sandbox used', async () => {
    const { gw, sandbox } = setup();
    const echo = dgram.createSocket('udp4');
    echo.on('message', (msg, rinfo) => echo.send(Buffer.concat([Buffer.from('echo:'), msg]), rinfo.port, rinfo.address));
    echo.bind(0, '127.0.0.1');
    await once(echo, 'listening');
    cleanup.push(() => echo.close());
    const port = echo.address().port;
    const sock = sandbox.createSocket('udp4');
    sock.bind(40000);
    await once(sock, 'listening');
    for (const text of ['one', 'two']) {
      const reply = once(sock, 'message');
      sock.send(text, port, '10.0.2.2');
      const [msg, rinfo] = (await reply) as [Buffer, { address: string; port: number }];
      expect(msg.toString()).toBe(`echo:${text}`);
      expect(rinfo).toMatchObject({ address: '10.0.2.2', port });
    }
    const m = gw.metrics();
    expect(m.udpFlowsOpened).toBe(1); // one mapping for the sandbox's port
    expect(m.udpDatagramsOut).toBe(2);
    expect(m.udpDatagramsIn).toBe(2);
  });

  it('a slow host reader makes the sandbox writer back off without loss', async () => {
    const { sandbox } = setup();
    let hostSide!: net.Socket;
    const port = await hostServer((s) => {
      hostSide = s;
      s.pause(); // the host peer does not read yet
    });
    const sock = sandbox.connect(port, '10.0.2.2');
    await once(sock, 'connect');
    await new Promise((r) => setTimeout(r, 50));
    const block = randomBytes(256 * 1024);
    const sent = createHash('sha256');
    let total = 0;
    let stalled = false;
    for (let i = 0; i < 400; i++) {
      sent.update(block);
      total += block.length;
      if (!sock.write(block)) {
        const drained = await Promise.race([once(sock, 'drain').then(() => true), new Promise((r) => setTimeout(() => r(false), 300))]);
        if (!drained) {
          stalled = true;
          break;
        }
      }
    }
    expect(stalled).toBe(true); // the host is not reading: the sandbox is held back
    const got = createHash('sha256');
    let n = 0;
    hostSide.on('data', (d: Buffer) => {
      got.update(d);
      n += d.length;
    });
    const ended = once(hostSide, 'end');
    sock.end();
    hostSide.resume();
    await ended;
    expect(n).toBe(total);
    expect(got.digest('hex')).toBe(sent.digest('hex'));
  }, 30_000);

  it('forwards host ports into the sandbox (TCP and UDP), added and removed at run time', async () => {
    const { gw, sandbox } = setup();
    sandbox.createServer((s) => s.end('from the sandbox')).listen(8080);
    const udp = sandbox.createSocket('udp4');
    udp.on('message', (msg: Buffer, rinfo: { address: string; port: number }) => udp.send(Buffer.concat([Buffer.from('sandbox:'), msg]), rinfo.port, rinfo.address));
    udp.bind(5353);
    await once(udp, 'listening');

    const tcp = await gw.addForward({ hostPort: 0, guestPort: 8080 });
    const viaUdp = await gw.addForward(parseForward(`0:5353/udp`));
    expect(gw.forwards).toHaveLength(2);
    const text = await new Promise<string>((resolve, reject) => {
      const c = net.connect(tcp.hostPort, '127.0.0.1');
      let t = '';
      c.on('data', (d: Buffer) => (t += d));
      c.on('end', () => resolve(t));
      c.on('error', reject);
    });
    expect(text).toBe('from the sandbox');

    const client = dgram.createSocket('udp4');
    cleanup.push(() => client.close());
    const reply = once(client, 'message');
    client.send('hello', viaUdp.hostPort, '127.0.0.1');
    expect(((await reply) as [Buffer])[0].toString()).toBe('sandbox:hello');

    expect(gw.removeForward(tcp)).toBe(true);
    const refused = net.connect(tcp.hostPort, '127.0.0.1');
    const [err] = await once(refused, 'error');
    expect((err as NodeJS.ErrnoException).code).toBe('ECONNREFUSED');
    expect(gw.removeForward(tcp)).toBe(false);
  });

  it('parses -p HOSTPORT:GUESTPORT[/udp] and rejects bad forwards by name', () => {
    expect(parseForward('8080:80')).toEqual({ hostAddress: undefined, hostPort: 8080, guestPort: 80, protocol: 'tcp' });
    expect(parseForward('127.0.0.1:5353:53/udp')).toEqual({ hostAddress: '127.0.0.1', hostPort: 5353, guestPort: 53, protocol: 'udp' });
    expect(() => parseForward('80')).toThrow(/"forward"/);
    const { gw } = setup();
    return expect(gw.addForward({ hostPort: 1, guestPort: 0 })).rejects.toThrow(/"guestPort"/);
  });

  it('opens the forwards option\'s ports before ready, and rejects bad ones by name at once', async () => {
    const [gwLink, sandboxLink] = createCable({ mtu: 1500 });
    const gw = createGateway({ link: gwLink, forwards: [{ hostPort: 0, guestPort: 8080 }] });
    const sandbox = createStack();
    sandbox.addInterface({ link: sandboxLink, ipv4: '10.0.2.100/24', gateway: '10.0.2.2' });
    cleanup.push(() => {
      sandbox.close();
      gw.close();
    });
    sandbox.createServer((s) => s.end('forwarded at start')).listen(8080);
    await gw.ready;
    expect(gw.forwards).toEqual([expect.objectContaining({ protocol: 'tcp', hostAddress: '127.0.0.1', guestPort: 8080 })]);
    const text = await new Promise<string>((resolve, reject) => {
      const c = net.connect(gw.forwards[0]!.hostPort, '127.0.0.1');
      let t = '';
      c.on('data', (d: Buffer) => (t += d));
      c.on('end', () => resolve(t));
      c.on('error', reject);
    });
    expect(text).toBe('forwarded at start');
    const [bad] = createCable({ mtu: 1500 });
    expect(() => createGateway({ link: bad, forwards: [{ hostPort: 70000, guestPort: 80 }] })).toThrow(TypeError);
    expect(() => createGateway({ link: bad, forwards: [{ hostPort: 70000, guestPort: 80 }] })).toThrow(/"hostPort"/);
    expect(() => createGateway({ link: bad, forwards: 'x' as never })).toThrow(/"forwards"/);
  });

  it('answers DNS at the dns address, over UDP and TCP', async () => {
    const { gw, sandbox } = setup();
    await gw.ready;
    expect(await sandbox.resolve('host.test')).toEqual(['10.0.2.2']);
    expect(await sandbox.resolve('six.test', { family: 6 })).toEqual(['fd00::2']);
    // TCP: a query with the 2-byte length prefix (RFC 1035 4.2.2).
    expect((await queryOverTcp(sandbox, '10.0.2.3', 'host.test', 1))?.answers.map((a) => a.value)).toEqual(['10.0.2.2']);
    expect(gw.dns.counters.tcp).toBeGreaterThan(0);
  });

  it('leases the guest address by DHCP, with the gateway as router and DNS', async () => {
    const [gwLink, sandboxLink] = createCable({ mtu: 1500 });
    const gw = createGateway({ link: gwLink, hostLoopback: true, hosts: { 'host.test': ['10.0.2.2'] } });
    const sandbox = createStack();
    cleanup.push(() => {
      sandbox.close();
      gw.close();
    });
    await gw.ready;
    const iface = sandbox.addInterface({ link: sandboxLink, dhcp: true });
    await new Promise<void>((resolve) => iface.on('address', () => iface.ipv4 && resolve()));
    expect(iface.ipv4).toMatchObject({ address: '10.0.2.100', prefixLength: 24, gateway: '10.0.2.2' });
    expect(sandbox.dnsServers).toEqual(['10.0.2.3']);
    expect(await sandbox.resolve('host.test')).toEqual(['10.0.2.2']);
  });
});
