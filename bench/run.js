#!/usr/bin/env node
// The benchmark runner: `node bench/run.js [--quick] [scenario ...]`.
// Progress goes to stderr as it runs; the summary table goes to stdout at the
// end; bench/results/<scenario>.json and .svg are written after each scenario.
//
// Each scenario runs in its own Node process (this file again, with
// --scenario-child): its figures do not depend on what ran before it (JIT
// state, heap size; micro-benchmark figures moved by up to 2x after the
// in-process scenario), and a crash, an abort or an out-of-memory ends that
// scenario only.
import { spawn } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { dirname, join, relative } from 'node:path';
import { machineInfo, progress, ScenarioContext, table, writeResults } from './lib/report.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const SELF = fileURLToPath(import.meta.url);

const USAGE = `usage: node bench/run.js [options] [scenario ...]
       npm run bench -- [options] [scenario ...]

options:
  --quick            short measurements (the whole run within two minutes; what CI runs)
  --only a,b         run only these scenarios (same as naming them as arguments)
  --out DIR          where to write <scenario>.json and .svg (default bench/results)
  --list             list the scenarios and exit
  -h, --help         this text`;

function parseArgs(argv) {
  const opts = { quick: false, only: [], out: join(HERE, 'results'), list: false, child: null, resultFile: null };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const [flag, inline] = arg.startsWith('--') && arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    const value = () => {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new Error(`${flag} needs a value`);
      return v;
    };
    if (flag === '--quick') opts.quick = true;
    else if (flag === '--only') opts.only.push(...value().split(',').filter(Boolean));
    else if (flag === '--out') opts.out = value();
    else if (flag === '--list') opts.list = true;
    else if (flag === '--scenario-child') opts.child = value();
    else if (flag === '--result-file') opts.resultFile = value();
    else if (flag === '-h' || flag === '--help') opts.help = true;
    else if (flag.startsWith('-')) throw new Error(`unknown option ${flag}`);
    else opts.only.push(flag);
  }
  return opts;
}

async function main() {
  let opts;
  try {
    opts = parseArgs(process.argv.slice(2));
  } catch (err) {
    console.error(`${err.message}\n\n${USAGE}`);
    return 2;
  }
  if (opts.help) {
    console.log(USAGE);
    return 0;
  }
  let scenarios;
  try {
    ({ scenarios } = await import('./scenarios/index.js'));
  } catch (err) {
    console.error(`bench: cannot load the scenarios (${err.message}).\n` +
      'Build the library first: `npx tsc -p tsconfig.json` (npm run bench does it through scripts/setup.sh).');
    return 1;
  }
  if (opts.list) {
    for (const s of scenarios) console.log(`${s.name.padEnd(10)} ${s.description}`);
    return 0;
  }
  if (opts.child) opts.only = [opts.child];
  const unknown = opts.only.filter((name) => !scenarios.some((s) => s.name === name));
  if (unknown.length > 0) {
    console.error(`unknown scenario: ${unknown.join(', ')} (have: ${scenarios.map((s) => s.name).join(', ')})`);
    return 2;
  }
  const selected = opts.only.length === 0 ? scenarios : scenarios.filter((s) => opts.only.includes(s.name));
  if (opts.child) return runScenarioHere(scenarios.find((s) => s.name === opts.child), opts);
  const machine = machineInfo();
  const runStart = Date.now();
  progress('bench', `${selected.map((s) => s.name).join(', ')}${opts.quick ? ' (--quick)' : ''} on ${machine.cpu}, ${machine.cores} cores, Node ${machine.node}, load average ${machine.loadAverage1m}`);

  const results = [];
  for (const scenario of selected) {
    const result = await runScenarioProcess(scenario, opts);
    results.push(result);
    try {
      const paths = writeResults(opts.out, result, machine);
      progress(scenario.name, `done in ${result.seconds.toFixed(1)} s; wrote ${relative(process.cwd(), paths.json)} and ${relative(process.cwd(), paths.svg)}`);
    } catch (err) {
      progress(scenario.name, `could not write results: ${err.message}`);
    }
  }

  const total = (Date.now() - runStart) / 1000;
  console.log(`\ntcpip-ts bench, ${new Date().toISOString().slice(0, 10)}${opts.quick ? ' (--quick)' : ''}: ${machine.cpu}, ${machine.cores} cores, ` +
    `Node ${machine.node}, load average ${machine.loadAverage1m} at start; ${total.toFixed(0)} s\n`);
  console.log(table(results));
  const notes = results.flatMap((r) => r.notes.map((n) => `- ${r.scenario}: ${n}`));
  if (notes.length > 0) console.log(`\n${notes.join('\n')}`);
  const failures = results.filter((r) => r.error || r.figures.some((f) => f.error && !f.failedBy));
  return failures.length > 0 ? 1 : 0;
}

/** In the scenario's own process: runs it, writes its result for the parent. */
async function runScenarioHere(scenario, opts) {
  const ctx = new ScenarioContext(scenario.name, opts);
  const started = Date.now();
  let error = null;
  try {
    await scenario.run(ctx);
  } catch (err) {
    // A scenario that throws outside its measurements still reports what it
    // measured so far.
    error = err?.message ?? String(err);
    progress(scenario.name, `FAILED: ${err?.stack ?? error}`);
  }
  const result = {
    scenario: scenario.name,
    title: scenario.title,
    description: scenario.description,
    date: new Date().toISOString(),
    quick: opts.quick,
    seconds: (Date.now() - started) / 1000,
    figures: ctx.figures,
    notes: ctx.notes,
    error,
  };
  writeFileSync(opts.resultFile, JSON.stringify(result));
  return 0;
}

/** Runs one scenario in a child process; a child that dies becomes a failed result. */
function runScenarioProcess(scenario, opts) {
  const resultFile = join(tmpdir(), `tcpip-ts-bench-${process.pid}-${scenario.name}.json`);
  rmSync(resultFile, { force: true });
  const args = [...process.execArgv, SELF, '--scenario-child', scenario.name, '--result-file', resultFile];
  if (opts.quick) args.push('--quick');
  const started = Date.now();
  progress(scenario.name, `start: ${scenario.description}`);
  return new Promise((resolve) => {
    // stdout and stderr are shared: the child's progress appears as it runs.
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'inherit', 'inherit'], env: { ...process.env, TCPIP_TS_BENCH_T0: String(T0) } });
    let settled = false;
    const finish = (why) => {
      if (settled) return;
      settled = true;
      let result;
      try {
        result = JSON.parse(readFileSync(resultFile, 'utf8'));
      } catch {
        result = {
          scenario: scenario.name, title: scenario.title, description: scenario.description,
          date: new Date().toISOString(), quick: opts.quick, seconds: (Date.now() - started) / 1000,
          figures: [], notes: [], error: `the scenario's process ${why} before reporting`,
        };
        progress(scenario.name, `FAILED: ${result.error}`);
      }
      rmSync(resultFile, { force: true });
      resolve(result);
    };
    // Every measurement has its own timeout; this one catches a scenario that
    // hangs between them, so that CI never waits forever.
    const limitMs = (opts.quick ? 5 : 20) * 60_000;
    const timer = setTimeout(() => {
      progress(scenario.name, `still running after ${limitMs / 60_000} min; stopping it`);
      child.kill('SIGKILL');
    }, limitMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      finish(`could not start (${err.message})`);
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      finish(signal ? `was killed by ${signal}` : `exited with code ${code}`);
    });
  });
}

const T0 = Number(process.env.TCPIP_TS_BENCH_T0) || Date.now();
process.exitCode = await main();

// Every scenario closes what it opened, so the process ends here. If something
// still holds the event loop, say what instead of hanging CI.
setTimeout(() => {
  console.error(`bench: still running 15 s after finishing; open resources: ${process.getActiveResourcesInfo().join(', ')}`);
  process.exit(process.exitCode || 1);
}, 15_000).unref();
