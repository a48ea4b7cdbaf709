#!/usr/bin/env node
// Where a gateway connection's cost goes: the bench's connection loop
// (gateway-client.js cps, 8 at a time, to a server on the host's loopback
// that writes 1 byte; the client ends first) through `tcpip-ts gateway` in a
// namespace this script creates and removes. Needs root. Prints per
// connection: gateway CPU (utime + stime), frames each way on the TAP (the
// kernel's counters), and with --count the event-loop work (timers,
// setImmediate, calls into wasm, frame-device calls: bench/lib/cps-counters.js).
//
//   node bench/profile-cps.js [--connections N] [--mtu 1500] [--rounds R]
//        [--count] [--strace FILE] [--cpu-prof DIR] [--perf FILE] [--root DIR]
//        [--node-arg FLAG]... [--gateway-log FILE]
//
// --strace attaches `strace -c -f -o FILE` to the gateway after the warm-up
// (syscall counts; the CPU figures then include strace's overhead). --cpu-prof writes a
// V8 CPU profile into DIR. --perf records `perf record -g` of the gateway
// (node --perf-basic-prof) into FILE.
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const here = (p) => fileURLToPath(new URL(p, import.meta.url));
const CLIENT = here('./scenarios/gateway-client.js');
const COUNTERS = here('./lib/cps-counters.js');
const CLK_TCK = 100;

const { values } = parseArgs({
  options: {
    connections: { type: 'string', default: '3000' },
    mtu: { type: 'string', default: '1500' },
    rounds: { type: 'string', default: '1' },
    count: { type: 'boolean', default: false },
    strace: { type: 'string' },
    'cpu-prof': { type: 'string' },
    perf: { type: 'string' },
    root: { type: 'string' },
    'node-arg': { type: 'string', multiple: true, default: [] },
    'gateway-log': { type: 'string' },
  },
});
// --root DIR: the gateway of another built tree (a before/after comparison).
const CLI = values.root ? `${values.root}/bin/tcpip-ts.js` : here('../bin/tcpip-ts.js');
const connections = Number(values.connections);
const mtu = Number(values.mtu);
const ns = `tt-cpsprof-${process.pid}`;
const ip = (...args) => execFileSync('ip', args, { encoding: 'utf8', timeout: 10_000 });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function cpuSeconds(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / CLK_TCK;
}

function tapPackets() {
  const link = JSON.parse(ip('-n', ns, '-s', '-j', 'link', 'show', 'tap0'))[0];
  // The namespace's tx is what the gateway reads; its rx what the gateway wrote.
  return { read: link.stats64.tx.packets, written: link.stats64.rx.packets };
}

function runClient(port, seconds, max) {
  return new Promise((resolve, reject) => {
    const child = spawn('ip', ['netns', 'exec', ns, process.execPath, CLIENT, 'cps', '10.0.2.2', String(port), String(seconds), String(max), '8'],
      { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), (seconds + 15) * 1000);
    child.on('exit', () => {
      clearTimeout(timer);
      try {
        resolve(JSON.parse(out.trim().split('\n').pop()));
      } catch {
        reject(new Error(`client gave no result: ${out}`));
      }
    });
  });
}

const one = Buffer.from([1]);
const server = createServer((c) => {
  c.on('error', () => {});
  c.write(one);
});
await new Promise((r) => server.listen({ host: '127.0.0.1', port: 0, backlog: 1024 }, r));
const port = server.address().port;

let gateway = null;
let gatewayOut = null;
/** The preloaded counters so far (SIGUSR2 makes the gateway write them). */
async function counters() {
  rmSync(countersFile, { force: true });
  // --gateway-log FILE: the gateway's stdout (say, what --node-arg=--trace-deopt printed).
  if (values['gateway-log'] && gatewayOut) writeFileSync(values['gateway-log'], gatewayOut());
  gateway.kill('SIGUSR2');
  for (let i = 0; i < 100; i++) {
    await sleep(20);
    try {
      return JSON.parse(readFileSync(countersFile, 'utf8'));
    } catch {}
  }
  throw new Error('no counters from the gateway');
}
let perf = null;
const countersFile = `/tmp/${ns}-counters.json`;
try {
  ip('netns', 'add', ns);
  execFileSync('ip', ['netns', 'exec', ns, 'sysctl', '-q', '-w', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']);
  ip('-n', ns, 'link', 'set', 'lo', 'up');
  const nodeArgs = [];
  if (values.count) nodeArgs.push('--import', COUNTERS);
  if (values['cpu-prof']) nodeArgs.push('--cpu-prof', '--cpu-prof-dir', values['cpu-prof']);
  if (values.perf) nodeArgs.push('--perf-basic-prof');
  nodeArgs.push(...values['node-arg']);
  const gwArgs = [...nodeArgs, CLI, 'gateway', '--netns', `/run/netns/${ns}`, '--mtu', String(mtu), '--host-loopback'];
  const env = { ...process.env, TT_CPS_COUNTERS: countersFile };
  if (values.root) env.TCPIP_TS_NATIVE = `${values.root}/native/build/Release/tcpip_native.node`;
  gateway = spawn(process.execPath, gwArgs, { stdio: ['ignore', 'pipe', values['node-arg'].length ? 'pipe' : 'inherit'], env });
  gateway.stderr?.resume();
  let out = '';
  gateway.stdout.on('data', (d) => (out += d));
  gatewayOut = () => out;
  for (let i = 0; !/^ready /m.test(out); i++) {
    if (i > 750 || gateway.exitCode !== null) throw new Error(`gateway not ready: ${out}`);
    await sleep(20);
  }
  // Warm up (JIT, ARP), then measure.
  const cold = await runClient(port, 5, 500);
  console.log(JSON.stringify({ warmUp: { connections: cold.connections, rate: Math.round(cold.rate), failed: cold.failed, stuck: cold.stuck } }));
  // Attached after the warm-up, so only measured rounds are traced.
  if (values.perf) perf = spawn('perf', ['record', '-g', '-o', values.perf, '-p', String(gateway.pid)], { stdio: 'ignore' });
  else if (values.strace) perf = spawn('strace', ['-c', '-f', '-o', values.strace, '-p', String(gateway.pid)], { stdio: 'ignore' });
  if (perf) await sleep(500);
  for (let round = 0; round < Number(values.rounds); round++) {
    const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
    const cpu0 = cpuSeconds(gateway.pid);
    const tap0 = tapPackets();
    const counts0 = values.count ? await counters() : null;
    const res = await runClient(port, 60, connections);
    const cpu1 = cpuSeconds(gateway.pid);
    const tap1 = tapPackets();
    const counts1 = values.count ? await counters() : null;
    const n = res.connections;
    const line = {
      load, connections: n, failed: res.failed, rate: Math.round(res.rate),
      cpuPer1k: +((cpu1 - cpu0) / n * 1000).toFixed(3),
      tapReadPerConn: +((tap1.read - tap0.read) / n).toFixed(2),
      tapWrittenPerConn: +((tap1.written - tap0.written) / n).toFixed(2),
    };
    if (counts0 && counts1) {
      line.perConn = Object.fromEntries(Object.keys(counts1).map((k) => [k, +((counts1[k] - counts0[k]) / n).toFixed(2)]));
    }
    console.log(JSON.stringify(line));
  }
  if (perf) {
    perf.kill('SIGINT');
    await new Promise((r) => perf.once('exit', r));
  }
} finally {
  if (gateway && gateway.exitCode === null) {
    gateway.kill('SIGTERM');
    await new Promise((r) => gateway.once('exit', r));
  }
  server.close();
  try {
    ip('netns', 'delete', ns);
  } catch {}
  rmSync(`/etc/netns/${ns}`, { recursive: true, force: true });
  rmSync(countersFile, { force: true });
  // --gateway-log FILE: the gateway's stdout (say, what --node-arg=--trace-deopt printed).
  if (values['gateway-log'] && gatewayOut) writeFileSync(values['gateway-log'], gatewayOut());
}
