#!/usr/bin/env node
// What a podman user feels of the network helper: `podman run --rm IMAGE true`
// wall time, bulk TCP into and out of a container (MTU 65520 and 1500) and
// TCP connections per second from a container, with tcpip-ts-slirp4netns and
// with Debian's slirp4netns as podman's `network_cmd_path`, and podman's own
// pasta where this podman can drive it (podman 4.3 cannot: --network pasta
// arrived in 4.4; the row says so).
//
// `node bench/containers.js [--rounds N] [--seconds S] [--json FILE]` (root).
// Rootful podman, isolated from the host's configuration and storage the way
// test/support/containers.ts does it; the image is busybox plus the host's
// /usr mounted read-only, so iperf3 and node run inside the container without
// a registry. All traffic goes to servers on the host's 127.0.0.1, reached
// from the container at 10.0.2.2 (allow_host_loopback=true). Measurements of
// the helpers alternate round by round, so both see the same machine load.
import { execFile, execFileSync, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { homedir, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { parseArgs } from 'node:util';

const run = promisify(execFile);
const OURS = fileURLToPath(new URL('../bin/tcpip-ts-slirp4netns', import.meta.url));
const REAL = ['/usr/bin/slirp4netns', '/usr/local/bin/slirp4netns'].find((p) => existsSync(p));
const IMAGE = 'localhost/tcpip-ts-bench:host-usr';

const { values: args } = parseArgs({
  options: { rounds: { type: 'string', default: '3' }, seconds: { type: 'string', default: '4' }, json: { type: 'string' } },
});
const rounds = Number(args.rounds);
const seconds = Number(args.seconds);

function fatal(msg) {
  console.error(`bench/containers: ${msg}`);
  process.exit(1);
}
if (process.getuid?.() !== 0) fatal('run as root (rootful podman creates the container namespaces)');
for (const tool of ['podman', 'runc', 'conmon', 'iperf3', 'busybox']) {
  try {
    execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
  } catch {
    fatal(`${tool} is not installed: sudo bash scripts/test-deps.sh`);
  }
}
if (!existsSync(fileURLToPath(new URL('../dist/cli/slirp4netns-main.js', import.meta.url)))) fatal('dist/ is missing: run bash scripts/setup.sh');

/** busybox as the image's userland; /usr comes from the host at run time (Debian's /lib, /lib64 and /bin are links into it). */
function rootfs(dir) {
  const root = join(dir, 'rootfs');
  for (const d of ['bin', 'etc', 'tmp', 'proc', 'sys', 'dev', 'root', 'usr']) mkdirSync(join(root, d), { recursive: true });
  execFileSync('cp', ['/bin/busybox', join(root, 'bin/busybox')]);
  for (const a of ['sh', 'true', 'seq', 'cat']) symlinkSync('busybox', join(root, 'bin', a));
  symlinkSync('usr/lib', join(root, 'lib'));
  symlinkSync('usr/lib64', join(root, 'lib64'));
  writeFileSync(join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
  writeFileSync(join(root, 'etc/group'), 'root:x:0:\n');
  chmodSync(join(root, 'tmp'), 0o1777);
  const tar = join(dir, 'rootfs.tar');
  execFileSync('tar', ['-C', root, '-cf', tar, '.']);
  return tar;
}

/** One isolated podman per helper: its own storage, run root and containers.conf. */
async function isolatedPodman(dir, helper) {
  const conf = join(dir, 'containers.conf');
  writeFileSync(conf, [
    '[containers]', 'log_driver = "k8s-file"', '',
    '[engine]', `network_cmd_path = "${helper}"`, 'cgroup_manager = "cgroupfs"', 'events_logger = "file"',
    `tmp_dir = "${join(dir, 'tmp')}"`, 'runtime = "runc"', '', '[network]', `network_config_dir = "${join(dir, 'net')}"`, '',
  ].join('\n'));
  const storage = join(dir, 'storage.conf');
  writeFileSync(storage, `[storage]\ndriver = "vfs"\ngraphroot = "${join(dir, 'root')}"\nrunroot = "${join(dir, 'runroot')}"\n`);
  writeFileSync(join(dir, 'registries.conf'), 'unqualified-search-registries = []\n');
  const env = { ...process.env, CONTAINERS_CONF: conf, CONTAINERS_STORAGE_CONF: storage, CONTAINERS_REGISTRIES_CONF: join(dir, 'registries.conf') };
  const globals = ['--root', join(dir, 'root'), '--runroot', join(dir, 'runroot'), '--storage-driver', 'vfs', '--cgroup-manager', 'cgroupfs', '--events-backend', 'file'];
  const podman = (argv, timeout = 120_000) => run('podman', [...globals, ...argv], { env, timeout, maxBuffer: 64 << 20 });
  await podman(['import', rootfs(dir), IMAGE]);
  return {
    podman,
    /** `podman run --rm` with the bench's limits and mounts; the network options after `slirp4netns:`. */
    run: (netOpts, cmd, timeout) => podman(['run', '--rm', '--ulimit', 'nofile=4096:4096', '--ulimit', 'nproc=4096:4096',
      '-v', '/usr:/usr:ro', '--network', `slirp4netns:${netOpts}`, IMAGE, ...cmd], timeout),
    dispose: async () => {
      await podman(['rm', '-af', '-t', '0']).catch(() => undefined);
      await run('sh', ['-c', `grep -o " ${dir}[^ ]*" /proc/self/mounts | sort -r | xargs -r -n1 umount -l`]).catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const ms = (t0) => Number(process.hrtime.bigint() - t0) / 1e6;
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Wall time of `podman run --rm IMAGE true`: what every short-lived container pays for its network. */
async function runTrue(p) {
  const t0 = process.hrtime.bigint();
  await p.run('mtu=65520', ['true']);
  return ms(t0);
}

/** iperf3 from inside the container to the host's 127.0.0.1 (10.0.2.2 there); reverse = host → container. */
async function bulk(p, mtu, reverse) {
  const port = 20000 + Math.floor(Math.random() * 20000);
  const server = spawn('iperf3', ['-s', '-1', '-B', '127.0.0.1', '-p', String(port)], { stdio: 'ignore' });
  try {
    await new Promise((r) => setTimeout(r, 200));
    const { stdout } = await p.run(`mtu=${mtu},allow_host_loopback=true`,
      ['iperf3', '-c', '10.0.2.2', '-p', String(port), '-t', String(seconds), '-J', ...(reverse ? ['-R'] : [])], (seconds + 60) * 1000);
    const r = JSON.parse(stdout);
    return r.end.sum_received.bits_per_second / 1e9;
  } finally {
    server.kill('SIGKILL');
  }
}

/** TCP connect, 1-byte echo, close, 8 at a time, from node in the container to a host server; connections/s. */
const CONNECT_CLIENT = `
const net = require('net');
const [host, port, seconds] = [process.argv[1], Number(process.argv[2]), Number(process.argv[3])];
let n = 0, errors = 0; const end = Date.now() + seconds * 1000;
function one() {
  if (Date.now() >= end) return Promise.resolve();
  return new Promise((resolve) => {
    const s = net.connect(port, host, () => s.write('x'));
    s.once('data', () => { n++; s.end(); });
    s.once('close', resolve);
    s.once('error', () => { errors++; });
  }).then(one);
}
const t0 = Date.now();
Promise.all(Array.from({ length: 8 }, one)).then(() => console.log(JSON.stringify({ n, errors, ms: Date.now() - t0 })));
`;
async function connRate(p) {
  const server = net.createServer((s) => s.on('data', (d) => s.write(d)).on('error', () => {}));
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  try {
    const { stdout } = await p.run('mtu=1500,allow_host_loopback=true',
      ['node', '-e', CONNECT_CLIENT, '10.0.2.2', String(server.address().port), String(seconds)], (seconds + 60) * 1000);
    const r = JSON.parse(stdout.trim().split('\n').pop());
    if (r.errors) console.error(`bench/containers: ${r.errors} connection errors`);
    return r.n / (r.ms / 1000);
  } finally {
    server.close();
  }
}

const helpers = [['tcpip-ts', OURS], ...(REAL ? [['slirp4netns', REAL]] : [])];
const figures = [
  ['podman run --rm IMAGE true, ms', runTrue],
  ['bulk host → container, MTU 65520, Gbit/s', (p) => bulk(p, 65520, true)],
  ['bulk container → host, MTU 65520, Gbit/s', (p) => bulk(p, 65520, false)],
  ['bulk host → container, MTU 1500, Gbit/s', (p) => bulk(p, 1500, true)],
  ['bulk container → host, MTU 1500, Gbit/s', (p) => bulk(p, 1500, false)],
  ['TCP connections/s from a container, 8 at a time, MTU 1500', connRate],
];

const cache = join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'tcpip-ts');
mkdirSync(cache, { recursive: true });
const instances = [];
try {
  for (const [name, helper] of helpers) instances.push([name, await isolatedPodman(mkdtempSync(join(tmpdir(), 'podman-b-')), helper)]);
  const results = new Map(figures.map(([f]) => [f, new Map(helpers.map(([h]) => [h, []]))]));
  for (const [figure, measure] of figures) {
    for (let round = 0; round < rounds; round++) {
      for (const [name, p] of instances) {
        const value = await measure(p);
        results.get(figure).get(name).push(value);
      }
    }
    const line = helpers.map(([h]) => `${h} ${median(results.get(figure).get(h)).toFixed(figure.includes('Gbit') ? 2 : 0)}`).join(', ');
    console.error(`${figure}: ${line}`);
  }
  const out = {
    date: new Date().toISOString(), loadavgAtEnd: loadavg(), rounds, seconds, podman: execFileSync('podman', ['--version']).toString().trim(),
    pasta: 'not measured: podman 4.3 has no --network pasta (added in 4.4)',
    figures: Object.fromEntries([...results].map(([f, byHelper]) => [f, Object.fromEntries([...byHelper].map(([h, xs]) => [h, { median: median(xs), runs: xs }]))])),
  };
  console.log(JSON.stringify(out));
  if (args.json) writeFileSync(args.json, `${JSON.stringify(out, null, 2)}\n`);
} finally {
  for (const [, p] of instances) await p.dispose();
}
