// Figures, progress lines, the final table, and the per-scenario JSON + SVG.
import { cpus, availableParallelism, release, totalmem, platform, arch, loadavg } from 'node:os';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { barChart } from './svg.js';
import { formatValue } from './util.js';

/** What machine a result came from: figures are only comparable on the same one. */
export function machineInfo() {
  const list = cpus();
  return {
    cpu: list[0]?.model ?? 'unknown',
    cores: typeof availableParallelism === 'function' ? availableParallelism() : list.length,
    node: process.version,
    v8: process.versions.v8,
    os: `${platform()} ${release()} ${arch()}`,
    memoryGiB: +(totalmem() / 2 ** 30).toFixed(1),
    // Other work on the machine moves every figure: the 1-minute load when
    // the run started (0 on an idle machine) says how much there was.
    loadAverage1m: +loadavg()[0].toFixed(2),
  };
}

/** Whether `value` satisfies `target` ({ op: '>=' | '<=', value }). */
export function meets(value, target) {
  if (!target || value === null || value === undefined || Number.isNaN(value)) return undefined;
  return target.op === '>=' ? value >= target.value : value <= target.value;
}

export function targetText(target) {
  return target ? `${target.op === '>=' ? '≥' : '≤'} ${target.value.toLocaleString('en-US')}` : '';
}

// Elapsed time since the runner started (scenario processes inherit it).
const started = Number(process.env.TCPIP_TS_BENCH_T0) || Date.now();
const elapsed = () => `${((Date.now() - started) / 1000).toFixed(1).padStart(5)}s`;

/** Progress goes to stderr, so stdout carries only the table. */
export function progress(scope, message) {
  process.stderr.write(`${elapsed()} [${scope}] ${message}\n`);
}

/**
 * The context a scenario runs with: options, progress, and figure recording.
 * A figure is { id, label, group, unit, value, target?, detail?, error?, failedBy? };
 * `group` names the chart panel it is drawn in. `failedBy` names the other
 * project's tool whose failure an error is (slirp4netns stalling on its own
 * forwards): the figure is reported failed, but the run is not, since CI
 * must go red on what tcpip-ts does, not on a peer's known bugs.
 */
export class ScenarioContext {
  constructor(scenario, options) {
    this.scenario = scenario;
    this.quick = options.quick;
    this.figures = [];
    this.notes = [];
  }

  log(message) {
    progress(this.scenario, message);
  }

  /** Records one figure and prints its progress line. */
  figure(figure) {
    // A failed measurement has not met its target either.
    const met = figure.error ? (figure.target ? false : undefined) : meets(figure.value, figure.target);
    const f = { ...figure, met };
    this.figures.push(f);
    const verdict = f.error ? '' : `: ${f.met ? 'met' : 'not met'}`;
    const target = f.target ? `  (target ${targetText(f.target)}${verdict})` : '';
    const spread = f.range ? `, range ${formatValue(f.range[0])}–${formatValue(f.range[1])}` : '';
    const value = f.error ? `FAILED: ${f.error}` : `${formatValue(f.value)} ${f.unit}${spread}`;
    this.log(`${f.label}: ${value}${target}`);
    return f;
  }

  /** A note that belongs in the JSON and the README (e.g. where scale stopped). */
  note(text) {
    this.notes.push(text);
    this.log(`note: ${text}`);
  }

  /**
   * Runs one measurement. `body` returns a figure or an array of figures
   * (each without `group` if `meta.group` supplies it). A throw records a
   * failed figure for each of `meta.expect` (or one for `meta.label`) and the
   * scenario carries on with its next measurement.
   */
  async measure(meta, body) {
    this.log(`${meta.label}: ${meta.doing ?? 'measuring'}…`);
    try {
      const out = await body();
      const list = Array.isArray(out) ? out : [out];
      return list.map((f) => this.figure({ group: meta.group, ...f }));
    } catch (err) {
      const message = err?.code ? `${err.code}: ${err.message}` : String(err?.message ?? err);
      const expected = meta.expect ?? [{ id: meta.id, label: meta.label, unit: meta.unit ?? '' , target: meta.target }];
      return expected.map((f) => this.figure({ group: meta.group, ...f, value: null, error: message }));
    }
  }
}

/** Writes bench/results/<scenario>.json and .svg; returns the paths. */
export function writeResults(dir, result, machine) {
  mkdirSync(dir, { recursive: true });
  const json = join(dir, `${result.scenario}.json`);
  const svg = join(dir, `${result.scenario}.svg`);
  writeFileSync(json, `${JSON.stringify({ ...result, machine }, null, 2)}\n`);
  const groups = new Map();
  for (const f of result.figures) {
    const key = `${f.group ?? f.unit}\u0000${f.unit}`;
    if (!groups.has(key)) groups.set(key, { title: f.group ?? f.unit, unit: f.unit, bars: [] });
    const note = f.error ? f.error.slice(0, 60) : f.range ? `${formatValue(f.range[0])}–${formatValue(f.range[1])}` : undefined;
    groups.get(key).bars.push({ label: f.chartLabel ?? f.label, value: f.error ? null : f.value, target: f.target, met: f.met, display: formatValue(f.value), note });
  }
  const subtitle = `${result.date.slice(0, 16).replace('T', ' ')} UTC · ${machine.cpu}, ${machine.cores} cores · Node ${machine.node}` +
    `${result.quick ? ' · --quick' : ''} · ${result.seconds.toFixed(0)} s`;
  writeFileSync(svg, barChart({ title: `tcpip-ts bench: ${result.title}`, subtitle, panels: [...groups.values()] }));
  return { json, svg };
}

/** The summary table (GitHub markdown, also readable in a terminal). */
export function table(results) {
  const rows = [['scenario', 'measurement', 'value', 'unit', 'target', 'met']];
  for (const r of results) {
    for (const f of r.figures) {
      rows.push([
        r.scenario,
        f.label,
        f.error ? `failed${f.failedBy ? ` (${f.failedBy})` : ''}: ${f.error}` : formatValue(f.value) + (f.range ? ` (${formatValue(f.range[0])}–${formatValue(f.range[1])})` : ''),
        f.unit,
        targetText(f.target),
        f.met === undefined ? '' : f.met ? 'yes' : '**no**',
      ]);
    }
    if (r.error) rows.push([r.scenario, '(scenario)', `failed: ${r.error}`, '', '', '']);
  }
  const widths = rows[0].map((_, c) => Math.max(...rows.map((row) => [...row[c]].length)));
  const line = (row) => `| ${row.map((cell, c) => (c === 2 ? cell.padStart(widths[c]) : cell.padEnd(widths[c]))).join(' | ')} |`;
  const sep = `|${widths.map((w, c) => (c === 2 ? `${'-'.repeat(w + 1)}:` : '-'.repeat(w + 2))).join('|')}|`;
  return [line(rows[0]), sep, ...rows.slice(1).map(line)].join('\n');
}
