// Small helpers shared by the scenarios: waiting, statistics, formatting.

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Resolves after the current event-loop turn's I/O and immediates. */
export const nextTurn = () => new Promise((resolve) => setImmediate(resolve));

/** Nanosecond clock as a number of milliseconds (fine-grained, monotonic). */
export const nowMs = () => Number(process.hrtime.bigint()) / 1e6;

/**
 * Rejects with a clear message when `promise` has not settled after `ms`;
 * a hung measurement then fails its figure instead of the whole run.
 */
export function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no result after ${(ms / 1000).toFixed(0)} s`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** The q-quantile (0..1) of ascending-sorted numbers, linearly interpolated. */
export function quantile(sorted, q) {
  if (sorted.length === 0) return NaN;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.min(sorted.length - 1, lo + 1);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

/** A number with about three significant digits and thousands separators. */
export function formatValue(value) {
  if (value === null || value === undefined || Number.isNaN(value)) return '—';
  if (!Number.isFinite(value)) return String(value);
  const abs = Math.abs(value);
  if (abs >= 1000) return Math.round(value).toLocaleString('en-US');
  if (abs >= 100) return value.toFixed(0);
  if (abs >= 10) return value.toFixed(1);
  if (abs >= 1) return value.toFixed(2);
  if (abs === 0) return '0';
  return value.toPrecision(3);
}

export const KiB = 1024;

/**
 * Undo actions run in reverse order, each guarded: a measurement that fails
 * half-way still closes every stack and socket it opened.
 */
export class Cleanup {
  #actions = [];

  add(action) {
    this.#actions.push(action);
  }

  run() {
    for (const action of this.#actions.reverse()) {
      try {
        action();
      } catch {
        // Best effort: the stack may already have failed or closed.
      }
    }
    this.#actions = [];
  }
}
