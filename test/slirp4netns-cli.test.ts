/**
 * The slirp4netns-compatible command (bin/tcpip-ts-slirp4netns.js; build with
 * `npx tsc -p tsconfig.json` first), driven the way podman and rootlesskit
 * drive slirp4netns: positional PID|PATH and TAPNAME, -c, an exit fd (3) and a
 * ready fd (4), the JSON API socket. Where Debian's slirp4netns is installed
 * (scripts/test-deps.sh installs it) the same assertions run against it, which
 * proves the test.
 *
 * Traffic stays on this machine: the namespaces are made and removed here,
 * host loopback and forwards go to servers on 127.0.0.1, and DNS at 10.0.2.3
 * is forwarded to a DNS responder on 127.0.9.53 of the test's own: each
 * command runs in a mount namespace whose /etc/resolv.conf names it.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { createConnection, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { deviceTestsUnavailable, Netns, waitFor } from './support/netns.js';

const run = promisify(execFile);
const OURS = fileURLToPath(new URL('../bin/tcpip-ts-slirp4netns.js', import.meta.url));
const MAIN = fileURLToPath(new URL('../dist/cli/slirp4netns-main.js', import.meta.url));
const REAL = ['/usr/bin/slirp4netns', '/usr/local/bin/slirp4netns'].find((p) => existsSync(p));
const DNS_ADDRESS = '127.0.9.53';
const FEATURES = ['--netns-type', '--disable-host-loopback', '--mtu', '--enable-sandbox', '--enable-seccomp', '--enable-ipv6', '--cidr', '--outbound-addr', '--disable-dns', '--macaddress', '--userns-path', '--api-socket'];

const unavailable = deviceTestsUnavailable();
if (unavailable) console.log(`slirp4netns-cli: device cases skipped: ${unavailable}`);
if (!REAL) console.log('slirp4netns-cli: the real slirp4netns is not installed (scripts/test-deps.sh installs it); its cases are skipped');

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

let dir: string;
let resolvConf: string;
let dns: ReturnType<typeof createSocket> | undefined;
beforeAll(async () => {
  if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: build with "npx tsc -p tsconfig.json" first`);
  dir = mkdtempSync(join(tmpdir(), 's4n-'));
  resolvConf = join(dir, 'resolv.conf');
  writeFileSync(resolvConf, `nameserver ${DNS_ADDRESS}\n`);
  if (unavailable) return;
  // A DNS responder answering every A question with 127.0.0.9.
  dns = createSocket('udp4');
  dns.on('message', (q, rinfo) => {
    if (q.length < 17) return;
    let end = 12;
    while (end < q.length && q[end] !== 0) end += q[end]! + 1;
    const question = q.subarray(12, end + 5);
    const header = Buffer.from([q[0]!, q[1]!, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0]);
    const answer = Buffer.from([0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 127, 0, 0, 9]);
    dns!.send(Buffer.concat([header, question, answer]), rinfo.port, rinfo.address);
  });
  dns.bind(53, DNS_ADDRESS);
  await once(dns, 'listening');
});
afterAll(() => {
  dns?.close();
  rmSync(dir, { recursive: true, force: true });
});

interface Started {
  child: ChildProcess;
  exitFd: Writable;
  readyFd: Readable;
  stderr: () => string;
  exited: Promise<number | null>;
}

/** Starts IMPL with fd 3 as exit fd and fd 4 as ready fd, in a mount namespace seeing our resolv.conf. */
function start(impl: string, args: string[]): Started {
  const command = impl === OURS ? `exec ${JSON.stringify(process.execPath)} "$@"` : 'exec "$@"';
  const argv = impl === OURS ? [OURS, ...args] : [impl, ...args];
  const child = spawn('unshare', ['-m', 'sh', '-c', `mount --bind ${resolvConf} /etc/resolv.conf && ${command}`, 'sh', ...argv], {
    stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  cleanup.push(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
  });
  return { child, exitFd: child.stdio[3] as Writable, readyFd: child.stdio[4] as Readable, stderr: () => stderr, exited };
}

/** The ready fd's bytes up to its EOF (slirp4netns writes "1" and closes it). */
async function readyByte(s: Started, ms = 20_000): Promise<string> {
  let text = '';
  s.readyFd.on('data', (d: Buffer) => (text += d));
  const eof = once(s.readyFd, 'end');
  const timeout = new Promise((_, reject) => setTimeout(() => reject(new Error(`no ready byte within ${ms} ms; stderr: ${s.stderr()}`)), ms));
  await Promise.race([eof, timeout, s.exited.then((code) => Promise.reject(new Error(`exited ${code} before ready: ${s.stderr()}`)))]);
  return text;
}

/** A namespace holder: `unshare -n sleep`, its lo down as a fresh namespace's is. */
function holder(): ChildProcess {
  const child = spawn('unshare', ['-n', 'sleep', '600'], { stdio: 'ignore' });
  cleanup.push(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return child;
}

/** Waits until the holder has left this namespace (before that, its /proc/PID/ns/net is ours). */
async function holderReady(h: ChildProcess): Promise<void> {
  const own = readlinkSync('/proc/self/ns/net');
  await waitFor(() => {
    try {
      return readlinkSync(`/proc/${h.pid}/ns/net`) !== own;
    } catch {
      return false;
    }
  }, 5000, 'the holder to enter its own namespace');
}

async function inNs(pid: number, cmd: string, args: string[], timeout = 15_000): Promise<string> {
  const { stdout } = await run('nsenter', ['-t', String(pid), '-n', cmd, ...args], { timeout });
  return stdout;
}

async function api(path: string, request: string): Promise<unknown> {
  const conn = createConnection(path);
  await once(conn, 'connect');
  let text = '';
  conn.setEncoding('utf8');
  conn.on('data', (d: string) => (text += d));
  conn.end(request);
  await once(conn, 'close');
  return JSON.parse(text);
}

async function hostServer(): Promise<number> {
  const server = http.createServer((_, res) => res.end('host-loopback-ok'));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  cleanup.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return (server.address() as AddressInfo).port;
}

function curlFrom(pid: number, url: string): Promise<string> {
  return inNs(pid, 'curl', ['-sS', '--max-time', '4', url]);
}

function tapGone(pid: number): Promise<boolean> {
  return inNs(pid, 'ip', ['-o', 'link']).then((out) => !/\btap0\b/.test(out), () => true);
}

const IMPLS: [string, string | undefined][] = [['tcpip-ts', OURS], ['slirp4netns', REAL]];

describe('tcpip-ts-slirp4netns command line', () => {
  it('--help exits 0 and carries every feature string podman and rootlesskit look for; --version', async () => {
    const help = await run(process.execPath, [OURS, '--help']);
    for (const f of FEATURES) expect(help.stdout).toContain(f);
    const short = await run(process.execPath, [OURS, '-h']);
    expect(short.stdout).toBe(help.stdout);
    const version = await run(process.execPath, [OURS, '--version']);
    expect(version.stdout).toMatch(/^tcpip-ts-slirp4netns version \d+\.\d+\.\d+/);
    const viaMain = await run(process.execPath, [fileURLToPath(new URL('../bin/tcpip-ts.js', import.meta.url)), 'slirp4netns', '--help']);
    expect(viaMain.stdout).toBe(help.stdout);
  });

  it('the installed launcher (bin/tcpip-ts-slirp4netns) answers --help from the built text, identical to Node\'s, and passes anything else to Node', async () => {
    const launcher = fileURLToPath(new URL('../bin/tcpip-ts-slirp4netns', import.meta.url));
    const help = await run(process.execPath, [OURS, '--help']);
    expect((await run(launcher, ['--help'])).stdout).toBe(help.stdout);
    expect((await run(launcher, ['-h'])).stdout).toBe(help.stdout);
    // Through a symlink, as npm installs bins.
    const link = join(dir, 'tcpip-ts-slirp4netns');
    symlinkSync(launcher, link);
    expect((await run(link, ['--help'])).stdout).toBe(help.stdout);
    expect((await run(link, ['--version'])).stdout).toMatch(/^tcpip-ts-slirp4netns version \d+\.\d+\.\d+/);
    const err = await run(link, ['--bogus', '1']).then(() => null, (e: { code: number; stderr: string }) => e);
    expect(err?.code).toBe(2);
    expect(err?.stderr).toMatch(/unrecognized option '--bogus'/);
  });

  it.skipIf(!REAL)('the real slirp4netns --help carries the same feature strings (the list is right)', async () => {
    const { stdout } = await run(REAL!, ['--help']);
    for (const f of FEATURES) expect(stdout).toContain(f);
  });

  it('refuses bad input in one line and exits non-zero: unknown flag, missing PID, bad CIDR, flags it cannot honour', async () => {
    const fail = async (args: string[], pattern: RegExp) => {
      const err = await run(process.execPath, [OURS, ...args]).then(() => null, (e: { code: number; stderr: string }) => e);
      expect(err, args.join(' ')).not.toBeNull();
      expect(err!.code).toBe(2);
      expect(err!.stderr.trim().split('\n')).toHaveLength(1);
      expect(err!.stderr).toMatch(pattern);
    };
    await fail(['--bogus', '1'], /unrecognized option '--bogus'/);
    await fail(['-x', '1'], /invalid option -- 'x'/);
    await fail(['999999999'], /PID 999999999: no such process/);
    await fail(['--netns-type=path', '/run/netns/does-not-exist-here'], /no such file/);
    await fail(['--cidr=10.0.2.0/33', String(process.pid)], /--cidr must be an IPv4 network/);
    await fail(['--cidr', 'banana', String(process.pid)], /--cidr must be an IPv4 network/);
    await fail(['--netns-type=bogus', String(process.pid)], /--netns-type must be pid or path/);
    await fail(['--mtu=9', String(process.pid)], /--mtu must be an integer/);
    await fail(['--disable-dns', String(process.pid)], /--disable-dns: .*not supported|cannot be turned off/);
    await fail(['--outbound-addr=127.0.0.1', String(process.pid)], /--outbound-addr: /);
    await fail(['--userns-path=/proc/self/ns/user', String(process.pid)], /--userns-path: /);
    await fail([], /missing PID\|PATH/);
  });
});

for (const [label, impl] of IMPLS) {
  if (impl && impl !== OURS) console.log(`slirp4netns-cli: "ends when the target process exits" skipped for ${label}: Debian's slirp4netns 1.2.0 keeps serving after its target exits`);
  describe.skipIf(!!unavailable || !impl)(`${label}: started as podman and rootlesskit start it`, () => {
    it('by PID with -c -e 3 -r 4 --api-socket: ready byte, address, route, lo, DNS, host loopback, API, forward; exit-fd EOF ends it leaving nothing', { timeout: 60_000 }, async () => {
      const h = holder();
      await holderReady(h);
      const sock = join(dir, `api-${label}.sock`);
      const s = start(impl!, ['-c', '-e', '3', '-r', '4', '--api-socket', sock, String(h.pid), 'tap0']);
      expect(await readyByte(s)).toBe('1');

      expect(await inNs(h.pid!, 'ip', ['-o', '-4', 'addr', 'show', 'dev', 'tap0'])).toMatch(/inet 10\.0\.2\.100\/24/);
      expect(await inNs(h.pid!, 'ip', ['route', 'show', 'default'])).toMatch(/default via 10\.0\.2\.2 dev tap0/);
      expect(await inNs(h.pid!, 'ip', ['-o', 'link', 'show', 'lo'])).toMatch(/<[^>]*\bUP\b/);
      expect(await inNs(h.pid!, 'busybox', ['nslookup', 'probe.test', '10.0.2.3'])).toMatch(/127\.0\.0\.9/);

      const port = await hostServer();
      expect(await curlFrom(h.pid!, `http://10.0.2.2:${port}/`)).toBe('host-loopback-ok');

      // The API socket.
      const guest = spawn('nsenter', ['-t', String(h.pid), '-n', 'python3', '-m', 'http.server', '80', '--bind', '10.0.2.100'], { stdio: 'ignore', cwd: dir });
      cleanup.push(() => void guest.kill('SIGKILL'));
      writeFileSync(join(dir, 'index.html'), 'guest-ok');
      const hostPort = 20000 + (process.pid % 10000) + (impl === OURS ? 0 : 1);
      const added = (await api(sock, JSON.stringify({ execute: 'add_hostfwd', arguments: { proto: 'tcp', host_addr: '127.0.0.1', host_port: hostPort, guest_port: 80 } }))) as { return: { id: number } };
      const id = added.return.id;
      expect(id).toBeTypeOf('number');
      // slirp4netns answers list_hostfwd without the "return" wrapper (its api.c); so do we.
      const list = (await api(sock, '{"execute":"list_hostfwd"}')) as { entries: unknown[] };
      expect(list.entries).toContainEqual({ id, proto: 'tcp', host_addr: '127.0.0.1', host_port: hostPort, guest_addr: '10.0.2.100', guest_port: 80 });
      await waitFor(async () => (await run('curl', ['-sS', '--max-time', '2', `http://127.0.0.1:${hostPort}/index.html`]).then((r) => r.stdout, () => '')) === 'guest-ok', 10_000, 'the forward');
      const bad = (await api(sock, '{"execute": "add_hostfwd", ')) as { error?: { desc: string } };
      expect(bad.error?.desc).toMatch(/JSON/);
      expect(await api(sock, JSON.stringify({ execute: 'remove_hostfwd', arguments: { id } }))).toEqual({ return: {} });
      expect(await api(sock, '{"execute":"list_hostfwd"}')).toEqual({ entries: [] });
      if (impl === OURS) {
        const info = (await api(sock, '{"execute":"get_info"}')) as { return: { net: Record<string, unknown> } };
        expect(info.return.net).toMatchObject({ mtu: 1500, cidr: '10.0.2.0/24', ip: '10.0.2.100', gateway: '10.0.2.2', dns: '10.0.2.3' });
      }

      s.exitFd.end();
      (s.exitFd as unknown as { destroy(): void }).destroy();
      expect(await s.exited).toBe(0);
      expect(existsSync(sock)).toBe(false);
      expect(await tapGone(h.pid!)).toBe(true);
    });

    it('by --netns-type=path on an `ip netns add` namespace, --disable-host-loopback refuses the host; SIGTERM ends it', { timeout: 60_000 }, async () => {
      const ns = await Netns.create('s4n');
      cleanup.push(() => ns.delete());
      await ns.exec('ip', ['link', 'set', 'lo', 'down']);
      const nsHolder = ns.spawn('sleep', ['600']);
      await waitFor(() => nsHolder.pid !== undefined, 5000, 'holder');
      const s = start(impl!, ['--configure', '--ready-fd=4', '--mtu=65520', '--disable-host-loopback', '--netns-type=path', ns.path, 'tap0']);
      expect(await readyByte(s)).toBe('1');
      expect(await ns.exec('ip', ['-o', 'link', 'show', 'tap0'])).toMatch(/mtu 65520/);
      expect(await ns.exec('ip', ['-o', 'link', 'show', 'lo'])).toMatch(/<[^>]*\bUP\b/);
      const port = await hostServer();
      const refused = await ns.exec('curl', ['-sS', '--max-time', '3', `http://10.0.2.2:${port}/`]).then(() => 'reached', () => 'refused');
      expect(refused).toBe('refused');
      // Nothing written on the host for the named namespace.
      expect(existsSync(`/etc/netns/${ns.name}`)).toBe(false);
      s.child.kill('SIGTERM');
      const code = await s.exited;
      expect(impl === OURS ? code : 0).toBe(0);
      expect(await ns.exec('ip', ['-o', 'link']).then((o) => /\btap0\b/.test(o))).toBe(false);
    });

    // Debian's slirp4netns 1.2.0 keeps serving after its target exits (the
    // TAP holds the namespace) until its runtime kills it; ours stops, which
    // the issue asks for, so this case is ours only.
    it.skipIf(impl !== OURS)('ends when the target process exits', { timeout: 60_000 }, async () => {
      const h = holder();
      await holderReady(h);
      // TAPNAME given: Debian's slirp4netns 1.2.0 still requires it (ours defaults to tap0).
      const s = start(impl!, ['-c', '-r', '4', String(h.pid), 'tap0']);
      expect(await readyByte(s)).toBe('1');
      h.kill('SIGKILL');
      const code = await Promise.race([s.exited, new Promise((r) => setTimeout(() => r('still running'), 10_000))]);
      expect(code).not.toBe('still running');
    });

    it('--cidr and --macaddress: guest .100, host .2 as route and host loopback, DNS .3, the TAP\'s MAC', { timeout: 60_000 }, async () => {
      const h = holder();
      await holderReady(h);
      const s = start(impl!, ['-c', '-e', '3', '-r', '4', '--cidr=10.77.0.0/24', '--macaddress=02:aa:bb:cc:dd:ee', String(h.pid), 'tap0']);
      expect(await readyByte(s)).toBe('1');
      expect(await inNs(h.pid!, 'ip', ['-o', '-4', 'addr', 'show', 'dev', 'tap0'])).toMatch(/inet 10\.77\.0\.100\/24/);
      expect(await inNs(h.pid!, 'ip', ['-o', 'link', 'show', 'tap0'])).toMatch(/link\/ether 02:aa:bb:cc:dd:ee/);
      expect(await inNs(h.pid!, 'ip', ['route', 'show', 'default'])).toMatch(/default via 10\.77\.0\.2 dev tap0/);
      expect(await inNs(h.pid!, 'busybox', ['nslookup', 'probe.test', '10.77.0.3'])).toMatch(/127\.0\.0\.9/);
      const port = await hostServer();
      expect(await curlFrom(h.pid!, `http://10.77.0.2:${port}/`)).toBe('host-loopback-ok');
      s.exitFd.end();
      (s.exitFd as unknown as { destroy(): void }).destroy();
      expect(await s.exited).toBe(0);
    });

    it('a stale API socket file (what --enable-sandbox leaves) is replaced; ours refuses a live one in one line', { timeout: 60_000 }, async () => {
      const h = holder();
      await holderReady(h);
      const sock = join(dir, `stale-${label}.sock`);
      // A socket file whose process is gone: bound, never unlinked.
      await run('python3', ['-c', 'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])', sock]);
      expect(existsSync(sock)).toBe(true);
      const s = start(impl!, ['-c', '-e', '3', '-r', '4', '--api-socket', sock, String(h.pid), 'tap0']);
      expect(await readyByte(s)).toBe('1');
      expect(await api(sock, '{"execute":"list_hostfwd"}')).toEqual({ entries: [] });
      if (impl === OURS) {
        const h2 = holder();
        await holderReady(h2);
        const second = start(impl!, ['-c', '-r', '4', '--api-socket', sock, String(h2.pid), 'tap0']);
        expect(await second.exited).toBe(1);
        expect(second.stderr().trim().split('\n')).toHaveLength(1);
        expect(second.stderr()).toMatch(/another process listens there/);
        expect(await tapGone(h2.pid!)).toBe(true);
        // The first still answers.
        expect(await api(sock, '{"execute":"list_hostfwd"}')).toEqual({ entries: [] });
      }
      s.exitFd.end();
      (s.exitFd as unknown as { destroy(): void }).destroy();
      expect(await s.exited).toBe(0);
    });

    it('a TAP name in use: one-line error, non-zero exit, the existing device left alone', { timeout: 30_000 }, async () => {
      const h = holder();
      await holderReady(h);
      // A device of another kind holds the name, so the TAP cannot be made.
      await inNs(h.pid!, 'ip', ['link', 'add', 'tap0', 'type', 'veth', 'peer', 'name', 'tap0peer']);
      const s = start(impl!, ['-c', '-r', '4', String(h.pid), 'tap0']);
      const code = await s.exited;
      expect(code).not.toBe(0);
      if (impl === OURS) expect(s.stderr().trim().split('\n')).toHaveLength(1);
      expect(s.stderr()).toMatch(/tap0|TUNSETIFF|busy|exists/i);
      expect(await inNs(h.pid!, 'ip', ['-o', 'link', 'show', 'tap0'])).toMatch(/tap0/);
    });
  });
}


