// One scale point, in its own process (`node --expose-gc scale-child.js N
// IDLE_MS [--until-failure]`), so that its heap starts clean and a crash or an
// exhausted address space ends only this child. Creates N idle stacks, each
// with an interface on its own cable and a TCP listener, then prints one JSON
// line on stdout; progress goes to stderr.
import { readFileSync } from 'node:fs';
import { createCable, createStack, realClock } from '../../dist/index.js';

const requested = Number(process.argv[2]);
const idleMs = Number(process.argv[3] ?? 1000);
const untilFailure = process.argv.includes('--until-failure');
const log = (message) => process.stderr.write(`${message}\n`);
const gc = () => {
  if (typeof globalThis.gc === 'function') {
    globalThis.gc();
    globalThis.gc();
  }
};
const settle = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Count the stacks' timer wake-ups (the clock is the library's exported
// realClock, which every stack here uses): an idle stack's CPU cost.
let timerArms = 0;
const setTimer = realClock.setTimer;
realClock.setTimer = function counted(...args) {
  timerArms++;
  return setTimer.apply(this, args);
};

function makeStack(i) {
  const stack = createStack();
  try {
    const [link] = createCable({ mtu: 1500 });
    stack.addInterface({ link, ipv4: `10.${(i >> 8) & 0xff}.${i & 0xff}.1/8` });
    stack.createServer(() => {}).listen(80);
  } catch (err) {
    stack.close();
    throw err;
  }
  return stack;
}

// The module is compiled and the code paths warmed once, outside the count:
// that cost is per process, not per stack.
makeStack(0).close();
gc();
await settle(100);
const before = process.memoryUsage();

const stacks = [];
let failure = null;
const step = Math.max(1, Math.round(requested / 10));
const t0 = performance.now();
for (let i = 0; i < requested; i++) {
  try {
    stacks.push(makeStack(i));
  } catch (err) {
    failure = { at: i, code: err.code ?? err.name, message: err.message };
    log(`stack ${i + 1} failed: ${err.message}`);
    break;
  }
  if ((i + 1) % step === 0) log(`${i + 1} stacks, ${((performance.now() - t0) / 1000).toFixed(1)} s, RSS ${(process.memoryUsage.rss() / 2 ** 20).toFixed(0)} MiB`);
}
const createMs = performance.now() - t0;
const created = stacks.length;

gc();
await settle(200);
gc();
const after = process.memoryUsage();
// Each wasm memory is its own mapping: vm.max_map_count (65,530 by default)
// is a limit of its own.
let memoryMappings = null;
try {
  memoryMappings = readFileSync('/proc/self/maps', 'utf8').split('\n').length - 1;
} catch {
  // Not Linux.
}
let wasmBytes = 0;
let heapBytes = 0;
for (const s of stacks) {
  const st = s.stats();
  wasmBytes += st.memoryBytes;
  heapBytes += st.heapBytes;
}

// Idle cost: CPU and timer wake-ups while nothing is sent.
timerArms = 0;
const cpu0 = process.cpuUsage();
const idle0 = performance.now();
await settle(idleMs);
const cpu = process.cpuUsage(cpu0);
const idleSeconds = (performance.now() - idle0) / 1000;
const wakeups = timerArms;

const c0 = performance.now();
for (const s of stacks) s.close();
const closeMs = performance.now() - c0;

const per = (bytes) => (created > 0 ? bytes / created : null);
process.stdout.write(`${JSON.stringify({
  requested,
  created,
  untilFailure,
  failure,
  createMs,
  createUsPerStack: created > 0 ? (createMs * 1000) / created : null,
  closeMs,
  rssBytesPerStack: per(after.rss - before.rss),
  heapUsedBytesPerStack: per(after.heapUsed - before.heapUsed),
  externalBytesPerStack: per(after.external - before.external),
  arrayBuffersBytesPerStack: per(after.arrayBuffers - before.arrayBuffers),
  wasmMemoryBytesPerStack: per(wasmBytes),
  lwipHeapBytesPerStack: per(heapBytes),
  rssBytes: after.rss,
  idleCpuPercentOfOneCore: (100 * (cpu.user + cpu.system)) / 1e6 / idleSeconds,
  timerWakeupsPerStackPerSecond: created > 0 ? wakeups / created / idleSeconds : null,
  memoryMappings,
  execArgv: process.execArgv,
})}\n`);
