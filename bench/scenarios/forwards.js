// Port forwards (issue 17): a client on the host's loopback reaching servers
// inside a network namespace through a forwarded 127.0.0.1 port, through
// the tcpip-ts gateway (-p, the client's address preserved, and once with
// --no-preserve-source for comparison), slirp4netns (add_hostfwd on its API
// socket), rootlesskit's builtin port driver (rootlessctl add-ports; its
// network is slirp4netns) and pasta (-t). Measured: iperf3 bulk TCP host →
// namespace and TCP connections/s, 8 at a time. Each run gets a fresh
// namespace (rootlesskit makes its own) with iperf3 -s and a one-byte
// server inside; each round rotates the order of the peers; ratios are
// taken round by round.
//
// Network safety: the clients run on the host and dial only 127.0.0.1
// (the forwarded ports); the servers listen inside the namespaces made for
// the run, whose only way out is the peer under test (host loopback off).
//
// Needs root and /dev/net/tun; slirp4netns, passt, iperf3 (bench-deps.sh),
// rootlesskit and uidmap (skipped with a note when missing).
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { formatValue, quantile, sleep } from '../lib/util.js';
import { Children, parseJson, runBounded, stop, tail, until } from './gateway.js';

const exec = promisify(execFile);
const here = (path) => fileURLToPath(new URL(path, import.meta.url));
const CLI = here('../../bin/tcpip-ts.js');
const CLIENT = here('./gateway-client.js');
const DEPS = here('../../scripts/bench-deps.sh');
const NS_PREFIX = 'tt-fwdbench-';
const NS_ADDRESS = '10.0.2.100';
const GATEWAY = '10.0.2.2';
/** The servers' ports inside the namespace. */
const IPERF_PORT = 5201;
const CPS_PORT = 8081;
const CPS_PARALLEL = 8;

const SETTINGS = {
  // gateway-client.js takes the rate after the first tenth of cpsMax: sized
  // so that a slow peer on a busy 2-core machine still gets past it.
  quick: { rounds: 1, iperfSeconds: 1, iperfOmit: 0, iperfSlack: 4, cpsSeconds: 0.5, cpsMax: 500 },
  full: { rounds: 3, iperfSeconds: 4, iperfOmit: 1, iperfSlack: 8, cpsSeconds: 2, cpsMax: 2000 },
};

const METRICS = [
  { id: 'down', label: 'forwarded TCP bulk host → ns', unit: 'Gbit/s' },
  { id: 'cps', label: `forwarded TCP connections/s, ${CPS_PARALLEL} at a time`, unit: 'conn/s' },
];

/** The one-byte server: writes a byte, ends after the client does. */
const CPS_SERVER = `require('net').createServer((c) => { c.on('error', () => {}); c.write(Buffer.from([1])); })
  .listen({ port: Number(process.argv[1]), backlog: 1024 }, () => console.log('listening'));`;

const ipOut = async (...args) => (await exec('ip', args, { timeout: 10_000 })).stdout;

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

/** Whether something accepts TCP on 127.0.0.1:port here. */
const accepts = (port) => new Promise((resolve) => {
  const c = connect(port, '127.0.0.1');
  c.once('connect', () => {
    c.destroy();
    resolve(true);
  });
  c.once('error', () => resolve(false));
});

/** iperf3 -s and the one-byte server inside ns (made by the scenario). */
async function nsServers(ns, children) {
  const iperf = children.spawn('ip', ['netns', 'exec', ns, 'iperf3', '-s', '-p', String(IPERF_PORT)]);
  const cps = children.spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', CPS_SERVER, String(CPS_PORT)]);
  await until(async () => {
    const out = await ipOut('netns', 'exec', ns, 'ss', '-Hltn').catch(() => '');
    return out.includes(`:${IPERF_PORT} `) && out.includes(`:${CPS_PORT} `);
  }, 10_000, 'the servers in the namespace', cps);
  return async () => {
    await stop(iperf, 'SIGKILL');
    await stop(cps, 'SIGKILL');
  };
}

/** One JSON request on a slirp4netns-style API socket. */
function apiRequest(path, body) {
  return new Promise((resolve, reject) => {
    const c = connect(path);
    let text = '';
    c.on('data', (d) => (text += d));
    c.on('end', () => resolve(parseJson(text)));
    c.on('error', reject);
    c.end(JSON.stringify(body));
  });
}

async function withNamespace(run, body) {
  const ns = `${NS_PREFIX}${process.pid}-${run.state.seq++}`;
  await ipOut('netns', 'add', ns);
  run.state.namespaces.add(ns);
  try {
    await ipOut('-n', ns, 'link', 'set', 'lo', 'up');
    const stopServers = await nsServers(ns, run.children);
    try {
      return await body(ns);
    } finally {
      await stopServers();
    }
  } finally {
    const pids = (await ipOut('netns', 'pids', ns).catch(() => '')).split('\n').filter(Boolean).map(Number);
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    await ipOut('netns', 'delete', ns).catch(() => '');
    run.state.namespaces.delete(ns);
    rmSync(`/etc/netns/${ns}`, { recursive: true, force: true });
  }
}

function gatewayPeer(preserve) {
  return (run, measure) => withNamespace(run, async (ns) => {
    const child = run.children.spawn(process.execPath, [CLI, 'gateway', '--netns', `/run/netns/${ns}`,
      '-p', `127.0.0.1:${run.ports.iperf}:${IPERF_PORT}`, '-p', `127.0.0.1:${run.ports.cps}:${CPS_PORT}`,
      ...(preserve ? [] : ['--no-preserve-source'])]);
    try {
      await until(() => /^ready /m.test(child.out), 15_000, 'tcpip-ts gateway', child);
      return await measure();
    } finally {
      await stop(child);
    }
  });
}

async function slirpPeer(run, measure) {
  return withNamespace(run, async (ns) => {
    const api = join(run.dir, `slirp-${run.state.seq}.sock`);
    const child = run.children.spawn('slirp4netns', ['--configure', '--netns-type=path', '--disable-host-loopback', `--api-socket=${api}`, '--ready-fd=3', `/run/netns/${ns}`, 'tap0'],
      { stdio: ['ignore', 'pipe', 'pipe', 'pipe'] });
    let ready = false;
    child.stdio[3].on('data', () => (ready = true));
    try {
      await until(() => ready, 15_000, 'slirp4netns', child);
      for (const [host, guest] of [[run.ports.iperf, IPERF_PORT], [run.ports.cps, CPS_PORT]]) {
        const r = await apiRequest(api, { execute: 'add_hostfwd', arguments: { proto: 'tcp', host_addr: '127.0.0.1', host_port: host, guest_port: guest } });
        if (!r?.return) throw new Error(`slirp4netns add_hostfwd: ${JSON.stringify(r)}`);
      }
      return await measure();
    } finally {
      await stop(child);
      child.stdio[3].destroy();
      rmSync(api, { force: true });
    }
  });
}

async function pastaPeer(run, measure) {
  return withNamespace(run, async (ns) => {
    // slirp4netns's addressing (see gateway.js), no outbound port forwards, host → ns ports by -t.
    const child = run.children.spawn('pasta', [
      '-f', '-q', '--runas', '0', '--netns', `/run/netns/${ns}`, '--config-net', '-4', '-I', 'tap0',
      '-a', NS_ADDRESS, '-n', '24', '-g', GATEWAY, '--no-map-gw',
      '-t', `127.0.0.1/${run.ports.iperf}:${IPERF_PORT}`, '-t', `127.0.0.1/${run.ports.cps}:${CPS_PORT}`,
      '-u', 'none', '-T', 'none', '-U', 'none', '--no-dhcp', '--no-ndp', '--no-dhcpv6', '--no-ra',
    ]);
    try {
      await until(async () => (await accepts(run.ports.iperf)) && (await accepts(run.ports.cps)), 15_000, 'pasta', child);
      return await measure();
    } finally {
      await stop(child);
    }
  });
}

/**
 * rootlesskit makes its own namespaces: the servers run as its child, and
 * the ports are added with rootlessctl. It wants a subuid range for root,
 * given through bind mounts in a private mount namespace (as
 * test/rootlesskit.test.ts does), so the host's files stay as they are.
 */
async function rootlesskitPeer(run, measure) {
  const dir = mkdtempSync(join(run.dir, 'rk-'));
  writeFileSync(join(dir, 'subuid'), 'root:200000:65536\n');
  writeFileSync(join(dir, 'subgid'), 'root:200000:65536\n');
  writeFileSync(join(dir, 'cps.js'), CPS_SERVER.replace('process.argv[1]', 'process.argv[2]'));
  const state = join(dir, 'state');
  const done = join(dir, 'done');
  const inner = [
    `iperf3 -s -p ${IPERF_PORT} >/dev/null 2>&1 & a=$!;`,
    `${process.execPath} ${join(dir, 'cps.js')} ${CPS_PORT} & b=$!;`,
    // Bounded: at most 120 s, then the child ends whatever the parent does.
    `i=0; while [ $i -lt 1200 ] && [ ! -e ${done} ]; do sleep 0.1; i=$((i+1)); done; kill $a $b`,
  ].join(' ');
  const script = `mount --bind ${dir}/subuid /etc/subuid && mount --bind ${dir}/subgid /etc/subgid || exit 1
exec rootlesskit --net=slirp4netns --port-driver=builtin --disable-host-loopback --state-dir=${state} sh -c "$0"`;
  const child = run.children.spawn('unshare', ['-m', '--propagation', 'private', 'sh', '-c', script, inner]);
  try {
    await until(() => child.out.includes('listening'), 20_000, 'rootlesskit and its child', child);
    for (const [host, guest] of [[run.ports.iperf, IPERF_PORT], [run.ports.cps, CPS_PORT]]) {
      await exec('rootlessctl', ['--socket', join(state, 'api.sock'), 'add-ports', `127.0.0.1:${host}:${guest}/tcp`], { timeout: 10_000 });
    }
    await until(async () => (await accepts(run.ports.iperf)) && (await accepts(run.ports.cps)), 10_000, 'rootlesskit ports', child);
    return await measure();
  } finally {
    writeFileSync(done, '');
    // The child ends its servers and itself on the done file; a signal would leave them holding our pipes.
    await Promise.race([child.exited, sleep(5000)]);
    await stop(child, 'SIGTERM', 5000);
    rmSync(dir, { recursive: true, force: true });
  }
}

const PEERS = [
  { id: 'gateway', label: 'tcpip-ts gateway (source preserved)', start: gatewayPeer(true) },
  { id: 'gateway-nat', label: 'tcpip-ts gateway --no-preserve-source', start: gatewayPeer(false) },
  { id: 'slirp4netns', label: 'slirp4netns add_hostfwd', start: slirpPeer },
  { id: 'rootlesskit', label: 'rootlesskit builtin port driver', start: rootlesskitPeer, needs: ['rootlesskit', 'rootlessctl', 'newuidmap'] },
  { id: 'pasta', label: 'pasta -t', start: pastaPeer },
];
const RATIOS = [['gateway', 'slirp4netns'], ['gateway', 'rootlesskit'], ['gateway', 'pasta'], ['gateway', 'gateway-nat']];
const peerLabel = (id) => PEERS.find((p) => p.id === id).label;
/** The label a failed figure of `id` is blamed on, when `id` is another project's tool (see ScenarioContext.figure). */
const peerOnly = (id) => (id.startsWith('gateway') ? undefined : peerLabel(id));

async function bulk(run, s) {
  const res = await runBounded(run.children, 'iperf3', ['-c', '127.0.0.1', '-p', String(run.ports.iperf), '-t', String(s.iperfSeconds), '-O', String(s.iperfOmit),
    '-J', '--connect-timeout', '3000'], (s.iperfSeconds + s.iperfOmit + s.iperfSlack) * 1000);
  const out = parseJson(res.out);
  if (res.timedOut || !out || out.error) throw new Error(res.timedOut ? 'stalled: no iperf3 result' : `iperf3: ${out?.error ?? tail(res.err)}`);
  return { value: out.end.sum_received.bits_per_second / 1e9, detail: { retransmits: out.end.sum_sent?.retransmits } };
}

async function connectionRate(run, s) {
  const res = await runBounded(run.children, process.execPath, [CLIENT, 'cps', '127.0.0.1', String(run.ports.cps), String(s.cpsSeconds), String(s.cpsMax), String(CPS_PARALLEL)],
    (s.cpsSeconds + 12) * 1000);
  const out = parseJson(res.out.trim().split('\n').pop() ?? '');
  if (!out || out.connections === undefined) throw new Error(out?.error ?? `the client gave no result: ${tail(res.err)}`);
  if (out.stuck > 0 || out.failed > 0 || !(out.rate > 0)) {
    const what = [`${out.connections} completed in ${out.seconds.toFixed(1)} s`];
    if (out.stuck > 0) what.unshift(`stalled: ${out.stuck} of ${CPS_PARALLEL} connections never finished`);
    if (out.failed > 0) what.push(`${out.failed} failed (${out.lastError})`);
    if (!(out.rate > 0) && !out.stuck && !out.failed) what.push('too few for a rate');
    throw new Error(what.join('; '));
  }
  return { value: out.rate, detail: { connections: out.connections } };
}

async function missingPrerequisite() {
  if (process.getuid?.() !== 0) return 'needs root (network namespaces, TAP devices)';
  if (!existsSync('/dev/net/tun')) return 'needs /dev/net/tun';
  try {
    await exec('bash', [DEPS], { timeout: 600_000 });
  } catch (err) {
    return `installing the peers failed (scripts/bench-deps.sh): ${tail(String(err.stderr ?? err.message))}`;
  }
  return null;
}

const has = (tool) => exec('sh', ['-c', `command -v ${tool}`]).then(() => true, () => false);

export default {
  name: 'forwards',
  title: 'port forwards: tcpip-ts vs slirp4netns, rootlesskit and pasta',
  description: 'From the host\'s loopback into a namespace through a forwarded port: iperf3 host → ns and TCP connections/s through the tcpip-ts gateway (source preserved, and not), slirp4netns add_hostfwd, rootlesskit\'s builtin port driver and pasta -t. Needs root.',
  async run(ctx) {
    const why = await missingPrerequisite();
    if (why) {
      ctx.log(`skipped: ${why}`);
      return;
    }
    const settings = ctx.quick ? SETTINGS.quick : SETTINGS.full;
    // BENCH_FORWARDS_PEERS=gateway,gateway-nat measures only those (a before/after on a busy machine).
    const only = process.env.BENCH_FORWARDS_PEERS?.split(',').filter(Boolean);
    const peers = [];
    for (const peer of PEERS.filter((p) => !only || only.includes(p.id))) {
      const missing = [];
      for (const tool of peer.needs ?? []) if (!(await has(tool))) missing.push(tool);
      if (missing.length) ctx.note(`${peer.label}: not measured (${missing.join(', ')} not installed: apt-get install rootlesskit uidmap)`);
      else peers.push(peer);
    }
    const dir = mkdtempSync(join(tmpdir(), 'tt-fwdbench-'));
    const state = { seq: 0, namespaces: new Set() };
    const children = new Children();
    const runs = new Map(peers.map((p) => [p.id, []]));
    try {
      for (let round = 0; round < settings.rounds; round++) {
        const order = peers.map((_, i) => peers[(i + round) % peers.length]);
        for (const peer of order) {
          const ports = { iperf: await freePort(), cps: await freePort() };
          const run = { dir, state, children, ports };
          const results = {};
          try {
            await peer.start(run, async () => {
              for (const [id, step] of [['cps', connectionRate], ['down', bulk]]) {
                try {
                  results[id] = await step(run, settings);
                } catch (err) {
                  results[id] = { error: String(err?.message ?? err) };
                }
                await sleep(200);
              }
            });
          } catch (err) {
            for (const m of METRICS) results[m.id] ??= { error: `could not start: ${err.message}` };
          }
          ctx.log(`round ${round + 1}/${settings.rounds}, ${peer.label}: ${METRICS.map((m) => `${m.label} ${results[m.id]?.error ? `FAILED: ${results[m.id].error}` : `${formatValue(results[m.id].value)} ${m.unit}`}`).join('; ')}`);
          runs.get(peer.id).push({ round, results });
        }
      }
    } finally {
      children.killAll();
      for (const ns of state.namespaces) await ipOut('netns', 'delete', ns).catch(() => '');
      rmSync(dir, { recursive: true, force: true });
    }
    const median = (values) => quantile([...values].sort((a, b) => a - b), 0.5);
    const spread = (values) => (values.length > 1 ? [Math.min(...values), Math.max(...values)] : undefined);
    for (const metric of METRICS) {
      for (const peer of peers) {
        const list = runs.get(peer.id).map((r) => r.results[metric.id]);
        const values = list.filter((r) => r?.value != null).map((r) => r.value);
        const base = { id: `${peer.id}-${metric.id}`, group: metric.label, chartLabel: peer.label, unit: metric.unit, label: `${peer.label}: ${metric.label}`, detail: { runs: list } };
        if (values.length === 0) ctx.figure({ ...base, value: null, error: list.find((r) => r?.error)?.error ?? 'not measured', failedBy: peerOnly(peer.id) });
        else ctx.figure({ ...base, value: median(values), range: spread(values) });
      }
      for (const [a, b] of RATIOS) {
        if (!runs.has(a) || !runs.has(b)) continue;
        const mine = runs.get(a);
        const theirs = runs.get(b);
        const ratios = mine.flatMap((r, i) => {
          const x = r.results[metric.id]?.value;
          const y = theirs[i]?.results[metric.id]?.value;
          return x != null && y > 0 ? [x / y] : [];
        });
        const name = `${peerLabel(a)} ÷ ${peerLabel(b)}`;
        const figure = { id: `${a}-per-${b}-${metric.id}`, label: `${name}: ${metric.label}`, group: `${metric.label}: ratios`, chartLabel: name, unit: '×', detail: { ratios } };
        if (ratios.length === 0) {
          const ourValues = mine.some((r) => r.results[metric.id]?.value != null);
          ctx.figure({ ...figure, value: null, error: 'no round with both figures', failedBy: ourValues ? peerOnly(b) : undefined });
        }
        else ctx.figure({ ...figure, value: median(ratios), range: spread(ratios) });
      }
    }
  },
};
