#!/usr/bin/env node
// Time to ready: from spawning a slirp4netns-style helper to its ready fd's
// byte, the wait a container runtime has before starting the container.
// `node bench/startup.js [RUNS]` (root): tcpip-ts-slirp4netns and, where
// installed, slirp4netns, interleaved run by run so both see the same load;
// prints min / median / max in ms. Each run gets a fresh `unshare -n`
// namespace holder and is stopped through its exit fd.
import { spawn } from 'node:child_process';
import { existsSync, readlinkSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const OURS = fileURLToPath(new URL('../bin/tcpip-ts-slirp4netns', import.meta.url));
const REAL = ['/usr/bin/slirp4netns', '/usr/local/bin/slirp4netns'].find((p) => existsSync(p));
const runs = Number(process.argv[2] ?? 10);

async function holder() {
  const child = spawn('unshare', ['-n', 'sleep', '60'], { stdio: 'ignore' });
  const own = readlinkSync('/proc/self/ns/net');
  for (let i = 0; i < 200; i++) {
    try {
      if (readlinkSync(`/proc/${child.pid}/ns/net`) !== own) return child;
    } catch {}
    await new Promise((r) => setTimeout(r, 5));
  }
  child.kill('SIGKILL');
  throw new Error('namespace holder did not start');
}

/** One start: ms from spawn to the ready byte. */
async function once(argv) {
  const h = await holder();
  const t0 = process.hrtime.bigint();
  const child = spawn(argv[0], [...argv.slice(1), '-c', '-e', '3', '-r', '4', String(h.pid), 'tap0'], { stdio: ['ignore', 'ignore', 'ignore', 'pipe', 'pipe'] });
  const ms = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${argv.join(' ')}: no ready byte in 20 s`)), 20_000);
    child.stdio[4].once('data', () => {
      clearTimeout(timer);
      resolve(Number(process.hrtime.bigint() - t0) / 1e6);
    });
    child.once('exit', (code) => reject(new Error(`${argv.join(' ')} exited ${code} before ready`)));
  });
  child.removeAllListeners('exit');
  child.stdio[3].destroy();
  await new Promise((r) => (child.exitCode !== null ? r() : child.once('exit', r)));
  h.kill('SIGKILL');
  return ms;
}

const impls = [['tcpip-ts-slirp4netns', [OURS]], ...(REAL ? [['slirp4netns', [REAL]]] : [])];
const times = new Map(impls.map(([name]) => [name, []]));
for (let i = 0; i < runs; i++) for (const [name, argv] of impls) times.get(name).push(await once(argv));
const summary = {};
for (const [name, ts] of times) {
  ts.sort((a, b) => a - b);
  summary[name] = { min: ts[0], median: ts[Math.floor(ts.length / 2)], max: ts[ts.length - 1], runs: ts.length };
  console.error(`${name.padEnd(22)} time to ready: median ${summary[name].median.toFixed(1)} ms (${ts[0].toFixed(1)}–${ts[ts.length - 1].toFixed(1)}), ${ts.length} runs`);
}
console.log(JSON.stringify(summary));

