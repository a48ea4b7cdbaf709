/**
 * Podman 4.3 with `--network slirp4netns`, rootful and rootless (as a user
 * the test makes, which exists only in podman's private mount namespace), its helper named by
 * containers.conf's network_cmd_path: once the real slirp4netns (which proves
 * the test) and once tcpip-ts's slirp4netns-compatible command
 * (bin/tcpip-ts-slirp4netns, the launcher users install; build with `npx tsc -p tsconfig.json`).
 *
 * Podman and its image are isolated from the host's (test/support/containers.ts).
 * Traffic stays on this machine: host loopback is a server on 127.0.0.1, the
 * port forwards listen on 127.0.0.1, and DNS at 10.0.2.3 is forwarded to a
 * DNS responder of the test's on 127.0.11.53 (the helper runs in a mount
 * namespace whose /etc/resolv.conf names it).
 */
import { execFileSync } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IMAGE, Podman, podmanUnavailable, rootlessUnavailable } from './support/containers.js';
import { waitFor } from './support/netns.js';

const OURS = fileURLToPath(new URL('../bin/tcpip-ts-slirp4netns', import.meta.url));
const OURS_MAIN = fileURLToPath(new URL('../dist/cli/slirp4netns-main.js', import.meta.url));
const REAL = ['/usr/bin/slirp4netns', '/usr/local/bin/slirp4netns'].find((p) => existsSync(p));
const DNS_ADDRESS = '127.0.11.53';

const unavailable = podmanUnavailable();
if (unavailable) console.log(`podman: skipped: ${unavailable}`);
const rootlessSkip = unavailable ? null : rootlessUnavailable();
if (rootlessSkip) console.log(`podman: the rootless half is skipped: ${rootlessSkip}`);
if (!REAL) console.log('podman: the real slirp4netns is not installed (scripts/test-deps.sh installs it); its half is skipped');
if (!existsSync(OURS_MAIN)) console.log(`podman: ${OURS_MAIN} is missing (npx tsc -p tsconfig.json); the tcpip-ts half is skipped`);

const helpers: [string, string | undefined][] = [
  ['slirp4netns', REAL],
  ['tcpip-ts', existsSync(OURS_MAIN) ? OURS : undefined],
];
/** Each helper rootful, then rootless (as a user made by the test, in a private mount namespace). */
const cases: [string, string, string | undefined, boolean][] = [
  ...helpers.map(([n, h]): [string, string, string | undefined, boolean] => ['rootful', n, h, false]),
  ...helpers.map(([n, h]): [string, string, string | undefined, boolean] => ['rootless', n, h, true]),
];

let dir: string;
let resolvConf: string;
let dns: ReturnType<typeof createSocket> | undefined;
let hostServer: http.Server | undefined;
let hostPort = 0;
beforeAll(async () => {
  if (unavailable) return;
  dir = mkdtempSync(join(tmpdir(), 'podman-dns-'));
  resolvConf = join(dir, 'resolv.conf');
  writeFileSync(resolvConf, `nameserver ${DNS_ADDRESS}\n`);
  // Answers A questions with 127.0.0.9, anything else with no answer.
  dns = createSocket('udp4');
  dns.on('message', (q, rinfo) => {
    if (q.length < 17) return;
    let end = 12;
    while (end < q.length && q[end] !== 0) end += q[end]! + 1;
    const question = q.subarray(12, end + 5);
    const isA = q[end + 1] === 0 && q[end + 2] === 1;
    const header = Buffer.from([q[0]!, q[1]!, 0x81, 0x80, 0, 1, 0, isA ? 1 : 0, 0, 0, 0, 0]);
    const answer = isA ? Buffer.from([0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 127, 0, 0, 9]) : Buffer.alloc(0);
    dns!.send(Buffer.concat([header, question, answer]), rinfo.port, rinfo.address);
  });
  dns.bind(53, DNS_ADDRESS);
  await once(dns, 'listening');
  hostServer = http.createServer((_req, res) => res.end('host loopback\n'));
  hostServer.listen(0, '127.0.0.1');
  await once(hostServer, 'listening');
  hostPort = (hostServer.address() as AddressInfo).port;
});
afterAll(() => {
  dns?.close();
  hostServer?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** A free TCP port on 127.0.0.1 (closed again before podman binds it). */
async function freePort(): Promise<number> {
  const s = http.createServer();
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  const port = (s.address() as AddressInfo).port;
  s.close();
  return port;
}

/** One container run that reports what the network looks like from inside. */
const PROBE = (hostPort: number, v6: boolean) => [
  'sh', '-c', [
    'echo == ADDR; ip -4 addr show tap0',
    'echo == ROUTE; ip route',
    // SLAAC from the helper's router advertisement takes a moment.
    v6 ? 'i=0; while [ $i -lt 50 ] && ! ip -6 addr show tap0 scope global | grep -q inet6; do sleep 0.1; i=$((i+1)); done; echo == ADDR6; ip -6 addr show tap0 scope global; echo == ROUTE6; ip -6 route' : 'true',
    'echo == RESOLV; cat /etc/resolv.conf',
    'echo == DNS; nslookup -type=a probe.test 10.0.2.3 2>&1',
    // nc, not wget: Debian's static busybox wget crashes (static glibc's resolver).
    `echo == LOOPBACK; printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 10.0.2.2 ${hostPort} 2>&1; echo LOOPBACK-EXIT=$?`,
  ].join('; '),
];

function section(out: string, name: string): string {
  const start = out.indexOf(`== ${name}\n`);
  if (start < 0) return '';
  const body = out.slice(start + name.length + 4);
  const end = body.indexOf('\n== ');
  return end < 0 ? body : body.slice(0, end + 1);
}

describe.each(cases)('%s podman --network slirp4netns with %s', (_mode, name, helper, rootless) => {
  const skip = unavailable ?? (rootless ? rootlessSkip : null) ?? (helper ? null : `${name} is not available`);
  let podman: Podman;
  beforeAll(async () => {
    if (skip) return;
    podman = await Podman.create({ helper: helper!, resolvConf, rootless });
  }, 120_000);
  afterAll(async () => {
    await podman?.dispose();
  }, 60_000);

  it.skipIf(skip)('default: 10.0.2.100 with its broadcast address, default route via 10.0.2.2, DNS at 10.0.2.3 answers, host loopback refused', async () => {
    const { stdout } = await podman.run(['run', '--rm', '--network', 'slirp4netns', IMAGE, ...PROBE(hostPort, false)]);
    expect(section(stdout, 'ADDR')).toMatch(/inet 10\.0\.2\.100\/24 brd 10\.0\.2\.255 /);
    expect(section(stdout, 'ROUTE')).toMatch(/^default via 10\.0\.2\.2 dev tap0/m);
    expect(section(stdout, 'RESOLV')).toMatch(/^nameserver 10\.0\.2\.3$/m);
    expect(section(stdout, 'DNS')).toMatch(/Address:\s*127\.0\.0\.9/);
    expect(section(stdout, 'LOOPBACK')).not.toContain('host loopback');
    expect(section(stdout, 'LOOPBACK')).toMatch(/LOOPBACK-EXIT=[1-9]/);
    expect(stdout).not.toContain('Segmentation');
  }, 90_000);

  it.skipIf(skip)('mtu=65520, allow_host_loopback=true, enable_ipv6=true: the MTU, host loopback and an fd00::/64 address', async () => {
    const { stdout } = await podman.run(['run', '--rm', '--network', 'slirp4netns:mtu=65520,allow_host_loopback=true,enable_ipv6=true', IMAGE,
      'sh', '-c', `echo == MTU; cat /sys/class/net/tap0/mtu; ${PROBE(hostPort, true)[2]}`]);
    expect(section(stdout, 'MTU').trim()).toBe('65520');
    expect(section(stdout, 'ADDR')).toMatch(/inet 10\.0\.2\.100\/24/);
    expect(section(stdout, 'ADDR6')).toMatch(/inet6 fd00::[0-9a-f:]+\/64/);
    expect(section(stdout, 'ROUTE6')).toMatch(/default via fe80::/);
    expect(section(stdout, 'LOOPBACK')).toContain('host loopback');
  }, 90_000);

  for (const handler of ['rootlessport', 'slirp4netns']) {
    it.skipIf(skip)(`-p 127.0.0.1:PORT:80 serves the container's httpd from the host (port_handler=${handler}); rm leaves no helper`, async () => {
      const port = await freePort();
      const net = handler === 'rootlessport' ? 'slirp4netns' : 'slirp4netns:port_handler=slirp4netns';
      const { stdout } = await podman.run(['run', '-d', '--network', net, '-p', `127.0.0.1:${port}:80`, IMAGE, 'httpd', '-f', '-p', '80', '-h', '/www']);
      const id = stdout.trim();
      try {
        let body = '';
        await waitFor(async () => {
          body = await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(2000) }).then((r) => r.text(), () => '');
          return body !== '';
        }, 20_000, `the forwarded port ${port}`);
        expect(body).toBe('hello from the container\n');
        expect(await podman.helperPids(helper!)).not.toEqual([]);
      } finally {
        await podman.run(['stop', '-t', '1', id]);
        await podman.run(['rm', '-f', id]);
      }
      await waitFor(async () => (await podman.helperPids(helper!)).length === 0, 10_000, 'the helper to exit after podman rm');
      expect(await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(2000) }).then(() => 'served', () => 'refused')).toBe('refused');
    }, 90_000);
  }
});

describe('podman test isolation', () => {
  it.skipIf(unavailable)('leaves no podman-t storage mounted', () => {
    const mounts = execFileSync('cat', ['/proc/self/mounts']).toString();
    expect(mounts).not.toMatch(/\/podman-t-/);
  });
});
