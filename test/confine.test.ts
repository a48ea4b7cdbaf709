/**
 * confine() (src/node/confine.ts) for real: each case runs in a child
 * process, since confinement cannot be undone. As root, a child serves a
 * network namespace this file creates with a gateway, confines itself with
 * both sandbox and seccomp, and must then fail an execve with EPERM, see an
 * empty root, and keep serving: ping and an HTTP fetch from the namespace
 * through it (to a server on this process's 127.0.0.1). Its threads are
 * checked from outside through /proc.
 *
 * Needs the built package (dist/, `npx tsc -p tsconfig.json`).
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createSocket } from 'node:dgram';
import { createServer, type Server } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { confine } from '../src/node/confine.js';
import { deviceTestsUnavailable, Netns } from './support/netns.js';

const run = promisify(execFile);
const DIST = new URL('../dist/index.js', import.meta.url).href;
const linux = process.platform === 'linux';
if (!linux) console.warn(`confine.test.ts: skipping the confinement cases: not Linux (${process.platform})`);
const skipRoot = !linux ? `not Linux (${process.platform})` : deviceTestsUnavailable();
if (linux && skipRoot) console.warn(`confine.test.ts: skipping the gateway case: ${skipRoot}`);

/** In the namespace: HTTP on 10.0.2.100:8080, UDP echo on 10.0.2.100:7007. */
const GUEST_SERVERS = `
const http = require('http'), dgram = require('dgram');
const u = dgram.createSocket('udp4');
u.on('message', (m, r) => u.send(Buffer.concat([Buffer.from('echo:'), m]), r.port, r.address));
u.bind(7007, '10.0.2.100', () => http.createServer((q, s) => s.end('guest ' + q.url)).listen(8080, '10.0.2.100', () => console.log('listening')));
`;

/** A free port below 1024 on 127.0.0.1 (root only). */
async function freePrivilegedPort(): Promise<number> {
  for (let port = 900; port < 1000; port++) {
    const s = createNetServer();
    const ok = await new Promise<boolean>((r) => s.once('error', () => r(false)).listen(port, '127.0.0.1', () => r(true)));
    await new Promise((r) => s.close(r));
    if (ok) return port;
  }
  throw new Error('no free port in 900-999 on 127.0.0.1');
}

const dir = mkdtempSync(join(tmpdir(), 'tcpip-ts-confine-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs an ES module in a child; resolves with the JSON it prints last. */
async function runModule(name: string, source: string): Promise<Record<string, unknown>> {
  const file = join(dir, name);
  writeFileSync(file, source);
  const { stdout } = await run(process.execPath, [file], { timeout: 20_000 });
  return JSON.parse(stdout.trim().split('\n').pop()!);
}

describe('confine: options', () => {
  it('bad options are a TypeError naming the option; no option asked is a no-op', () => {
    expect(() => confine(null as never)).toThrow(expect.objectContaining({ name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE', message: expect.stringContaining('"options"') }));
    expect(() => confine({ sandbox: 'yes' } as never)).toThrow(expect.objectContaining({ name: 'TypeError', message: expect.stringContaining('"sandbox" option') }));
    expect(() => confine({ seccomp: 1 } as never)).toThrow(expect.objectContaining({ name: 'TypeError', message: expect.stringContaining('"seccomp" option') }));
    expect(() => confine({ seccom: true } as never)).toThrow(expect.objectContaining({ name: 'TypeError', message: expect.stringContaining('"seccom" option') }));
    expect(() => confine({})).not.toThrow();
    expect(() => confine({ sandbox: false, seccomp: false })).not.toThrow();
  });
});

describe.skipIf(!linux)('confine: seccomp alone (no root needed)', () => {
  it('execve fails with EPERM on every thread, the rest goes on, again is harmless, a sandbox afterwards is refused', async () => {
    const result = await runModule('seccomp.mjs', `
      import { spawnSync } from 'node:child_process';
      import { Worker } from 'node:worker_threads';
      import { readFile } from 'node:fs/promises';
      import { confine } from ${JSON.stringify(DIST)};
      confine({ seccomp: true });
      const spawned = spawnSync('/bin/true').error?.code ?? 'spawned';
      const inWorker = await new Promise((resolve, reject) => {
        const w = new Worker("require('node:worker_threads').parentPort.postMessage(require('node:child_process').spawnSync('/bin/true').error?.code ?? 'spawned')", { eval: true });
        w.once('message', resolve);
        w.once('error', reject);
      });
      const read = (await readFile('/etc/hostname', 'utf8')).length > 0;
      confine({ seccomp: true });
      let later;
      try { confine({ sandbox: true }); later = 'no error'; } catch (err) { later = err.code; }
      const status = await readFile('/proc/self/status', 'utf8');
      console.log(JSON.stringify({ spawned, inWorker, read, later, seccomp: status.match(/^Seccomp:\\s*(\\d)/m)[1], nnp: status.match(/^NoNewPrivs:\\s*(\\d)/m)[1] }));
    `);
    expect(result).toEqual({ spawned: 'EPERM', inWorker: 'EPERM', read: true, later: 'ERR_INVALID_STATE', seccomp: '2', nnp: '1' });
  });
});

describe.skipIf(!!skipRoot)('confine: a gateway in sandbox and seccomp keeps serving a namespace', () => {
  let ns: Netns;
  let server: Server;
  let port = 0;
  let child: ChildProcess | undefined;
  let report: Record<string, any> = {};

  beforeAll(async () => {
    ns = await Netns.create('tcf');
    server = createServer((req, res) => res.end(`hello ${req.url}`));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as { port: number }).port;
    const file = join(dir, 'gateway.mjs');
    writeFileSync(file, `
      import { spawnSync } from 'node:child_process';
      import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
      import { lookup } from 'node:dns/promises';
      import { confine, createGateway, openTap } from ${JSON.stringify(DIST)};
      const link = openTap({ name: 'tap0', netns: ${JSON.stringify(ns.path)}, mtu: 1500 });
      const gateway = createGateway({ link, hostLoopback: true });
      await gateway.ready;
      confine({ sandbox: true, seccomp: true });
      confine({ sandbox: true, seccomp: true }); // again: harmless
      const code = (f) => { try { f(); return 'ok'; } catch (err) { return err.code; } };
      const spawned = spawnSync('/bin/true').error?.code ?? 'spawned';
      const root = readdirSync('/');
      const passwd = code(() => readFileSync('/etc/passwd'));
      const write = code(() => writeFileSync('/x', 'y'));
      const resolved = (await lookup('localhost', { family: 4 })).address;
      // New host sockets after confine: forwards listen (one below 1024: CAP_NET_BIND_SERVICE stays).
      const forwards = {};
      for (const [name, f] of [['tcp', { hostPort: 0, guestPort: 8080 }], ['udp', { protocol: 'udp', hostPort: 0, guestPort: 7007 }],
        ['privileged', { hostPort: Number(process.argv[2]), guestPort: 8080 }]]) {
        try { forwards[name] = (await gateway.addForward(f)).hostPort; } catch (err) { forwards[name] = err.code; }
      }
      console.log(JSON.stringify({ ready: true, pid: process.pid, spawned, root, passwd, write, resolved, forwards }));
      process.stdin.on('data', () => {});
      process.stdin.on('end', () => { gateway.close(); process.exit(0); });
    `);
    child = spawn(process.execPath, [file, String(await freePrivilegedPort())], { stdio: ['pipe', 'pipe', 'inherit'] });
    const lines = createInterface({ input: child.stdout! });
    report = await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('the gateway child did not report within 20 s')), 20_000);
      lines.on('line', (line) => {
        if (!line.startsWith('{')) return;
        clearTimeout(timer);
        resolve(JSON.parse(line));
      });
      child!.once('exit', (c) => reject(new Error(`the gateway child exited (${c}) before it was ready`)));
    });
    await ns.exec('ip', ['addr', 'add', '10.0.2.100/24', 'dev', 'tap0']);
    await ns.exec('ip', ['link', 'set', 'tap0', 'up']);
    await ns.exec('ip', ['route', 'add', 'default', 'via', '10.0.2.2']);
    // The servers the forwards lead to, inside the namespace.
    const servers = ns.spawn(process.execPath, ['-e', GUEST_SERVERS]);
    await new Promise<void>((resolve, reject) => {
      servers.stdout!.on('data', (d) => String(d).includes('listening') && resolve());
      servers.once('exit', (c) => reject(new Error(`the guest servers exited (${c})`)));
    });
  }, 40_000);

  afterAll(async () => {
    child?.stdin?.end();
    child?.kill('SIGKILL');
    server?.close();
    await ns?.delete();
  });

  it('after confine: execve fails with EPERM, the root is empty and read-only, names still resolve', () => {
    expect(report).toMatchObject({ ready: true, spawned: 'EPERM', passwd: 'ENOENT', write: 'EROFS', resolved: '127.0.0.1' });
    expect(report.root).toEqual(['etc']);
  });

  it('every thread has the filter and no_new_privs; every thread but at most one (Node\'s signal-blocking watchdog) has only CAP_NET_BIND_SERVICE and the new root', () => {
    const tasks = readdirSync(`/proc/${report.pid}/task`);
    expect(tasks.length).toBeGreaterThan(4);
    let full = 0;
    for (const tid of tasks) {
      const status = readFileSync(`/proc/${report.pid}/task/${tid}/status`, 'utf8');
      expect(status).toMatch(/^Seccomp:\s*2$/m);
      expect(status).toMatch(/^NoNewPrivs:\s*1$/m);
      const capEff = status.match(/^CapEff:\s*([0-9a-f]+)$/m)![1];
      if (capEff !== '0000000000000400') {
        full++;
        continue;
      }
      expect(status).toMatch(/^CapBnd:\s*0000000000000400$/m);
      // In the new mount namespace, whose root holds only etc/.
      expect(readdirSync(`/proc/${report.pid}/task/${tid}/root`)).toEqual(['etc']);
    }
    expect(full).toBeLessThanOrEqual(1);
  });

  it('the gateway keeps serving: ping to the gateway and an HTTP fetch through it from the namespace', async () => {
    const ping = await ns.exec('ping', ['-c', '2', '-W', '2', '10.0.2.2'], { timeout: 10_000 });
    expect(ping).toMatch(/2 received/);
    const body = await ns.exec('curl', ['-sS', '--max-time', '10', `http://10.0.2.2:${port}/after-confine`], { timeout: 15_000 });
    expect(body).toBe('hello /after-confine');
  });

  it('forwards added after confine listen on the host and reach the namespace: TCP, UDP, and a port below 1024', async () => {
    const { tcp, udp, privileged } = report.forwards;
    expect([typeof tcp, typeof udp, typeof privileged]).toEqual(['number', 'number', 'number']);
    for (const port of [tcp, privileged]) {
      const res = await fetch(`http://127.0.0.1:${port}/forwarded`);
      expect(await res.text()).toBe('guest /forwarded');
    }
    const sock = createSocket('udp4');
    try {
      const reply = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no UDP echo within 5 s')), 5000);
        sock.on('message', (m) => {
          clearTimeout(timer);
          resolve(String(m));
        });
        sock.send('ping', udp, '127.0.0.1');
      });
      expect(reply).toBe('echo:ping');
    } finally {
      sock.close();
    }
  });
});
