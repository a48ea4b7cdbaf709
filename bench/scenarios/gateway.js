// Gateway vs peers (issue 5): the same workload from inside a network
// namespace through four peers, each in a fresh namespace made for the run:
// the tcpip-ts gateway (`tcpip-ts gateway --host-loopback`), slirp4netns,
// pasta, and a plain veth pair as the ceiling. At MTU 1500 and 65520:
// iperf3 bulk TCP both ways, a 1-byte TCP request/response (p50, p99), and
// TCP connections per second. The servers run on the host's loopback
// (127.0.0.1) in the root namespace, reached through the address each peer
// maps to it (10.0.2.2); for veth they bind the veth's root-side address.
// Runs are alternated (each round rotates the order of the peers), and every
// figure is also given as a ratio to slirp4netns and pasta, taken round by
// round so that both sides of a ratio ran minutes apart at most.
//
// Network safety: the client in the namespace only ever dials 10.0.2.2 (the
// gateway address every user-mode peer here maps to 127.0.0.1; pasta is
// given it with -g, so it never sees the host's own addresses or gateway)
// or 10.199.0.1 (the root end of the veth pair made for the run).
// assertLocalOnly() refuses anything else before a client starts.
//
// Needs root and /dev/net/tun; installs slirp4netns, passt and iperf3 when
// missing (scripts/bench-deps.sh). Otherwise it says why and records nothing.
import { execFile, execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { formatValue, quantile, sleep } from '../lib/util.js';

const exec = promisify(execFile);
const here = (path) => fileURLToPath(new URL(path, import.meta.url));
const CLI = here('../../bin/tcpip-ts.js');
const CLIENT = here('./gateway-client.js');
const DEPS = here('../../scripts/bench-deps.sh');

/** What slirp4netns, pasta (-g) and the gateway (--host-loopback) map to the host's 127.0.0.1. */
const MAPPED_LOOPBACK = '10.0.2.2';
const NS_ADDRESS = '10.0.2.100';
/** The veth pair's addresses: they exist only on the pair made for a run. */
const VETH = { host: '10.199.0.1', ns: '10.199.0.2', prefixLength: 30 };
const NS_PREFIX = 'tt-gwbench-';
const MTUS = [1500, 65520];

const SETTINGS = {
  quick: { rounds: 1, iperfSeconds: 1, iperfOmit: 0, iperfSlack: 3, rrSeconds: 0.5, cpsSeconds: 0.5, cpsMax: 1000 },
  full: { rounds: 3, iperfSeconds: 4, iperfOmit: 1, iperfSlack: 8, rrSeconds: 2, cpsSeconds: 2, cpsMax: 5000 },
};
const CPS_PARALLEL = 8;
const RR_MAX = 500_000;

// Presentation order (the table and the chart); runs measure rr, cps, down, up.
const METRICS = [
  { id: 'up', label: 'TCP bulk ns → host', unit: 'Gbit/s' },
  { id: 'down', label: 'TCP bulk host → ns', unit: 'Gbit/s' },
  { id: 'rr-p50', label: 'TCP 1-byte request/response p50', unit: 'µs' },
  { id: 'rr-p99', label: 'TCP 1-byte request/response p99', unit: 'µs' },
  { id: 'cps', label: `TCP connections/s, ${CPS_PARALLEL} at a time`, unit: 'conn/s' },
  // CPU the peer's own process spent (utime + stime from /proc/PID/stat)
  // per unit of work: on 2 cores the peer, iperf3's client and server and
  // the kernel share the CPUs, so a rate alone hides what it cost. Not for
  // veth, whose work is the kernel's.
  { id: 'up-cpu', label: 'CPU per GiB ns → host', unit: 's/GiB', cpu: true },
  { id: 'down-cpu', label: 'CPU per GiB host → ns', unit: 's/GiB', cpu: true },
  { id: 'cps-cpu', label: 'CPU per 1,000 connections', unit: 's/1k conn', cpu: true },
];
const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;

/** CPU seconds (user + system) the process has used so far, or null once it is gone. */
function cpuSeconds(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after "(comm)": state is field 3, utime 14, stime 15.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / CLK_TCK;
  } catch {
    return null;
  }
}

/** Runs step() and adds, for a peer with a process, the CPU it spent per unit of work the step reports. */
async function withCpu(run, step, id, perUnit) {
  const pid = run.handle.child?.pid;
  const before = pid === undefined ? null : cpuSeconds(pid);
  const result = await step();
  const after = pid === undefined ? null : cpuSeconds(pid);
  const units = perUnit(result);
  if (before !== null && after !== null && units > 0) result[id] = { value: (after - before) / units, detail: { cpuSeconds: after - before, units } };
  else result[id] = { skipped: pid === undefined ? 'the kernel does the work (no process)' : 'not measured' };
  return result;
}

// Ratios: every figure to slirp4netns and to pasta, and the gateway to the
// veth ceiling (the request/response target is stated against it).
const RATIOS = [
  ['gateway', 'slirp4netns'], ['gateway', 'pasta'], ['gateway', 'veth'],
  ['slirp4netns', 'pasta'], ['pasta', 'slirp4netns'],
  ['veth', 'slirp4netns'], ['veth', 'pasta'],
];

// Issue 14's targets, as ratios from the same run (and issue 5's absolute
// bulk target at MTU 65520).
function targetOf(peer, metric, mtu, ref) {
  const bulk = metric === 'up' || metric === 'down';
  if (peer !== 'gateway') return undefined;
  if (!ref && bulk && mtu === 65520) return { op: '>=', value: 20 };
  if (metric === 'cps' && (ref === 'slirp4netns' || ref === 'pasta')) return { op: '>=', value: 1.5 };
  if (ref === 'veth' && metric === 'rr-p50') return { op: '<=', value: 1.1 };
  if (ref === 'veth' && metric === 'rr-p99') return { op: '<=', value: 1.5 };
  if (metric === 'down' && ref === 'pasta' && mtu === 65520) return { op: '>=', value: 1.3 };
  if (bulk && ref === 'slirp4netns' && mtu === 1500) return { op: '>=', value: 2 };
  if (metric === 'up' && ref === 'veth' && mtu === 65520) return { op: '>=', value: 0.8 };
  if (metric.endsWith('-cpu') && ref === 'pasta') return { op: '<=', value: 1 };
  return undefined;
}

/** Refuses any client target or server address other than the two this scenario creates. */
function assertLocalOnly({ target, bind }) {
  const ok = (target === MAPPED_LOOPBACK && bind === '127.0.0.1') || (target === VETH.host && bind === VETH.host);
  if (!ok) throw new Error(`refusing to measure against ${target} (server on ${bind}): only ${MAPPED_LOOPBACK} → 127.0.0.1 and the veth's ${VETH.host}`);
}

// ------------------------------------------------------------ processes

/** Every process this scenario starts, so that none outlives it. */
export class Children {
  #live = new Set();

  spawn(command, args, options = {}) {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], ...options });
    this.#live.add(child);
    child.out = '';
    child.err = '';
    child.finished = false;
    child.exited = new Promise((resolve) => {
      const end = (result) => {
        child.finished = true;
        this.#live.delete(child);
        resolve(result);
      };
      child.once('exit', (code, signal) => end({ code, signal }));
      child.once('error', (error) => end({ code: null, signal: null, error }));
    });
    child.stdout?.on('data', (d) => (child.out += d));
    child.stderr?.on('data', (d) => (child.err = (child.err + d).slice(-4000)));
    return child;
  }

  killAll() {
    for (const child of this.#live) child.kill('SIGKILL');
  }
}

/** Stops a child: `signal`, then SIGKILL after `graceMs`. */
export async function stop(child, signal = 'SIGTERM', graceMs = 3000) {
  if (child.finished) return child.exited;
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  const result = await child.exited;
  clearTimeout(timer);
  return result;
}

/** Runs a command to its end, or interrupts it (SIGINT, then SIGKILL) after timeoutMs. */
export async function runBounded(children, command, args, timeoutMs) {
  const child = children.spawn(command, args);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    void stop(child, 'SIGINT', 1500);
  }, timeoutMs);
  const result = await child.exited;
  clearTimeout(timer);
  return { ...result, out: child.out, err: child.err, timedOut };
}

export const tail = (text, n = 300) => text.trim().replace(/\s+/g, ' ').slice(-n);

/** Polls `check` every 20 ms until it is true; fails when `child` exits or after timeoutMs. */
export async function until(check, timeoutMs, what, child) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (child?.finished) {
      const { code, signal, error } = await child.exited;
      throw new Error(`${what} exited (${error?.message ?? signal ?? `code ${code}`})${child.err ? `: ${tail(child.err)}` : ''}`);
    }
    if (Date.now() > deadline) throw new Error(`${what}: not ready after ${timeoutMs / 1000} s${child?.err ? `: ${tail(child.err)}` : ''}`);
    await sleep(20);
  }
}

const ipOut = async (...args) => (await exec('ip', args, { timeout: 10_000 })).stdout;
const ipQuiet = (...args) => exec('ip', args, { timeout: 10_000 }).then(() => true, () => false);

/** Whether a TCP socket listens on address:port in our (the root) namespace. */
export function listening(address, port) {
  const hex = address.split('.').reverse().map((b) => Number(b).toString(16).padStart(2, '0')).join('').toUpperCase();
  const local = `${hex}:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  return readFileSync('/proc/net/tcp', 'utf8').split('\n').some((line) => {
    const f = line.trim().split(/\s+/);
    return f[1] === local && f[3] === '0A';
  });
}

// ------------------------------------------------------------ peers

async function startGateway({ ns, mtu, children }) {
  const child = children.spawn(process.execPath, [CLI, 'gateway', '--netns', `/run/netns/${ns}`, '--mtu', String(mtu), '--host-loopback']);
  await until(() => /^ready /m.test(child.out), 15_000, 'tcpip-ts gateway', child);
  return { target: MAPPED_LOOPBACK, bind: '127.0.0.1', child, stop: () => stop(child) };
}

async function startSlirp({ ns, mtu, children }) {
  // fd 3 gets a byte once the TAP is configured (--ready-fd).
  const child = children.spawn('slirp4netns', ['--configure', `--mtu=${mtu}`, '--netns-type=path', '--ready-fd=3', `/run/netns/${ns}`, 'tap0'],
    { stdio: ['ignore', 'pipe', 'pipe', 'pipe'] });
  let ready = false;
  child.stdio[3].on('data', () => (ready = true));
  await until(() => ready, 15_000, 'slirp4netns', child);
  return { target: MAPPED_LOOPBACK, bind: '127.0.0.1', child, stop: () => stop(child) };
}

async function startPasta({ ns, mtu, children }) {
  // slirp4netns's addressing (as passt's own contrib/slirp4netns.sh does):
  // without -a/-n/-g pasta copies the host's address and gateway into the
  // namespace. As root pasta switches to nobody unless told otherwise, and
  // nobody cannot join a namespace bound at /run/netns. No port forwarding
  // either way (-t/-u/-T/-U none), IPv4 only, no DHCP/NDP.
  const child = children.spawn('pasta', [
    '-f', '-q', '--runas', '0', '--netns', `/run/netns/${ns}`, '--config-net', '-4', '-I', 'tap0',
    '-a', NS_ADDRESS, '-n', '24', '-g', MAPPED_LOOPBACK, '-m', String(mtu),
    '-t', 'none', '-u', 'none', '-T', 'none', '-U', 'none', '--no-dhcp', '--no-ndp', '--no-dhcpv6', '--no-ra',
  ]);
  await until(async () => {
    const [addr, route] = await Promise.all([
      ipOut('-n', ns, '-4', '-o', 'addr', 'show', 'dev', 'tap0').catch(() => ''),
      ipOut('-n', ns, '-4', 'route', 'show', 'default').catch(() => ''),
    ]);
    return addr.includes(`inet ${NS_ADDRESS}/`) && route.includes(`via ${MAPPED_LOOPBACK}`);
  }, 15_000, 'pasta', child);
  return { target: MAPPED_LOOPBACK, bind: '127.0.0.1', child, stop: () => stop(child) };
}

async function startVeth({ ns, mtu }) {
  const host = `ttgwb${process.pid % 100_000}`;
  await ipOut('link', 'add', host, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns);
  const handle = { target: VETH.host, bind: VETH.host, stop: () => ipQuiet('link', 'del', host) };
  try {
    await exec('sysctl', ['-q', '-w', `net.ipv6.conf.${host}.disable_ipv6=1`]);
    await ipOut('link', 'set', host, 'mtu', String(mtu));
    await ipOut('addr', 'add', `${VETH.host}/${VETH.prefixLength}`, 'dev', host);
    await ipOut('link', 'set', host, 'up');
    await ipOut('-n', ns, 'link', 'set', 'eth0', 'mtu', String(mtu));
    await ipOut('-n', ns, 'addr', 'add', `${VETH.ns}/${VETH.prefixLength}`, 'dev', 'eth0');
    await ipOut('-n', ns, 'link', 'set', 'eth0', 'up');
  } catch (err) {
    await handle.stop();
    throw err;
  }
  return handle;
}

const PEERS = [
  { id: 'gateway', label: 'tcpip-ts gateway', start: startGateway },
  { id: 'slirp4netns', label: 'slirp4netns', start: startSlirp },
  { id: 'pasta', label: 'pasta', start: startPasta },
  { id: 'veth', label: 'veth (ceiling)', start: startVeth },
];
const peerLabel = (id) => PEERS.find((p) => p.id === id).label;
/** The label a failed figure of `id` is blamed on, when `id` is not tcpip-ts (see ScenarioContext.figure). */
const peerOnly = (id) => (id === 'gateway' ? undefined : peerLabel(id));

// ------------------------------------------------------------ measurements

/** The echo server (request/response) and the one-byte server (connections/s), in this process. */
async function startServers(bind) {
  const rr = createServer((c) => {
    c.setNoDelay(true);
    c.on('error', () => {});
    c.on('data', (d) => c.write(d));
  });
  // Writes one byte; the client ends first and this side's end follows (allowHalfOpen off).
  const one = Buffer.from([1]);
  const cps = createServer((c) => {
    c.on('error', () => {});
    c.write(one);
  });
  const listen = (server) => new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: bind, port: 0, backlog: 1024 }, () => resolve(server.address().port));
  });
  const [rrPort, cpsPort] = [await listen(rr), await listen(cps)];
  return { rrPort, cpsPort, close: () => { rr.close(); cps.close(); } };
}

export const parseJson = (text) => {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
};

/** Runs gateway-client.js inside the namespace; returns its JSON result. */
async function nsClient({ ns, children }, mode, target, port, seconds, max, parallel) {
  const res = await runBounded(children, 'ip', ['netns', 'exec', ns, process.execPath, CLIENT, mode, target, String(port), String(seconds), String(max), String(parallel)],
    (seconds + 12) * 1000);
  const out = parseJson(res.out.trim().split('\n').pop() ?? '');
  if (!out) throw new Error(res.timedOut ? `stalled: the client gave no result after ${seconds + 12} s` : `the client exited (${res.signal ?? `code ${res.code}`}): ${tail(res.err)}`);
  return out;
}

async function requestResponse(run, s) {
  const out = await nsClient(run, 'rr', run.handle.target, run.servers.rrPort, s.rrSeconds, RR_MAX, 1);
  if (out.error) throw new Error(out.error);
  const detail = { roundTrips: out.roundTrips, maxUs: out.max };
  return { 'rr-p50': { value: out.p50, detail }, 'rr-p99': { value: out.p99, detail } };
}

async function connectionRate(run, s) {
  const out = await nsClient(run, 'cps', run.handle.target, run.servers.cpsPort, s.cpsSeconds, s.cpsMax, CPS_PARALLEL);
  if (out.connections === undefined) throw new Error(out.error);
  if (out.error || out.stuck > 0 || out.failed > 0 || !(out.rate > 0)) {
    const what = [];
    if (out.stuck > 0) what.push(`stalled: ${out.stuck} of ${CPS_PARALLEL} connections never finished`);
    if (out.failed > 0) what.push(`${out.failed} failed (${out.lastError})`);
    what.push(`${out.connections} completed in ${out.seconds.toFixed(1)} s`);
    throw new Error(what.join('; '));
  }
  return { cps: { value: out.rate, detail: { connections: out.connections } } };
}

/** One iperf3 run; `reverse`: host → ns (-R). */
async function bulk(run, s, reverse) {
  const { ns, handle, children, iperfPort: port } = run;
  const server = children.spawn('iperf3', ['-s', '-1', '-J', '-B', handle.bind, '-p', String(port)]);
  try {
    await until(() => listening(handle.bind, port), 5000, 'iperf3 server', server);
    const limit = s.iperfSeconds + s.iperfOmit + s.iperfSlack;
    const res = await runBounded(children, 'ip', ['netns', 'exec', ns, 'iperf3', '-c', handle.target, '-p', String(port),
      '-t', String(s.iperfSeconds), '-O', String(s.iperfOmit), '-J', '--connect-timeout', '3000', ...(reverse ? ['-R'] : [])], limit * 1000);
    const client = parseJson(res.out);
    const id = reverse ? 'down' : 'up';
    if (res.timedOut || !client || client.error) {
      // Say what was seen: the receiver's per-second rates (the server's
      // for ns → host), and how far the connections got.
      await stop(server, 'SIGINT', 1500);
      const serverJson = parseJson(server.out);
      const receiver = reverse ? client : serverJson;
      const rates = (receiver?.intervals ?? []).map((i) => i.sum.bits_per_second / 1e9);
      const bytes = (receiver?.intervals ?? []).reduce((sum, i) => sum + i.sum.bytes, 0);
      const seen = [
        !client ? 'iperf3 printed no result'
          : !client.start?.connected?.length ? 'the data connection never connected'
          : rates.length ? `stalled: receiver's 1-s rates ${rates.map((r) => formatValue(r)).join(', ')} Gbit/s (${formatValue(bytes / 2 ** 20)} MiB)`
            : 'stalled: no data received',
        serverJson?.start?.accepted_connection ? 'control connection accepted' : 'the control connection never reached the server',
        res.timedOut ? `no result after ${limit} s` : `iperf3: ${client?.error ?? `exited ${res.code}: ${tail(res.err)}`}`,
      ];
      throw new Error(seen.join('; '));
    }
    const gbps = client.end.sum_received.bits_per_second / 1e9;
    const rates = client.intervals.filter((i) => !i.sum.omitted).map((i) => i.sum.bits_per_second / 1e9);
    const retransmits = client.end.sum_sent?.retransmits;
    // A second at under a tenth of the average: the transfer stopped for a while.
    const slowest = Math.min(...rates);
    const stalled = rates.length >= 2 && slowest < gbps / 10;
    const observed = stalled ? `stalled mid-transfer: 1-s rates ${rates.map((r) => formatValue(r)).join(', ')} Gbit/s, ${retransmits} retransmits` : undefined;
    // Every byte of the run, the omitted first seconds too: the CPU figure counts them.
    const bytes = client.intervals.reduce((sum, i) => sum + i.sum.bytes, 0);
    return { [id]: { value: gbps, stalled, observed, detail: { rates, retransmits, bytes } } };
  } finally {
    await stop(server, 'SIGTERM', 1000);
  }
}

/** Measures one peer at one MTU in a fresh namespace; always removes it. */
async function runPeer(ctx, state, peer, mtu, round) {
  const ns = `${NS_PREFIX}${process.pid}-${state.seq++}`;
  const where = `round ${round + 1}/${state.settings.rounds}, MTU ${mtu}, ${peer.label}`;
  const s = state.settings;
  const results = {};
  const fail = (ids, err) => {
    for (const id of ids) {
      // A CPU figure is not the peer's to fail: the rate beside it carries the error.
      results[id] = METRICS.find((m) => m.id === id)?.cpu ? { skipped: 'the measurement failed' } : { error: String(err?.message ?? err) };
    }
  };
  await ipOut('netns', 'add', ns);
  state.namespaces.add(ns);
  let handle = null;
  let servers = null;
  try {
    await exec('ip', ['netns', 'exec', ns, 'sysctl', '-q', '-w', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']);
    await ipOut('-n', ns, 'link', 'set', 'lo', 'up');
    try {
      handle = await peer.start({ ns, mtu, children: state.children });
      assertLocalOnly(handle);
      servers = await startServers(handle.bind);
    } catch (err) {
      ctx.log(`${where}: could not start: ${err.message}`);
      fail(METRICS.map((m) => m.id), err);
      return results;
    }
    // The namespace's interface must have the MTU asked for (pasta sets it through -m).
    const links = JSON.parse(await ipOut('-n', ns, '-j', 'link', 'show')).filter((l) => l.ifname !== 'lo');
    if (links.length !== 1 || links[0].mtu !== mtu) {
      fail(METRICS.map((m) => m.id), new Error(`the namespace's interface has MTU ${links.map((l) => `${l.ifname} ${l.mtu}`).join(', ')}, not ${mtu}`));
      return results;
    }
    const run = { ns, handle, servers, children: state.children, iperfPort: state.iperfPort };
    const gib = (id) => (r) => (r[id]?.detail?.bytes ?? 0) / 2 ** 30;
    const steps = [
      [['rr-p50', 'rr-p99'], () => requestResponse(run, s)],
      [['cps', 'cps-cpu'], () => withCpu(run, () => connectionRate(run, s), 'cps-cpu', (r) => (r.cps?.detail?.connections ?? 0) / 1000)],
      [['down', 'down-cpu'], () => withCpu(run, () => bulk(run, s, true), 'down-cpu', gib('down'))],
      [['up', 'up-cpu'], () => withCpu(run, () => bulk(run, s, false), 'up-cpu', gib('up'))],
    ];
    for (const [ids, step] of steps) {
      try {
        Object.assign(results, await step());
      } catch (err) {
        fail(ids, err);
      }
      ctx.log(`${where}: ${ids.filter((id) => !results[id]?.skipped).map((id) => describe(id, results[id])).join('; ')}`);
    }
    return results;
  } finally {
    servers?.close();
    await handle?.stop().catch(() => {});
    // Anything still running in the namespace was started by this run.
    const pids = (await ipOut('netns', 'pids', ns).catch(() => '')).split('\n').filter(Boolean).map(Number);
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await ipOut('netns', 'delete', ns);
    state.namespaces.delete(ns);
    // The gateway writes /etc/netns/NAME/resolv.conf and removes it when it
    // exits; a killed one leaves it.
    rmSync(`/etc/netns/${ns}`, { recursive: true, force: true });
  }
}

function describe(id, r) {
  const metric = METRICS.find((m) => m.id === id);
  if (r.error) return `${metric.label} FAILED: ${r.error}`;
  return `${metric.label} ${formatValue(r.value)} ${metric.unit}${r.stalled ? ` (${r.observed})` : ''}`;
}

// ------------------------------------------------------------ figures

const median = (values) => quantile([...values].sort((a, b) => a - b), 0.5);
const spread = (values) => (values.length > 1 ? [Math.min(...values), Math.max(...values)] : undefined);

function recordFigures(ctx, runs, rounds) {
  for (const mtu of MTUS) {
    for (const metric of METRICS) {
      const at = (peer) => runs.get(`${mtu}/${peer}`).map((r) => ({ round: r.round, ...r.results[metric.id] }));
      for (const peer of PEERS) {
        const list = at(peer.id);
        if (list.every((r) => r.skipped)) continue;
        const values = list.filter((r) => r.value != null).map((r) => r.value);
        const failed = list.filter((r) => r.error);
        const stalled = list.filter((r) => r.stalled);
        const trouble = [
          failed.length && values.length ? `failed in ${failed.length} of ${list.length} runs` : '',
          stalled.length ? `stalled in ${stalled.length} of ${list.length} runs` : '',
        ].filter(Boolean).join(', ');
        const label = `${peer.label}: ${metric.label}, MTU ${mtu}`;
        const base = {
          id: `${peer.id}-${metric.id}-${mtu}`, group: metric.label, chartLabel: `${peer.label}, MTU ${mtu}`, unit: metric.unit,
          target: targetOf(peer.id, metric.id, mtu), detail: { runs: list },
        };
        if (values.length === 0) {
          ctx.figure({ ...base, label, value: null, error: `${failed[0]?.error ?? 'not measured'}${list.length > 1 ? ` (all ${list.length} runs)` : ''}`, failedBy: peerOnly(peer.id) });
          continue;
        }
        ctx.figure({ ...base, label: trouble ? `${label} (${trouble})` : label, value: median(values), range: spread(values) });
        for (const r of [...failed, ...stalled]) ctx.note(`${label}, round ${r.round + 1} of ${rounds}: ${r.error ?? r.observed}`);
      }
      for (const [peer, ref] of RATIOS) {
        if (metric.cpu && (peer === 'veth' || ref === 'veth')) continue;
        const mine = at(peer);
        const theirs = at(ref);
        const ratios = mine.flatMap((r, i) => (r.value != null && theirs[i].value > 0 ? [r.value / theirs[i].value] : []));
        const name = `${peerLabel(peer)} ÷ ${peerLabel(ref)}`;
        const figure = {
          id: `${peer}-per-${ref}-${metric.id}-${mtu}`, label: `${name}: ${metric.label}, MTU ${mtu}`, group: `${metric.label}: ratios`,
          chartLabel: `${name}, MTU ${mtu}`, unit: '×', target: targetOf(peer, metric.id, mtu, ref), detail: { ratios },
        };
        if (ratios.length === 0) {
          const missing = [[peer, mine], [ref, theirs]].filter(([, l]) => l.every((r) => r.value == null)).map(([p]) => peerLabel(p));
          const oursFailed = mine.every((r) => r.value == null) && !peerOnly(peer);
          ctx.figure({ ...figure, value: null, error: `no run with both figures (${missing.join(' and ')} failed)`, failedBy: oursFailed ? undefined : peerOnly(ref) });
        } else {
          ctx.figure({ ...figure, value: median(ratios), range: spread(ratios) });
        }
      }
    }
  }
}

// ------------------------------------------------------------ the scenario

/** Why this machine cannot run the scenario, or null. */
async function missingPrerequisite() {
  if (process.getuid?.() !== 0) return 'needs root (network namespaces, TAP devices, a veth pair)';
  if (!existsSync('/dev/net/tun')) return 'needs /dev/net/tun';
  try {
    await exec('bash', [DEPS], { timeout: 600_000 });
  } catch (err) {
    return `installing the peers failed (scripts/bench-deps.sh): ${tail(String(err.stderr ?? err.message))}`;
  }
  for (const tool of ['slirp4netns', 'pasta', 'iperf3', 'ip', 'sysctl']) {
    try {
      await exec('sh', ['-c', `command -v ${tool}`]);
    } catch {
      return `${tool} is not installed`;
    }
  }
  const used = (await ipOut('-4', '-o', 'addr', 'show')) + (await ipOut('-4', 'route', 'show', 'table', 'all'));
  if (used.includes('10.199.0.')) return `10.199.0.0/${VETH.prefixLength} (the veth pair's addresses) is already in use on this host`;
  return null;
}

/** Namespaces left by an earlier run of this scenario that was killed. */
async function removeStale(ctx) {
  const names = (await ipOut('netns', 'list').catch(() => '')).split('\n').map((l) => l.split(' ')[0]).filter((n) => n.startsWith(NS_PREFIX));
  for (const name of names) {
    const pid = Number(name.slice(NS_PREFIX.length).split('-')[0]);
    if (existsSync(`/proc/${pid}`)) continue;
    await ipQuiet('netns', 'delete', name);
    rmSync(`/etc/netns/${name}`, { recursive: true, force: true });
    ctx.log(`removed namespace ${name}, left by an earlier run`);
  }
}

/** A free TCP port on 127.0.0.1 for iperf3 (the same number is then used on the veth address). */
function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

export default {
  name: 'gateway',
  title: 'gateway vs slirp4netns, pasta and veth',
  description: 'From inside a network namespace: iperf3 both ways, 1-byte TCP request/response and connections/s to the host\'s loopback through the tcpip-ts gateway, slirp4netns and pasta, with a veth pair as the ceiling, at MTU 1500 and 65520. Needs root.',
  async run(ctx) {
    const why = await missingPrerequisite();
    if (why) {
      ctx.log(`skipped: ${why}`);
      return;
    }
    await removeStale(ctx);
    const settings = ctx.quick ? SETTINGS.quick : SETTINGS.full;
    const state = { settings, seq: 0, children: new Children(), namespaces: new Set(), iperfPort: await freePort() };
    // Ctrl-C or a kill: remove what exists now (the runner's own timeout uses SIGKILL; removeStale covers that).
    const emergency = (signal) => {
      state.children.killAll();
      for (const ns of state.namespaces) {
        try {
          execFileSync('ip', ['netns', 'delete', ns], { stdio: 'ignore', timeout: 5000 });
        } catch {
          // removeStale() catches it next time
        }
        rmSync(`/etc/netns/${ns}`, { recursive: true, force: true });
      }
      process.exit(signal === 'SIGINT' ? 130 : 143);
    };
    process.once('SIGINT', emergency);
    process.once('SIGTERM', emergency);
    const versions = await Promise.all([
      exec('slirp4netns', ['--version']).then((r) => r.stdout.split('\n')[0], () => '?'),
      exec('dpkg-query', ['-W', '-f', '${Version}', 'passt']).then((r) => `pasta (passt ${r.stdout})`, () => 'pasta'),
      exec('iperf3', ['--version']).then((r) => r.stdout.split('\n')[0], () => '?'),
    ]);
    ctx.log(`${settings.rounds} round(s) × MTU ${MTUS.join(', ')} × ${PEERS.map((p) => p.id).join(', ')}; ${versions.join('; ')}`);
    const runs = new Map(MTUS.flatMap((mtu) => PEERS.map((p) => [`${mtu}/${p.id}`, []])));
    try {
      for (let round = 0; round < settings.rounds; round++) {
        // Alternate: each round starts with the next peer, so that no peer
        // always runs first (fresh caches) or last (after the others).
        const order = PEERS.map((_, i) => PEERS[(i + round) % PEERS.length]);
        for (const mtu of MTUS) {
          for (const peer of order) {
            const results = await runPeer(ctx, state, peer, mtu, round);
            runs.get(`${mtu}/${peer.id}`).push({ round, results });
          }
        }
      }
    } finally {
      state.children.killAll();
      process.off('SIGINT', emergency);
      process.off('SIGTERM', emergency);
    }
    recordFigures(ctx, runs, settings.rounds);
  },
};
