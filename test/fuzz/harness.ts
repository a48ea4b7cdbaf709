/**
 * The two victims the fuzzer aims at, each with a real peer whose link it
 * taps and through which it injects:
 * - `stack`: a stack with TCP and UDP echo services, reached by a peer
 *   stack on an Ethernet cable; a second interface to a checker stack
 *   (never fuzzed) tells whether it still answers.
 * - `gateway`: createGateway's stack, DHCP and DNS, reached by a guest
 *   stack that takes its address by DHCP and SLAAC; its host sockets may
 *   only reach this process's own echo servers on 127.0.0.1 (the policy
 *   denies everything else, and host loopback is off), so no mutant makes
 *   the gateway touch anything else on the host.
 * Both first run a real exchange with the project's capture() wrapper on
 * the peer's link; the peer's frames in that capture are the seeds.
 */
import dgram from 'node:dgram';
import { once } from 'node:events';
import net from 'node:net';
import { createCable, createStack, type Stack, type TcpSocket } from '../../src/index.js';
import { capture } from '../../src/core/capture.js';
import type { FrameReceiver, Link } from '../../src/core/link.js';
import { createGateway, type Gateway } from '../../src/gateway/gateway.js';
import { parseIp, parseMac } from '../../src/wire/address.js';
import { readPcap } from '../../src/wire/pcap.js';
import { buildRouterAdvertisement } from '../../src/wire/ndp.js';
import { buildEthernetFrame, EtherType } from '../../src/wire/ethernet.js';
import { buildIPv6Packet } from '../../src/wire/ipv6.js';
import { IpProtocol } from '../../src/wire/ipv4.js';
import { buildDhcpMessage, BootpOp, DhcpMessageType, parseDhcpMessage } from '../../src/wire/dhcp.js';
import { buildUdpDatagram } from '../../src/wire/udp.js';
import { buildIPv4Packet } from '../../src/wire/ipv4.js';
import { dissect, getU32, type Protocol } from './dissect.js';
import { sortSeeds, type LiveTcp, type Seed } from './mutate.js';

export type HarnessName = 'stack' | 'gateway';

export interface Harness {
  readonly name: HarnessName;
  readonly victimMac: Uint8Array;
  readonly victimIpv4: Uint8Array;
  readonly victimIpv6: Uint8Array;
  /** Captured seeds by protocol. */
  readonly seeds: Map<Protocol, Seed[]>;
  /** Delivers a frame to the victim as if the peer sent it. */
  inject(frame: Uint8Array): void;
  live(family: 4 | 6): LiveTcp | undefined;
  /** Lets queued frames run, keeps the live connections open and moving. */
  pump(): Promise<void>;
  /** Throws an Error saying what no longer answers. */
  health(): Promise<void>;
  /** 'error' events and traps seen on any stack, and failures of the host side. */
  readonly errors: Error[];
  /** Every drop counter of the victim stack (lwIP's and the interface's), and the gateway's ignored/malformed counts. */
  drops(): Record<string, number>;
  close(): void;
}

const turn = () => new Promise<void>((r) => setImmediate(r));

function withTimeout<T>(what: string, p: Promise<T>, ms = 3000): Promise<T> {
  let timer: ReturnType<typeof setTimeout>;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
    }),
  ]);
}

/** Every drop counter of a stack, flattened ('ip.chkerr', 'eth0.rx.badLength', ...). */
export function stackDrops(s: Stack): Record<string, number> {
  const st = s.stats();
  const out: Record<string, number> = {};
  for (const [proto, c] of Object.entries(st.protocols)) {
    for (const [k, v] of Object.entries(c)) if (k !== 'xmit' && k !== 'recv' && k !== 'fw' && typeof v === 'number') out[`${proto}.${k}`] = v;
  }
  for (const [name, i] of Object.entries(st.interfaces)) {
    for (const [k, v] of Object.entries(i.rxDropped)) out[`${name}.rx.${k}`] = v as number;
  }
  return out;
}

/** A TCP echo over a fresh connection: connect, send, read it back, close. */
async function tcpEcho(from: Stack, host: string, port: number, what: string): Promise<void> {
  const sock = from.connect({ port, host });
  const text = `echo ${Math.random()}`;
  try {
    await withTimeout(`${what}: TCP connect to ${host}:${port}`, once(sock, 'connect'));
    sock.write(text);
    let got = '';
    await withTimeout(`${what}: TCP echo from ${host}:${port}`, new Promise<void>((resolve, reject) => {
      sock.on('data', (d: Buffer) => {
        got += d;
        if (got.length >= text.length) resolve();
      });
      sock.once('error', reject);
    }));
    if (got !== text) throw new Error(`${what}: TCP echo from ${host}:${port} returned ${JSON.stringify(got)}`);
  } finally {
    sock.destroy();
  }
}

async function udpEcho(from: Stack, family: 4 | 6, host: string, port: number, what: string): Promise<void> {
  const u = from.createSocket(family === 4 ? 'udp4' : 'udp6');
  try {
    const text = `udp ${Math.random()}`;
    const got = new Promise<string>((resolve) => u.on('message', (m: Buffer) => resolve(String(m))));
    // Three tries: a datagram may meet a reassembly buffer or ARP queue the fuzz left full.
    for (let i = 0; i < 3; i++) {
      u.send(Buffer.from(text), port, host);
      const r = await Promise.race([got, new Promise<null>((res) => setTimeout(() => res(null), 500))]);
      if (r === text) return;
    }
    throw new Error(`${what}: no UDP echo from ${host}:${port}`);
  } finally {
    u.close();
  }
}

async function pingOk(from: Stack, address: string, what: string): Promise<void> {
  let last: unknown;
  for (let i = 0; i < 3; i++) {
    try {
      await from.ping(address, { timeout: 1000 });
      return;
    } catch (err) {
      last = err;
    }
  }
  throw new Error(`${what}: no echo reply from ${address} (${(last as Error).message})`);
}

/** A link wrapper that records (through the project's capture()) and reports the peer's TCP segments. */
function peerLink(inner: Link, chunks: Uint8Array[], onSent: (frame: Uint8Array) => void): { link: Link; stopCapture(): void } {
  let capturing = true;
  const captured = capture(inner, (b) => {
    if (capturing) chunks.push(b.slice());
  });
  const link: Link = {
    medium: captured.medium,
    mtu: captured.mtu,
    attach: (r: FrameReceiver) => captured.attach(r),
    send: (frame) => {
      onSent(frame);
      captured.send(frame);
    },
    flush: () => captured.flush?.(),
    close: () => captured.close(),
  };
  return { link, stopCapture: () => (capturing = false) };
}

function concat(chunks: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const c of chunks) n += c.length;
  const out = new Uint8Array(n);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/**
 * Keeps TCP connections from the peer to an echo port open and moving, and
 * tracks each one's next sequence and acknowledgement numbers from the
 * peer's own segments, so that mutants can be aimed inside its window.
 */
class LiveConnections {
  readonly #conns = new Map<4 | 6, { sock: TcpSocket; state: LiveTcp | null; dead: boolean }>();
  #reopened = 0;
  constructor(readonly peer: Stack, readonly hosts: Record<4 | 6, string>, readonly port: number) {}

  open(family: 4 | 6): void {
    const sock = this.peer.connect({ port: this.port, host: this.hosts[family] });
    const c = { sock, state: null as LiveTcp | null, dead: false };
    sock.on('error', () => (c.dead = true));
    sock.on('close', () => (c.dead = true));
    sock.on('data', () => undefined);
    this.#conns.set(family, c);
  }

  /** The peer sent `frame`: follow the live connection it belongs to. */
  sent(frame: Uint8Array): void {
    const d = dissect(frame);
    if (!d.tcp || !d.ip || !d.l4) return;
    const c = this.#conns.get(d.ip.family);
    if (!c || c.dead || c.sock.localPort !== d.tcp.srcPort || d.tcp.dstPort !== this.port) return;
    const o = d.ip.offset;
    const alen = d.ip.family === 4 ? 4 : 16;
    const srcAt = d.ip.family === 4 ? o + 12 : o + 8;
    const len = d.tcp.payloadLength + ((d.tcp.flags & 0x02) ? 1 : 0) + ((d.tcp.flags & 0x01) ? 1 : 0);
    c.state = {
      family: d.ip.family,
      src: frame.slice(srcAt, srcAt + alen),
      dst: frame.slice(srcAt + alen, srcAt + 2 * alen),
      srcPort: d.tcp.srcPort,
      dstPort: d.tcp.dstPort,
      seq: (d.tcp.seq + len) >>> 0,
      ack: getU32(frame, d.l4.offset + 8),
      window: ((frame[d.l4.offset + 14]! << 8) | frame[d.l4.offset + 15]!) || 1,
    };
  }

  get(family: 4 | 6): LiveTcp | undefined {
    const c = this.#conns.get(family);
    return c && !c.dead && c.state ? c.state : undefined;
  }

  /** Writes a little on each connection; reopens the ones a mutant reset (a few per turn at most). */
  keep(): void {
    for (const family of [4, 6] as const) {
      const c = this.#conns.get(family);
      if (!c) continue;
      if (c.dead) {
        c.sock.destroy();
        this.#reopened++;
        this.open(family);
      } else if (c.sock.writableLength < 4096) c.sock.write('live data '.repeat(8));
    }
  }

  get reopened(): number {
    return this.#reopened;
  }

  close(): void {
    for (const c of this.#conns.values()) c.sock.destroy();
  }
}

// ------------------------------------------------------------------ stack victim

const STACK = {
  victimMac: '02:00:00:00:09:01', victim4: '10.9.0.1', victim6: 'fd09::1',
  peerMac: '02:00:00:00:09:02', peer4: '10.9.0.2', peer6: 'fd09::2',
};
const ECHO_PORT = 7;

export async function stackHarness(): Promise<Harness> {
  const errors: Error[] = [];
  const victim = createStack();
  const peer = createStack();
  const checker = createStack();
  for (const s of [victim, peer, checker]) s.on('error', (e: Error) => errors.push(e));
  const [peerEnd, victimEnd] = createCable({ mtu: 1500 });
  const chunks: Uint8Array[] = [];
  const live = new LiveConnections(peer, { 4: STACK.victim4, 6: STACK.victim6 }, ECHO_PORT);
  const { link, stopCapture } = peerLink(peerEnd, chunks, (f) => live.sent(f));
  victim.addInterface({ link: victimEnd, ipv4: `${STACK.victim4}/24`, ipv6: `${STACK.victim6}/64`, mac: STACK.victimMac });
  peer.addInterface({ link, ipv4: `${STACK.peer4}/24`, ipv6: `${STACK.peer6}/64`, mac: STACK.peerMac });
  const [c1, c2] = createCable({ mtu: 1500 });
  victim.addInterface({ link: c1, ipv4: '10.8.0.1/24', ipv6: 'fd08::1/64' });
  checker.addInterface({ link: c2, ipv4: '10.8.0.2/24', ipv6: 'fd08::2/64' });

  // Services: TCP and UDP echo, and a server that talks first and closes.
  const echo = victim.createServer((s) => {
    s.on('error', () => undefined);
    s.pipe(s);
  });
  echo.listen(ECHO_PORT);
  const talker = victim.createServer((s) => {
    s.on('error', () => undefined);
    s.end('hello from the victim\n'.repeat(100));
  });
  talker.listen(80);
  for (const type of ['udp4', 'udp6'] as const) {
    const u = victim.createSocket(type);
    // Replies to forged sources fail (ENETUNREACH): as with node:dgram, an 'error' event, expected here.
    u.on('error', () => undefined);
    // Source port 0 means "no reply expected" (RFC 768).
    u.on('message', (m: Buffer, r: { address: string; port: number }) => r.port !== 0 && u.send(m, r.port, r.address));
    u.bind(ECHO_PORT);
  }
  await once(echo, 'listening');

  // The real exchange the seeds come from: ARP and ND as they happen,
  // echoes small and fragmented, UDP small and fragmented, TCP with
  // options, data both ways, FIN, a refused port and a reset.
  for (const host of [STACK.victim4, STACK.victim6]) {
    await peer.ping(host);
    await peer.ping(host, { payload: new Uint8Array(3000).fill(0x5a) });
    const family = host.includes(':') ? 6 : 4;
    await udpEcho(peer, family, host, ECHO_PORT, 'seed');
    const u = peer.createSocket(family === 4 ? 'udp4' : 'udp6');
    const big = new Promise((r) => u.on('message', r));
    u.send(Buffer.alloc(4000, 0x33), ECHO_PORT, host);
    await withTimeout('seed: fragmented UDP echo', big);
    u.close();
    await tcpEcho(peer, host, ECHO_PORT, 'seed');
    const t = peer.connect({ port: 80, host });
    t.resume();
    await once(t, 'end');
    t.end();
    const refused = peer.connect({ port: 9, host });
    await once(refused, 'error').catch(() => undefined);
    const reset = peer.connect({ port: ECHO_PORT, host });
    await once(reset, 'connect');
    reset.write(Buffer.alloc(20000, 1));
    reset.destroy();
  }
  for (let i = 0; i < 20; i++) await turn();
  stopCapture();
  const frames = readPcap(concat(chunks)).records.map((r) => r.packet);
  const seeds = sortSeeds(frames, parseMac(STACK.peerMac)!);
  // A router advertisement from the peer (lwIP sends none itself): prefix, MTU and RDNSS options to mutate.
  const peerLl = parseIp('fe80::ff:fe00:902')!;
  const allNodes = parseIp('ff02::1')!;
  const ra = buildRouterAdvertisement({
    curHopLimit: 64, managed: false, other: false, routerLifetime: 1800, reachableTime: 0, retransTimer: 0,
    sourceLinkLayerAddress: parseMac(STACK.peerMac)!, mtu: 1500,
    prefixes: [{ prefix: parseIp('fd09::')!, prefixLength: 64, onLink: true, autonomous: true, validLifetime: 86400, preferredLifetime: 14400 }],
    dnsServers: { lifetime: 600, servers: [parseIp('fd09::2')!] },
  }, { src: peerLl, dst: allNodes });
  const raFrame = buildEthernetFrame(
    { dst: Uint8Array.from([0x33, 0x33, 0, 0, 0, 1]), src: parseMac(STACK.peerMac)!, etherType: EtherType.IPv6 },
    buildIPv6Packet({ src: peerLl, dst: allNodes, nextHeader: IpProtocol.ICMPv6, hopLimit: 255, payload: ra }),
  );
  if (!seeds.has('ndp')) seeds.set('ndp', []);
  seeds.get('ndp')!.push({ protocol: 'ndp', frame: raFrame });

  live.open(4);
  live.open(6);
  for (let i = 0; i < 50 && !(live.get(4) && live.get(6)); i++) await turn();

  return {
    name: 'stack',
    victimMac: parseMac(STACK.victimMac)!,
    victimIpv4: parseIp(STACK.victim4)!.bytes,
    victimIpv6: parseIp(STACK.victim6)!.bytes,
    seeds,
    errors,
    inject: (frame) => peerEnd.send(frame),
    live: (family) => live.get(family),
    async pump() {
      await turn();
      live.keep();
    },
    async health() {
      if (victim.closed) throw new Error('the victim stack has closed');
      await pingOk(checker, '10.8.0.1', 'victim');
      await pingOk(checker, 'fd08::1', 'victim');
      await tcpEcho(checker, '10.8.0.1', ECHO_PORT, 'victim');
      await tcpEcho(checker, 'fd08::1', ECHO_PORT, 'victim');
      await udpEcho(checker, 4, '10.8.0.1', ECHO_PORT, 'victim');
      // The fuzzed link itself still works once forged ARP/ND entries are forgotten.
      victim.neighbors.flush();
      peer.neighbors.flush();
      await pingOk(peer, STACK.victim4, 'victim (fuzzed link)');
      await tcpEcho(peer, STACK.victim4, ECHO_PORT, 'victim (fuzzed link)');
    },
    drops: () => stackDrops(victim),
    close() {
      live.close();
      victim.close();
      peer.close();
      checker.close();
    },
  };
}

// ------------------------------------------------------------------ gateway victim

const GUEST_MAC = '02:00:00:00:0a:64';

/** An echo server for each transport on 127.0.0.1: the only host sockets the fuzzed gateway may open. */
async function hostEchoServers(errors: Error[]): Promise<{ tcpPort: number; udpPort: number; close(): void }> {
  const server = net.createServer((s) => {
    s.on('error', () => undefined);
    s.pipe(s);
  });
  server.on('error', (e) => errors.push(e));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const udp = dgram.createSocket('udp4');
  udp.on('message', (m, r) => udp.send(m, r.port, r.address));
  udp.on('error', (e: Error) => errors.push(e));
  udp.bind(0, '127.0.0.1');
  await once(udp, 'listening');
  return {
    tcpPort: (server.address() as net.AddressInfo).port,
    udpPort: udp.address().port,
    close() {
      server.close();
      udp.close();
    },
  };
}

export async function gatewayHarness(): Promise<Harness> {
  const errors: Error[] = [];
  const host = await hostEchoServers(errors);
  const [gwEnd, guestEnd] = createCable({ mtu: 1500 });
  const gateway: Gateway = createGateway({
    link: gwEnd,
    ipv6: true,
    hostLoopback: false,
    // Short, so that flows opened by mutants (new 4-tuples) do not pile up host sockets.
    connectTimeout: 1000,
    udpIdleTimeout: 2000,
    policy: {
      defaultAction: 'deny',
      rules: [
        { action: 'allow', protocol: 'tcp', cidr: '127.0.0.1', ports: host.tcpPort },
        { action: 'allow', protocol: 'udp', cidr: '127.0.0.1', ports: host.udpPort },
      ],
    },
    hosts: { 'host.test': ['10.0.2.2'], 'six.test': ['fd00::2'] },
    // No upstream: names outside `hosts` fail at once (SERVFAIL) instead of leaving the machine.
    resolver: {
      resolve4: () => Promise.reject(Object.assign(new Error('no upstream while fuzzing'), { code: 'ESERVFAIL' })),
      resolve6: () => Promise.reject(Object.assign(new Error('no upstream while fuzzing'), { code: 'ESERVFAIL' })),
    },
  });
  gateway.stack.on('error', (e: Error) => errors.push(e));
  gateway.dns.on('error', (e: Error) => errors.push(e));
  let declined = false;
  gateway.dhcp.on('decline', () => (declined = true));
  await gateway.ready;

  const guest = createStack({ dnsServers: ['10.0.2.3'] });
  guest.on('error', (e: Error) => errors.push(e));
  const chunks: Uint8Array[] = [];
  const live = new LiveConnections(guest, { 4: '127.0.0.1', 6: '127.0.0.1' }, host.tcpPort);
  // The gateway's output as the guest sees it: DHCP replies the health check waits for.
  const replies: Uint8Array[] = [];
  const { link, stopCapture } = peerLink(guestEnd, chunks, (f) => live.sent(f));
  const watched: Link = {
    ...link,
    attach: (r) => link.attach((frame) => {
      if (watchingReplies) replies.push(frame.slice());
      r(frame);
    }),
  };
  let watchingReplies = false;
  const iface = guest.addInterface({ link: watched, dhcp: true, slaac: true, mac: GUEST_MAC });
  for (let i = 0; i < 300 && !(iface.ipv4 && iface.ipv6.some((a) => a.address.startsWith('fd00:') && a.state === 'preferred')); i++) {
    await new Promise((r) => setTimeout(r, 10));
  }
  if (!iface.ipv4) throw new Error('gateway harness: the guest got no DHCP lease');

  // The real exchange: DNS over UDP (A, AAAA, a name upstream would have to answer) and TCP,
  // echoes to the gateway, its DNS address and a denied outside address, fragmented ones,
  // TCP and UDP (small and fragmented) through host sockets.
  await guest.resolve('host.test');
  await guest.resolve('six.test', { family: 6 });
  await guest.resolve('elsewhere.test').catch(() => undefined);
  const { queryOverTcp } = await import('../support/dns-tcp.js');
  await queryOverTcp(guest, '10.0.2.3', 'host.test', 1);
  await pingOk(guest, '10.0.2.2', 'seed');
  await pingOk(guest, '10.0.2.3', 'seed');
  await guest.ping('10.0.2.2', { payload: new Uint8Array(3000).fill(7) });
  await guest.ping('192.0.2.1', { timeout: 300 }).catch(() => undefined);
  if (iface.ipv6.some((a) => a.address.startsWith('fd00:'))) {
    await pingOk(guest, 'fd00::2', 'seed');
    await guest.ping('fd00::2', { payload: new Uint8Array(3000).fill(7) });
  }
  await tcpEcho(guest, '127.0.0.1', host.tcpPort, 'seed');
  await udpEcho(guest, 4, '127.0.0.1', host.udpPort, 'seed');
  {
    const u = guest.createSocket('udp4');
    const big = new Promise((r) => u.on('message', r));
    u.send(Buffer.alloc(4000, 0x44), host.udpPort, '127.0.0.1');
    await withTimeout('seed: fragmented UDP through the gateway', big);
    u.close();
  }
  const denied = guest.connect({ port: 80, host: '192.0.2.1' });
  await once(denied, 'error').catch(() => undefined);
  for (let i = 0; i < 20; i++) await turn();
  stopCapture();
  const frames = readPcap(concat(chunks)).records.map((r) => r.packet);
  const seeds = sortSeeds(frames, parseMac(GUEST_MAC)!);

  live.open(4);
  for (let i = 0; i < 100 && !live.get(4); i++) await turn();

  const gwMac = parseMac(gateway.interface.mac!)!;
  const guestMac = parseMac(GUEST_MAC)!;
  /** DISCOVER (from another client) and INFORM: both answered unless the fuzz had the address declined. */
  async function dhcpAnswers(): Promise<void> {
    const xid = (Math.random() * 0x1_0000_0000) >>> 0;
    const other = Uint8Array.from([0x02, 0, 0, 0x0b, (xid >>> 8) & 0xff, xid & 0xff]);
    const wire = (msg: Uint8Array, src: string, dst: string, srcMac: Uint8Array) => buildEthernetFrame(
      { dst: Uint8Array.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]), src: srcMac, etherType: EtherType.IPv4 },
      buildIPv4Packet({ src: parseIp(src)!, dst: parseIp(dst)!, protocol: IpProtocol.UDP, ttl: 64,
        payload: buildUdpDatagram({ srcPort: 68, dstPort: 67, payload: msg, src: parseIp(src)!, dst: parseIp(dst)! }) }),
    );
    const want = new Set<number>();
    replies.length = 0;
    watchingReplies = true;
    try {
      const checks: [number, Uint8Array][] = [];
      if (!declined) {
        checks.push([xid, wire(buildDhcpMessage({ op: BootpOp.Request, xid, chaddr: other, options: { messageType: DhcpMessageType.Discover } }), '0.0.0.0', '255.255.255.255', other)]);
      }
      const ixid = (xid + 1) >>> 0;
      checks.push([ixid, wire(buildDhcpMessage({ op: BootpOp.Request, xid: ixid, ciaddr: iface.ipv4!.address, chaddr: guestMac, options: { messageType: DhcpMessageType.Inform } }), iface.ipv4!.address, '10.0.2.2', guestMac)]);
      for (const [x, f] of checks) {
        want.add(x);
        guestEnd.send(f);
      }
      const seen = new Set<number>();
      for (let i = 0; i < 300 && seen.size < want.size; i++) {
        await new Promise((r) => setTimeout(r, 5));
        for (const r of replies.splice(0)) {
          const d = dissect(r);
          if (!d.udp || d.udp.srcPort !== 67 || !d.l4) continue;
          const msg = parseDhcpMessage(r.subarray(d.l4.offset + 8, d.l4.end));
          if (msg && want.has(msg.xid)) seen.add(msg.xid);
        }
      }
      if (seen.size < want.size) throw new Error(`gateway: DHCP answered ${seen.size} of ${want.size} requests (DISCOVER, INFORM)`);
    } finally {
      watchingReplies = false;
    }
    declined = false;
  }

  return {
    name: 'gateway',
    victimMac: gwMac,
    victimIpv4: parseIp('10.0.2.2')!.bytes,
    victimIpv6: parseIp('fd00::2')!.bytes,
    seeds,
    errors,
    inject: (frame) => guestEnd.send(frame),
    live: (family) => live.get(family),
    async pump() {
      await turn();
      live.keep();
    },
    async health() {
      if (gateway.stack.closed) throw new Error('the gateway stack has closed');
      gateway.stack.neighbors.flush();
      guest.neighbors.flush();
      await pingOk(guest, '10.0.2.2', 'gateway');
      await pingOk(guest, '10.0.2.3', 'gateway DNS address');
      const names = await withTimeout('gateway DNS', guest.resolve('host.test'));
      if (names[0] !== '10.0.2.2') throw new Error(`gateway DNS: host.test resolved to ${names.join(', ')}`);
      await tcpEcho(guest, '127.0.0.1', host.tcpPort, 'gateway');
      await udpEcho(guest, 4, '127.0.0.1', host.udpPort, 'gateway');
      await dhcpAnswers();
    },
    drops() {
      const d = stackDrops(gateway.stack);
      const dns = gateway.dns.counters;
      d['dns.malformed'] = dns.malformed;
      d['dhcp.ignored'] = gateway.dhcp.stats.ignored;
      return d;
    },
    close() {
      live.close();
      guest.close();
      gateway.close();
      host.close();
    },
  };
}

export async function openHarness(name: HarnessName): Promise<Harness> {
  return name === 'stack' ? stackHarness() : gatewayHarness();
}
