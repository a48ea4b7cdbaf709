/**
 * The built `tcpip-ts` command (bin/tcpip-ts.js → dist/cli/main.js; run
 * `npx tsc -p tsconfig.json` first). Every flow the gateway under test opens
 * goes to this machine's 127.0.0.1 (host loopback, a -p forward), and the one
 * name looked up is answered from --hosts-file, so nothing leaves the host.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { deviceTestsUnavailable, Netns, waitFor } from './support/netns.js';

const BIN = fileURLToPath(new URL('../bin/tcpip-ts.js', import.meta.url));
const MAIN = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

beforeAll(() => {
  if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: build with "npx tsc -p tsconfig.json" first`);
});

function cli(args: string[]): ChildProcess {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  cleanup.push(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return child;
}

async function cliResult(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = cli(args);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d));
  child.stderr!.on('data', (d: Buffer) => (stderr += d));
  const [code] = (await once(child, 'close')) as [number | null];
  return { code, stdout, stderr };
}

const FLAGS = ['--netns', '--pid', '--tap', '--mtu', '-p', '--publish', '--allow', '--deny', '--host-loopback', '--enable-ipv6', '--hosts-file', '--pcap', '--api-socket', '--no-configure', '--help'];

describe('tcpip-ts command line', () => {
  it('--help documents every flag and exits 0', async () => {
    const { code, stdout } = await cliResult(['gateway', '--help']);
    expect(code).toBe(0);
    for (const flag of FLAGS) expect(stdout).toMatch(new RegExp(`(^|[\\s,])${flag}\\b`, 'm'));
    const top = await cliResult(['--help']);
    expect(top.code).toBe(0);
    expect(top.stdout).toMatch(/^\s+gateway\s/m);
  });

  it('exits 2 naming an unknown flag, a bad value, or a missing target', async () => {
    const unknown = await cliResult(['gateway', '--netns', '/run/netns/x', '--bogus-flag']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/unknown option --bogus-flag/);
    const missing = await cliResult(['gateway', '--tap', 'tap0']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/--netns PATH or --pid PID/);
    const mtu = await cliResult(['gateway', '--pid', String(process.pid), '--mtu', '9']);
    expect(mtu.code).toBe(2);
    expect(mtu.stderr).toMatch(/--mtu must be an integer from 576 to 65520/);
    const rule = await cliResult(['gateway', '--pid', String(process.pid), '--deny', 'tcp:nowhere:80']);
    expect(rule.code).toBe(2);
    expect(rule.stderr).toMatch(/--deny tcp:nowhere:80: /);
    const fwd = await cliResult(['gateway', '--pid', String(process.pid), '-p', '8080']);
    expect(fwd.code).toBe(2);
    expect(fwd.stderr).toMatch(/-p 8080: expected \[HOSTADDR:\]HOSTPORT\[-END\]:GUESTPORT/);
    const both = await cliResult(['gateway', '--pid', String(process.pid), '--netns', '/run/netns/x']);
    expect(both.code).toBe(2);
    const bogusCommand = await cliResult(['gatway']);
    expect(bogusCommand.code).toBe(2);
    expect(bogusCommand.stderr).toMatch(/unknown command "gatway"/);
    for (const r of [unknown, missing, mtu, rule, fwd, both]) expect(r.stdout).toBe('');
  });
});

const skip = deviceTestsUnavailable();
if (skip) console.warn(`cli.test.ts: namespace tests skipped: ${skip}`);

describe.skipIf(skip)('tcpip-ts gateway in a namespace (root)', () => {
  it('configures the namespace, carries host loopback, DNS and a forward, and cleans up on SIGTERM', async () => {
    const ns = await Netns.create('cli');
    cleanup.push(() => ns.delete());

    const app = http.createServer((req, res) => res.end(`host hello to ${req.socket.remoteAddress}`));
    app.listen(0, '127.0.0.1');
    await once(app, 'listening');
    cleanup.push(() => void app.close());
    const hostPort = (app.address() as AddressInfo).port;

    const dir = mkdtempSync(join(tmpdir(), 'tcpip-ts-cli-'));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    const hostsFile = join(dir, 'hosts');
    writeFileSync(hostsFile, '# test names\n10.0.2.2 host.cli.test\n');

    const child = cli(['gateway', '--netns', ns.path, '--host-loopback', '--hosts-file', hostsFile, '-p', '0:8000', '--pcap', join(dir, 'tap.pcap')]);
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d));
    child.stderr!.on('data', (d: Buffer) => (stderr += d));
    const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
    await waitFor(() => stdout.includes('\n') || child.exitCode !== null, 15_000, `the ready line (stderr: ${stderr})`);
    const m = /^ready tap0 10\.0\.2\.100\/24 via 10\.0\.2\.2 dns 10\.0\.2\.3 forward tcp 127\.0\.0\.1:(\d+)->8000\n$/.exec(stdout);
    expect(m, `stdout ${JSON.stringify(stdout)} stderr ${JSON.stringify(stderr)}`).not.toBeNull();
    const forwardPort = Number(m![1]);

    expect(await ns.exec('ip', ['-4', 'addr', 'show', 'dev', 'tap0'])).toMatch(/inet 10\.0\.2\.100\/24 /);
    expect(await ns.exec('ip', ['route', 'show', 'default'])).toMatch(/^default via 10\.0\.2\.2 dev tap0/m);
    const resolvConf = `/etc/netns/${ns.name}/resolv.conf`;
    expect(existsSync(resolvConf)).toBe(true);

    // Host loopback through the gateway address.
    const body = await ns.exec('curl', ['-sS', '-m', '10', `http://10.0.2.2:${hostPort}/`]);
    expect(body).toBe('host hello to 127.0.0.1');

    // DNS at 10.0.2.3 (resolv.conf bind-mounted by ip netns exec), answered from --hosts-file.
    expect(await ns.exec('getent', ['ahostsv4', 'host.cli.test'])).toMatch(/^10\.0\.2\.2\s+STREAM host\.cli\.test/m);
    expect(await ns.exec('curl', ['-sS', '-m', '10', `http://host.cli.test:${hostPort}/`])).toBe('host hello to 127.0.0.1');

    // A forward: 127.0.0.1:forwardPort on the host → 10.0.2.100:8000 in the namespace.
    const guest = ns.spawn(process.execPath, ['-e', "require('http').createServer((q, s) => s.end('guest hello')).listen(8000, '10.0.2.100')"]);
    cleanup.push(() => void guest.kill('SIGKILL'));
    const get = () => new Promise<string>((resolve, reject) => {
      http.get({ host: '127.0.0.1', port: forwardPort, agent: false }, (res) => {
        let t = '';
        res.on('data', (d: Buffer) => (t += d));
        res.on('end', () => resolve(t));
      }).on('error', reject);
    });
    let reply = '';
    await waitFor(async () => {
      reply = await get().catch(() => '');
      return reply !== '';
    }, 10_000, 'the forwarded guest server');
    expect(reply).toBe('guest hello');

    child.kill('SIGTERM');
    const [code, signal] = await exited;
    expect({ code, signal, stderr }).toEqual({ code: 0, signal: null, stderr: '' });
    expect(existsSync(resolvConf)).toBe(false);
    expect(await ns.exec('ip', ['link', 'show'])).not.toMatch(/tap0/);
    expect(existsSync(join(dir, 'tap.pcap'))).toBe(true);
  }, 60_000);
});
