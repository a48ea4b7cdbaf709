// Scale: memory per idle stack and how many stacks one process holds. Each
// point runs in a child process (scale-child.js) so that it starts from a
// clean heap, and so that running out of memory or address space ends the
// child, not the runner: the failure becomes the figure.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { KiB } from '../lib/util.js';

const CHILD = fileURLToPath(new URL('./scale-child.js', import.meta.url));

/** The issue's targets: ≤ 256 KiB per idle stack, 10,000 stacks in one process. */
const PER_STACK_TARGET = { op: '<=', value: 256 };
const STACKS_TARGET = 10_000;

/** Runs one child; resolves to its JSON result, or rejects with why it died. */
function runChild(args, timeoutMs, log) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let pending = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => {
      stderr += d;
      pending += d;
      const lines = pending.split('\n');
      pending = lines.pop();
      for (const line of lines) if (line.trim()) log(`  child: ${line}`);
    });
    const timer = setTimeout(() => {
      log(`  child ${child.pid} still running after ${timeoutMs / 1000} s; stopping it`);
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const line = stdout.trim().split('\n').pop();
      if (code === 0 && line) {
        try {
          resolve(JSON.parse(line));
          return;
        } catch {
          // Fall through: report what the child said.
        }
      }
      const tail = stderr.trim().split('\n').slice(-3).join(' / ');
      reject(new Error(`child exited with ${signal ?? `code ${code}`}${tail ? `: ${tail}` : ''}`));
    });
  });
}

export default {
  name: 'scale',
  title: 'idle stacks per process',
  description: 'Memory per idle stack (each with an interface on its own cable and a TCP listener), time to create, idle CPU, at 100, 1,000 and 10,000 stacks (--quick: 100 and 1,000), each in a child process; a full run also probes where creation fails.',
  async run(ctx) {
    const sizes = ctx.quick ? [100, 1000] : [100, 1000, 10_000];
    const idleMs = ctx.quick ? 1000 : 3000;
    for (const n of sizes) {
      const at = `${n.toLocaleString('en-US')} stacks`;
      const memGroup = 'Memory per idle stack';
      const expect = [
        { id: `stacks-${n}`, label: `${at}: stacks created`, chartLabel: at, group: 'Stacks created', unit: 'stacks', target: n === STACKS_TARGET ? { op: '>=', value: n } : undefined },
        { id: `rss-${n}`, label: `${at}: RSS per stack`, chartLabel: `RSS, ${at}`, group: memGroup, unit: 'KiB', target: PER_STACK_TARGET },
        { id: `wasm-${n}`, label: `${at}: wasm memory per stack`, chartLabel: `wasm memory, ${at}`, group: memGroup, unit: 'KiB', target: PER_STACK_TARGET },
        { id: `heap-${n}`, label: `${at}: JS heap per stack`, chartLabel: `JS heap, ${at}`, group: memGroup, unit: 'KiB' },
        { id: `create-${n}`, label: `${at}: time to create one`, chartLabel: at, group: 'Time to create a stack', unit: 'µs' },
        { id: `idle-cpu-${n}`, label: `${at}: CPU while idle`, chartLabel: at, group: 'CPU while all stacks are idle', unit: '% of a core' },
        { id: `wakeups-${n}`, label: `${at}: timer wake-ups per idle stack`, chartLabel: at, group: 'Timer wake-ups per idle stack', unit: 'per s' },
      ];
      await ctx.measure({ label: at, doing: `creating them in a child process, then ${idleMs / 1000} s idle`, expect }, async () => {
        const r = await runChild(['--expose-gc', CHILD, String(n), String(idleMs)], 180_000, (m) => ctx.log(m));
        if (r.failure) ctx.note(`${at}: creation failed at stack ${r.failure.at + 1}: ${r.failure.message}`);
        return [
          { ...expect[0], value: r.created, detail: r },
          { ...expect[1], value: r.rssBytesPerStack / KiB },
          { ...expect[2], value: r.wasmMemoryBytesPerStack / KiB },
          { ...expect[3], value: r.heapUsedBytesPerStack / KiB },
          { ...expect[4], value: r.createUsPerStack },
          { ...expect[5], value: r.idleCpuPercentOfOneCore },
          { ...expect[6], value: r.timerWakeupsPerStackPerSecond },
        ];
      });
    }
    if (ctx.quick) return;
    // Where does it stop? Create until creation fails (or 20,000), with V8's
    // defaults and without the trap handler's per-memory address-space
    // reservation.
    for (const [flags, how] of [[[], 'default flags'], [['--disable-wasm-trap-handler'], '--disable-wasm-trap-handler']]) {
      const label = `stacks until failure (max 20,000), ${how}`;
      const chartLabel = `until failure, ${how}`;
      await ctx.measure({ label, doing: 'creating stacks until one fails', group: 'Stacks created', unit: 'stacks', id: `limit-${flags.length}` }, async () => {
        const r = await runChild(['--expose-gc', ...flags, CHILD, '20000', '200', '--until-failure'], 300_000, (m) => ctx.log(m));
        ctx.note(r.failure
          ? `${how}: stack ${(r.failure.at + 1).toLocaleString('en-US')} failed: ${r.failure.message} (RSS then ${(r.rssBytes / 2 ** 30).toFixed(2)} GiB, ${r.memoryMappings} memory mappings)`
          : `${how}: all 20,000 stacks created (RSS ${(r.rssBytes / 2 ** 30).toFixed(2)} GiB, ${r.memoryMappings} memory mappings)`);
        return { id: `limit-${flags.length}`, label, chartLabel, unit: 'stacks', value: r.created, detail: r };
      });
    }
  },
};
