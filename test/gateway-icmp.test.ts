/**
 * ICMP echo through the gateway: answered for its own and the DNS address,
 * forwarded through a ping socket elsewhere (ICMP, and ICMPv6 through a
 * second one), refused by the egress policy with "administratively
 * prohibited", dropped and counted where ping sockets are not allowed.
 *
 * In-process tests use a cable, and the one echo they let the gateway
 * forward goes to 127.0.0.1. The device tests (root) build a closed world
 * and never touch the root namespace's settings:
 *
 *   sandbox ns ──TAP── gateway (a child process in the host ns)
 *                      host ns: lo + veth 198.51.100.1/24, 2001:db8:100::1/64,
 *                      no other route; net.ipv4.ping_group_range set per
 *                      test (per namespace)
 *                          │ veth
 *                      internet ns: 198.51.100.2/24, 2001:db8:100::2/64
 *
 * They run dist/ (build with `npx tsc -p tsconfig.json` first).
 */
import { execFile, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createCable, createStack, type Link, type Stack } from '../src/index.js';
import { createGateway, type Gateway, type GatewayMetrics, type GatewayOptions } from '../src/gateway/gateway.js';
import { loadNative, type NativeError } from '../src/node/native.js';
import { parseEthernetFrame } from '../src/wire/ethernet.js';
import { parseIPv4Packet } from '../src/wire/ipv4.js';
import { deviceTestsUnavailable, Netns } from './support/netns.js';
import { INTERNET_ADDRESS, INTERNET_ADDRESS6, linkHostToInternet } from './support/topology.js';

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

const noop = () => {};

/** A link that also keeps a copy of every frame sent through it. */
function recording(link: Link, sent: Uint8Array[]): Link {
  return {
    medium: link.medium,
    mtu: link.mtu,
    attach: (receive) => link.attach(receive),
    send: (frame) => {
      sent.push(frame.slice());
      link.send(frame);
    },
    flush: () => link.flush?.(),
    close: () => link.close(),
  };
}

function inProcess(options: Omit<GatewayOptions, 'link'> = {}): { gw: Gateway; sandbox: Stack; toSandbox: Uint8Array[] } {
  const [gwLink, sandboxLink] = createCable({ mtu: 1500 });
  const toSandbox: Uint8Array[] = [];
  const gw = createGateway({ link: recording(gwLink, toSandbox), ...options });
  const sandbox = createStack();
  sandbox.addInterface({ link: sandboxLink, ipv4: '10.0.2.100/24', gateway: '10.0.2.2' });
  cleanup.push(() => {
    sandbox.close();
    gw.close();
  });
  return { gw, sandbox, toSandbox };
}

/** The ICMP messages (type, code, source) among Ethernet frames. */
function icmpMessages(frames: Uint8Array[]): { type: number; code: number; from: string }[] {
  const out: { type: number; code: number; from: string }[] = [];
  for (const f of frames) {
    const eth = parseEthernetFrame(f);
    const ip = eth && parseIPv4Packet(eth.payload);
    if (ip?.protocol === 1 && ip.payload.length >= 4) out.push({ type: ip.payload[0]!, code: ip.payload[1]!, from: ip.src.bytes.join('.') });
  }
  return out;
}

/** Whether this process may open ping sockets (net.ipv4.ping_group_range), and why not. */
function pingSocketError(): NativeError | null {
  const Ping = loadNative().PingSocket;
  if (!Ping) return Object.assign(new Error('no PingSocket on this platform'), { code: 'ERR_NOT_SUPPORTED' });
  try {
    new Ping(4, 1, 64, noop, noop).close();
    return null;
  } catch (err) {
    return err as NativeError;
  }
}

describe('gateway ICMP echo, in process', () => {
  it('the gateway address is answered by lwIP and the DNS address by the gateway, neither forwarded', async () => {
    const { gw, sandbox } = inProcess();
    expect(await sandbox.ping('10.0.2.2')).toBeGreaterThanOrEqual(0);
    expect(await sandbox.ping('10.0.2.3', { payload: new Uint8Array(3000).fill(7) })).toBeGreaterThanOrEqual(0); // fragmented both ways
    expect(await sandbox.ping('10.0.2.3')).toBeGreaterThanOrEqual(0);
    expect(gw.metrics()).toMatchObject({ icmpEchoAnswered: 2, icmpEchoForwarded: 0, icmpDropped: 0, denied: 0 });
  });

  it('hostLoopback does not change who answers the gateway address', async () => {
    const { gw, sandbox } = inProcess({ hostLoopback: true });
    expect(await sandbox.ping('10.0.2.2')).toBeGreaterThanOrEqual(0);
    expect(gw.metrics()).toMatchObject({ icmpEchoAnswered: 0, icmpEchoForwarded: 0, icmpDropped: 0 });
  });

  it('a denied echo gets destination unreachable, code 13, from the gateway, and is counted', async () => {
    // Denied by a rule (and, had the rule failed, the host's loopback is protected too).
    const { gw, sandbox, toSandbox } = inProcess({ policy: { rules: ['deny icmp:127.0.0.3'] } });
    const denied: unknown[] = [];
    gw.on('denied', (d) => denied.push(d));
    await expect(sandbox.ping('127.0.0.3', { timeout: 300 })).rejects.toMatchObject({ code: 'ETIMEDOUT' });
    expect(icmpMessages(toSandbox)).toContainEqual({ type: 3, code: 13, from: '10.0.2.2' });
    expect(denied).toEqual([{ protocol: 'icmp', to: '127.0.0.3', reason: 'rule', rule: 'deny icmp:127.0.0.3' }]);
    expect(gw.metrics()).toMatchObject({ denied: 1, icmpEchoForwarded: 0 });
  });

  it('each refusal is counted once, whatever the protocol', async () => {
    const { gw, sandbox } = inProcess({ policy: { rules: ['deny 127.0.0.3'] } });
    const denied: { protocol: string }[] = [];
    gw.on('denied', (d: { protocol: string }) => denied.push(d));
    const udp = sandbox.createSocket('udp4');
    cleanup.push(() => void udp.close());
    await new Promise<void>((resolve) => udp.send('x', 9, '127.0.0.3', () => resolve()));
    const tcp = sandbox.connect(9, '127.0.0.3');
    await once(tcp, 'error');
    await expect(sandbox.ping('127.0.0.3', { timeout: 200 })).rejects.toMatchObject({ code: 'ETIMEDOUT' });
    expect(denied.map((d) => d.protocol).sort()).toEqual(['icmp', 'tcp', 'udp']);
    expect(gw.metrics().denied).toBe(3);
  });

  it('forwards an allowed echo through a ping socket, or drops and counts it where ping sockets are not allowed', async () => {
    const { gw, sandbox } = inProcess({ policy: { rules: ['allow icmp:127.0.0.1'] } });
    const why = pingSocketError();
    if (why) {
      const warnings: Error[] = [];
      const onWarning = (w: Error) => warnings.push(w);
      process.on('warning', onWarning);
      cleanup.push(() => void process.off('warning', onWarning));
      console.warn(`gateway-icmp.test.ts: ping sockets are not allowed here (${why.code}): checking the drop path`);
      for (let i = 0; i < 2; i++) await expect(sandbox.ping('127.0.0.1', { timeout: 300 })).rejects.toMatchObject({ code: 'ETIMEDOUT' });
      expect(gw.metrics()).toMatchObject({ icmpDropped: 2, icmpEchoForwarded: 0, icmpEchoReplies: 0 });
      await new Promise((r) => setImmediate(r));
      expect(warnings.filter((w) => (w as NativeError).code === 'TCPIP_TS_NO_PING_SOCKET')).toHaveLength(1);
    } else {
      expect(await sandbox.ping('127.0.0.1')).toBeGreaterThanOrEqual(0);
      expect(await sandbox.ping('127.0.0.1', { payload: new Uint8Array(4000).fill(1) })).toBeGreaterThanOrEqual(0);
      expect(gw.metrics()).toMatchObject({ icmpEchoForwarded: 2, icmpEchoReplies: 2, icmpDropped: 0 });
    }
  });

  it('PingSocket checks its arguments in TypeScript, naming them', () => {
    const Ping = loadNative().PingSocket;
    if (process.platform !== 'linux') {
      expect(Ping).toBeUndefined();
      return;
    }
    expect(Ping).toEqual(expect.any(Function));
    for (const family of [0, 5, '4', 4.5, undefined, null]) {
      expect(() => new Ping!(family as never, 4, 2048, noop, noop)).toThrow(expect.objectContaining({ name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' }));
      expect(() => new Ping!(family as never, 4, 2048, noop, noop)).toThrow(/"family" argument must be 4 or 6/);
    }
    for (const family of [4, 6] as const) {
      expect(() => new Ping!(family, 0, 2048, noop, noop)).toThrow(/"rxSlots" argument/);
      expect(() => new Ping!(family, 1.5, 2048, noop, noop)).toThrow(TypeError);
      expect(() => new Ping!(family, 4, 4, noop, noop)).toThrow(/"slotSize" argument/);
      expect(() => new Ping!(family, 4, 2048, 'no' as never, noop)).toThrow(/"onMessages" argument/);
      expect(() => new Ping!(family, 4, 2048, noop, null as never)).toThrow(/"onError" argument/);
      expect(() => new Ping!(family, 65536, 1 << 20, noop, noop)).toThrow(RangeError);
    }
    const why = pingSocketError();
    if (why) {
      // Outside net.ipv4.ping_group_range (both families): a Node-style system error.
      expect(why).toMatchObject({ code: 'EACCES', syscall: 'socket', errno: -13, message: expect.stringMatching(/ping_group_range/) });
      expect(() => new Ping!(6, 1, 64, noop, noop)).toThrow(expect.objectContaining({ code: 'EACCES', syscall: 'socket' }));
      return;
    }
    const socket6 = new Ping!(6, 4, 2048, noop, noop);
    try {
      expect(socket6.rxAddresses).toBeInstanceOf(Uint8Array);
      expect(socket6.rxAddresses).toHaveLength(64);
      expect(() => socket6.send(new Uint8Array(8), 1)).toThrow(/"address" argument must be an IPv6 address as 16 bytes/);
      expect(() => socket6.send(new Uint8Array(8), new Uint8Array(4))).toThrow(/"address" argument/);
      expect(() => socket6.send(new Uint8Array(65536), new Uint8Array(16))).toThrow(RangeError);
      expect(socket6.stats().txMessages).toBe(0);
    } finally {
      socket6.close();
    }
    const socket = new Ping!(4, 4, 2048, noop, noop);
    try {
      expect(() => socket.send([8, 0, 0, 0, 0, 0, 0, 0] as never, 0x7f000001)).toThrow(/"message" argument/);
      expect(() => socket.send(new Uint8Array(8), -1)).toThrow(/"address" argument/);
      expect(() => socket.send(new Uint8Array(8), 2 ** 32)).toThrow(/"address" argument/);
      expect(() => socket.send(new Uint8Array(4), 0x7f000001)).toThrow(RangeError);
      expect(socket.stats().txMessages).toBe(0);
    } finally {
      socket.close();
    }
    expect(() => socket.send(new Uint8Array(8), 0x7f000001)).toThrow(expect.objectContaining({ code: 'ERR_SOCKET_CLOSED' }));
  });
});

// ---- in namespaces, against the kernel's ping -----------------------------------

const DIST = new URL('../dist/', import.meta.url);
/** The sandbox's static v6 address (the gateway's `ipv6` defaults: fd00::/64, gateway fd00::2). */
const SANDBOX_ADDRESS6 = 'fd00::100';

/**
 * The gateway process: a TAP in the sandbox namespace, a gateway with the
 * options given (JSON); prints "ready", then one JSON line of metrics,
 * 'denied' events and process warnings per "metrics" line on stdin.
 */
const GATEWAY_CHILD = `
const [dist, sandboxNs, options] = process.argv.slice(1);
await import(dist + 'index.js');
const { openTap } = await import(dist + 'node/links.js');
const { createGateway } = await import(dist + 'gateway/gateway.js');
const { createInterface } = await import('node:readline');
const warnings = [];
process.on('warning', (w) => warnings.push({ code: w.code, message: w.message }));
const gw = createGateway({ link: openTap({ name: 'tt0', netns: sandboxNs }), ...JSON.parse(options) });
const denied = [];
gw.on('denied', (d) => denied.push(d));
await gw.ready;
console.log('ready');
const lines = createInterface({ input: process.stdin });
lines.on('line', () => console.log(JSON.stringify({ metrics: gw.metrics(), denied, warnings })));
lines.on('close', () => { gw.close(); process.exit(0); });
`;

interface ChildReport {
  metrics: GatewayMetrics;
  denied: { protocol: string; to: string; reason: string; rule?: string }[];
  warnings: { code?: string; message: string }[];
}

class GatewayChild {
  #lines: string[] = [];
  #waiting: ((line: string) => void)[] = [];
  stderr = '';

  constructor(readonly child: ChildProcess) {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const w = this.#waiting.shift();
      if (w) w(line);
      else this.#lines.push(line);
    });
    child.stderr!.on('data', (d: Buffer) => (this.stderr += d));
  }

  #next(): Promise<string> {
    const line = this.#lines.shift();
    if (line !== undefined) return Promise.resolve(line);
    return new Promise((resolve, reject) => {
      this.#waiting.push(resolve);
      this.child.once('exit', () => reject(new Error(`gateway child exited: ${this.stderr}`)));
    });
  }

  async ready(): Promise<void> {
    const line = await this.#next();
    if (line !== 'ready') throw new Error(`gateway child said ${JSON.stringify(line)} (stderr: ${this.stderr})`);
  }

  async report(): Promise<ChildReport> {
    this.child.stdin!.write('metrics\n');
    return JSON.parse(await this.#next()) as ChildReport;
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = once(this.child, 'exit');
    this.child.stdin!.end();
    await exited;
  }
}

interface PingResult {
  code: number;
  output: string;
  ms: number;
}

/** Runs ping inside ns; resolves with its exit code and output, whatever they are. */
function ping(ns: Netns, args: string[]): Promise<PingResult> {
  const started = performance.now();
  return new Promise((resolve) => {
    execFile('ip', ['netns', 'exec', ns.name, 'ping', '-n', ...args], { timeout: 30_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      resolve({ code, output: stdout + stderr, ms: performance.now() - started });
    });
  });
}

const skip = deviceTestsUnavailable() ?? (existsSync(fileURLToPath(new URL('gateway/gateway.js', DIST))) ? null : 'dist/ is not built (npx tsc -p tsconfig.json)');
if (skip) console.warn(`gateway-icmp.test.ts: namespace tests skipped: ${skip}`);

describe.skipIf(skip)('gateway ICMP echo in namespaces (root)', () => {
  let host: Netns;
  let internet: Netns;

  beforeAll(async () => {
    host = await Netns.create('icmph');
    internet = await Netns.create('icmpi');
    await linkHostToInternet(host, internet);
  });

  afterAll(async () => {
    // Deleting the namespaces deletes the veth pair with them.
    await host?.delete();
    await internet?.delete();
  });

  /** A sandbox namespace served by a gateway child in the host namespace, ping sockets allowed or not. */
  async function world(pingSockets: boolean, options: Omit<GatewayOptions, 'link'> = {}): Promise<{ sandbox: Netns; gateway: GatewayChild }> {
    await host.exec('sysctl', ['-qw', `net.ipv4.ping_group_range=${pingSockets ? '0 2147483647' : '1 0'}`]);
    const sandbox = await Netns.create('icmps');
    cleanup.push(() => sandbox.delete());
    const gateway = new GatewayChild(host.spawn(process.execPath, ['--input-type=module', '-e', GATEWAY_CHILD, DIST.href, sandbox.path, JSON.stringify(options)]));
    cleanup.push(() => gateway.stop());
    await gateway.ready();
    await sandbox.exec('ip', ['addr', 'add', '10.0.2.100/24', 'dev', 'tt0']);
    await sandbox.exec('ip', ['route', 'add', 'default', 'via', '10.0.2.2']);
    if (options.ipv6) {
      // A static address and route rather than SLAAC from the gateway's advertisements: nothing to wait for.
      await sandbox.exec('sysctl', ['-qw', 'net.ipv6.conf.tt0.accept_ra=0']);
      await sandbox.exec('ip', ['-6', 'addr', 'add', `${SANDBOX_ADDRESS6}/64`, 'dev', 'tt0', 'nodad']);
      await sandbox.exec('ip', ['-6', 'route', 'replace', 'default', 'via', 'fd00::2', 'dev', 'tt0']);
    }
    return { sandbox, gateway };
  }

  it('answers the gateway and DNS addresses and forwards echoes to another namespace, each ping getting its own replies', async () => {
    const { sandbox, gateway } = await world(true);
    for (const address of ['10.0.2.2', '10.0.2.3', INTERNET_ADDRESS]) {
      const r = await ping(sandbox, ['-c', '3', '-W', '2', '-i', '0.2', address]);
      expect(r.output, address).toMatch(/3 packets transmitted, 3 received/);
      expect(r.code).toBe(0);
    }
    let m = (await gateway.report()).metrics;
    expect(m).toMatchObject({ icmpEchoAnswered: 3, icmpEchoForwarded: 3, icmpEchoReplies: 3, icmpDropped: 0, denied: 0 });

    // Two pings at once: the same sequence numbers, told apart by their identifiers.
    const both = await Promise.all([0, 1].map(() => ping(sandbox, ['-c', '4', '-W', '2', '-i', '0.2', INTERNET_ADDRESS])));
    for (const r of both) expect(r.output).toMatch(/4 packets transmitted, 4 received, 0% packet loss/);
    expect(both.map((r) => r.output).join('')).not.toMatch(/DUP!/);
    // Large echoes: fragmented by the sandbox, reassembled by the gateway, and back.
    const big = await ping(sandbox, ['-c', '2', '-W', '2', '-i', '0.2', '-s', '4000', INTERNET_ADDRESS]);
    expect(big.output).toMatch(/4008 bytes from 198\.51\.100\.2/);
    expect(big.output).toMatch(/2 received/);
    m = (await gateway.report()).metrics;
    expect(m).toMatchObject({ icmpEchoForwarded: 13, icmpEchoReplies: 13, icmpDropped: 0 });
  }, 60_000);

  it('a deny rule for ICMP answers "administratively prohibited" at once and counts it', async () => {
    const { sandbox, gateway } = await world(true, { policy: { rules: [`deny icmp:${INTERNET_ADDRESS}`] } });
    const r = await ping(sandbox, ['-c', '1', '-W', '2', INTERNET_ADDRESS]);
    expect(r.code).not.toBe(0);
    expect(r.output).toMatch(/From 10\.0\.2\.2 icmp_seq=1 (Packet filtered|Communication prohibited)/);
    expect(r.ms).toBeLessThan(1500);
    const report = await gateway.report();
    expect(report.metrics).toMatchObject({ denied: 1, icmpEchoForwarded: 0, icmpEchoReplies: 0 });
    expect(report.denied).toEqual([{ protocol: 'icmp', to: INTERNET_ADDRESS, reason: 'rule', rule: `deny icmp:${INTERNET_ADDRESS}` }]);
    // The gateway's own addresses are not the policy's to refuse.
    expect((await ping(sandbox, ['-c', '1', '-W', '2', '10.0.2.3'])).code).toBe(0);
  }, 60_000);

  it('without ping sockets, echoes to other hosts are dropped and counted, and the rest keeps working', async () => {
    const { sandbox, gateway } = await world(false);
    const r = await ping(sandbox, ['-c', '2', '-W', '1', '-i', '0.2', INTERNET_ADDRESS]);
    expect(r.output).toMatch(/2 packets transmitted, 0 received/);
    for (const address of ['10.0.2.2', '10.0.2.3']) {
      expect((await ping(sandbox, ['-c', '1', '-W', '2', address])).code, address).toBe(0);
    }
    const report = await gateway.report();
    expect(report.metrics).toMatchObject({ icmpDropped: 2, icmpEchoForwarded: 0, icmpEchoAnswered: 1 });
    expect(report.warnings).toEqual([expect.objectContaining({ code: 'TCPIP_TS_NO_PING_SOCKET', message: expect.stringMatching(/EACCES/) })]);
    expect(gateway.child.exitCode).toBeNull();
  }, 60_000);

  it('forwards ICMPv6 echoes through an IPv6 ping socket, replies coming from the destination', async () => {
    const { sandbox, gateway } = await world(true, { ipv6: true });
    const r = await ping(sandbox, ['-6', '-c', '3', '-W', '2', '-i', '0.2', INTERNET_ADDRESS6]);
    expect(r.output).toMatch(/3 packets transmitted, 3 received/);
    expect(r.output).toMatch(/bytes from 2001:db8:100::2: icmp_seq=3/);
    expect(r.code).toBe(0);
    // Two at once, same sequence numbers, told apart by their identifiers; then v4 beside v6.
    const both = await Promise.all([
      ping(sandbox, ['-6', '-c', '3', '-W', '2', '-i', '0.2', INTERNET_ADDRESS6]),
      ping(sandbox, ['-6', '-c', '3', '-W', '2', '-i', '0.2', INTERNET_ADDRESS6]),
      ping(sandbox, ['-4', '-c', '3', '-W', '2', '-i', '0.2', INTERNET_ADDRESS]),
    ]);
    for (const b of both) expect(b.output).toMatch(/3 packets transmitted, 3 received, 0% packet loss/);
    expect(both.map((b) => b.output).join('')).not.toMatch(/DUP!/);
    // Large: fragmented by the sandbox, reassembled by lwIP, sent whole by the ping socket, fragmented back.
    const big = await ping(sandbox, ['-6', '-c', '2', '-W', '2', '-i', '0.2', '-s', '4000', INTERNET_ADDRESS6]);
    expect(big.output).toMatch(/4008 bytes from 2001:db8:100::2/);
    expect(big.output).toMatch(/2 received/);
    const report = await gateway.report();
    expect(report.metrics).toMatchObject({ icmpEchoForwarded: 14, icmpEchoReplies: 14, icmpDropped: 0, denied: 0 });
    expect(report.warnings).toEqual([]);
  }, 60_000);

  it('a deny rule for a v6 destination answers "administratively prohibited" from fd00::2 at once', async () => {
    const rule = `deny icmp:[${INTERNET_ADDRESS6}]`;
    const { sandbox, gateway } = await world(true, { ipv6: true, policy: { rules: [rule] } });
    const r = await ping(sandbox, ['-6', '-c', '1', '-W', '2', INTERNET_ADDRESS6]);
    expect(r.code).not.toBe(0);
    expect(r.output).toMatch(/From fd00::2 icmp_seq=1 Destination unreachable: Administratively prohibited/);
    expect(r.ms).toBeLessThan(1500);
    const report = await gateway.report();
    expect(report.metrics).toMatchObject({ denied: 1, icmpEchoForwarded: 0, icmpEchoReplies: 0, icmpDropped: 0 });
    expect(report.denied).toEqual([{ protocol: 'icmp', to: INTERNET_ADDRESS6, reason: 'rule', rule }]);
  }, 60_000);

  it('without ping sockets, v6 echoes to other hosts are dropped and counted, with one warning', async () => {
    const { sandbox, gateway } = await world(false, { ipv6: true });
    const r = await ping(sandbox, ['-6', '-c', '2', '-W', '1', '-i', '0.2', INTERNET_ADDRESS6]);
    expect(r.output).toMatch(/2 packets transmitted, 0 received/);
    expect((await ping(sandbox, ['-6', '-c', '1', '-W', '2', 'fd00::2'])).code).toBe(0); // lwIP's own address still answers
    const report = await gateway.report();
    expect(report.metrics).toMatchObject({ icmpDropped: 2, icmpEchoForwarded: 0, icmpEchoReplies: 0 });
    expect(report.warnings).toEqual([expect.objectContaining({ code: 'TCPIP_TS_NO_PING_SOCKET', message: expect.stringMatching(/IPv6.*EACCES/) })]);
  }, 60_000);

  it('an IPv6 PingSocket checks its arguments and gets a real reply from ::1 where ping sockets are allowed', async () => {
    await host.exec('sysctl', ['-qw', 'net.ipv4.ping_group_range=0 2147483647']);
    const script = `
      const { loadNative } = await import(process.argv[1] + 'node/native.js');
      const { buildEchoRequest, parseEcho } = await import(process.argv[1] + 'wire/icmp.js');
      const Ping = loadNative().PingSocket;
      const errors = [];
      const s = new Ping(6, 4, 2048, (count) => {
        const reply = parseEcho(new Uint8Array(s.rxBuffer, 0, s.rxLengths[0]), { family: 6 });
        console.log(JSON.stringify({ count, kind: reply.kind, seq: reply.seq, data: [...reply.payload], from: [...s.rxAddresses.subarray(0, 16)], errors, stats: s.stats() }));
        s.close();
      }, (e) => errors.push(String(e)));
      for (const [message, address] of [[new Uint8Array(8), 0], [new Uint8Array(8), new Uint8Array(4)], [new Uint8Array(65536), new Uint8Array(16)]]) {
        try { s.send(message, address); errors.push('sent'); } catch (e) { errors.push(e.name + ' ' + e.code); }
      }
      const loopback = new Uint8Array(16); loopback[15] = 1;
      // An ICMPv4 echo request (type 8) on an ICMPv6 socket: the kernel refuses it.
      try { s.send(buildEchoRequest({ family: 4, id: 0, seq: 1 }), loopback); errors.push('sent'); } catch (e) { errors.push(e.code); }
      s.send(buildEchoRequest({ family: 6, id: 0, seq: 4242, payload: new Uint8Array([1, 2, 3]) }), loopback);
      setTimeout(() => { console.log('{"timeout":true}'); process.exit(1); }, 3000).unref();
    `;
    const out = JSON.parse(await host.exec(process.execPath, ['--input-type=module', '-e', script, DIST.href]));
    const loopback = [...new Uint8Array(15), 1];
    expect(out).toMatchObject({ count: 1, kind: 'reply', seq: 4242, data: [1, 2, 3], from: loopback });
    expect(out.errors).toEqual(['TypeError ERR_INVALID_ARG_TYPE', 'TypeError ERR_INVALID_ARG_TYPE', 'RangeError ERR_OUT_OF_RANGE', 'EINVAL']);
    expect(out.stats).toMatchObject({ txMessages: 1, rxMessages: 1, txErrors: 1 });
  }, 30_000);
});
