/**
 * rootlesskit 1.1 with `--net=slirp4netns --slirp4netns-binary=HELPER`, once
 * with the real slirp4netns (proves the test) and once with tcpip-ts's
 * slirp4netns-compatible command, under both port drivers (slirp4netns's API
 * socket and rootlesskit's builtin one), a port added with `rootlessctl
 * add-ports` over rootlesskit's API socket.
 *
 * rootlesskit needs a subuid range for root: it runs in a private mount
 * namespace (unshare -m) whose /etc/subuid and /etc/subgid are bind mounts of
 * files the test writes, so the host's files are never changed. Traffic stays
 * on loopback: the host-loopback server and the forwarded port are on 127.0.0.1.
 */
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BUSYBOX } from './support/containers.js';
import { waitFor } from './support/netns.js';

const run = promisify(execFile);
const OURS = fileURLToPath(new URL('../bin/tcpip-ts-slirp4netns', import.meta.url));
const OURS_MAIN = fileURLToPath(new URL('../dist/cli/slirp4netns-main.js', import.meta.url));
const REAL = ['/usr/bin/slirp4netns', '/usr/local/bin/slirp4netns'].find((p) => existsSync(p));

function why(): string | null {
  if (process.getuid?.() !== 0) return 'not root (scripts/test-deps.sh installs rootlesskit as root)';
  for (const p of ['/usr/bin/rootlesskit', '/usr/bin/rootlessctl', '/usr/bin/newuidmap']) {
    if (!existsSync(p)) return `${p} is missing (scripts/test-deps.sh installs rootlesskit and uidmap)`;
  }
  if (!existsSync('/etc/subuid') || !existsSync('/etc/subgid')) return '/etc/subuid or /etc/subgid is missing (the bind mount needs them to exist)';
  return null;
}
const unavailable = why();
if (unavailable) console.log(`rootlesskit: skipped: ${unavailable}`);
if (!existsSync(OURS_MAIN)) console.log(`rootlesskit: ${OURS_MAIN} is missing (npx tsc -p tsconfig.json); the tcpip-ts half is skipped`);

let dir: string;
let hostServer: http.Server | undefined;
let hostPort = 0;
beforeAll(async () => {
  if (unavailable) return;
  dir = mkdtempSync(join(tmpdir(), 'rk-t-'));
  writeFileSync(join(dir, 'subuid'), 'root:200000:65536\n');
  writeFileSync(join(dir, 'subgid'), 'root:200000:65536\n');
  writeFileSync(join(dir, 'index.html'), 'hello from the child\n');
  hostServer = http.createServer((_req, res) => res.end('host loopback\n'));
  hostServer.listen(0, '127.0.0.1');
  await once(hostServer, 'listening');
  hostPort = (hostServer.address() as AddressInfo).port;
});
afterAll(() => {
  hostServer?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function freePort(): Promise<number> {
  const s = http.createServer();
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  const port = (s.address() as AddressInfo).port;
  s.close();
  return port;
}

const cases: [string, string, string | undefined][] = [];
for (const [name, helper] of [['slirp4netns', REAL], ['tcpip-ts', existsSync(OURS_MAIN) ? OURS : undefined]] as const) {
  for (const driver of ['slirp4netns', 'builtin']) cases.push([name, driver, helper]);
}

describe.each(cases)('rootlesskit --net=slirp4netns with %s, --port-driver=%s', (name, driver, helper) => {
  const skip = unavailable ?? (helper ? null : `${name} is not available`);
  it.skipIf(skip)('the child gets 10.0.2.100 and a default route, no host loopback, and an added port serves the child', async () => {
    const state = join(dir, `state-${name}-${driver}`);
    const done = join(dir, `done-${name}-${driver}`);
    const child = [
      `echo == ADDR; ip -4 addr show tap0; echo == ROUTE; ip route`,
      `echo == LOOPBACK; printf 'GET / HTTP/1.0\\r\\n\\r\\n' | ${BUSYBOX} nc -w 3 10.0.2.2 ${hostPort} 2>&1; echo LOOPBACK-EXIT=$?`,
      `${BUSYBOX} httpd -f -p 8080 -h ${dir} & echo == READY`,
      // Bounded: at most 30 s, then the child ends whatever the parent does.
      `i=0; while [ $i -lt 300 ] && [ ! -e ${done} ]; do sleep 0.1; i=$((i+1)); done; kill $!`,
    ].join('; ');
    const script = `mount --bind ${dir}/subuid /etc/subuid && mount --bind ${dir}/subgid /etc/subgid || exit 1
exec rootlesskit --net=slirp4netns --slirp4netns-binary="$0" --port-driver=${driver} --disable-host-loopback --state-dir=${state} sh -c "$1"`;
    const proc = spawn('unshare', ['-m', '--propagation', 'private', 'sh', '-c', script, helper!, child], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
    proc.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const exited = once(proc, 'exit');
    try {
      await waitFor(() => out.includes('== READY') || proc.exitCode !== null, 20_000, 'the child to start');
      expect(out, err).toContain('== READY');
      expect(out).toMatch(/inet 10\.0\.2\.100\/24/);
      expect(out).toMatch(/^default via 10\.0\.2\.2 dev tap0/m);
      expect(out).not.toContain('host loopback');
      expect(out).toMatch(/LOOPBACK-EXIT=[1-9]/);
      const port = await freePort();
      await run('rootlessctl', ['--socket', join(state, 'api.sock'), 'add-ports', `127.0.0.1:${port}:8080/tcp`]);
      let body = '';
      await waitFor(async () => {
        body = await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(2000) }).then((r) => r.text(), () => '');
        return body !== '';
      }, 10_000, `the forwarded port ${port}`);
      expect(body).toBe('hello from the child\n');
    } finally {
      writeFileSync(done, '');
      const timer = setTimeout(() => proc.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
    // rootlesskit kills the helper when the child exits.
    await waitFor(async () => !(await run('ps', ['-eo', 'args=']).then((r) => r.stdout)).split('\n').some((l) => l.includes(helper!) && l.includes('tap0')), 10_000, 'the helper to exit');
  }, 60_000);
});
