// Preloaded into a `tcpip-ts gateway` process by bench/profile-cps.js
// (`node --import`): counts, per process, the event-loop work a connection
// costs — setImmediate and setTimeout calls, calls into wasm (outermost
// WasmSession.run), frame-device reads and writes (calls and frames) — and
// writes them as JSON to $TT_CPS_COUNTERS on SIGUSR2. For
// profiling only; it patches prototypes of the built dist/ modules.
import { writeFileSync } from 'node:fs';

const out = process.env.TT_CPS_COUNTERS;
const counts = {
  setImmediate: 0, setTimeout: 0, clearTimeout: 0, queueMicrotask: 0,
  wasmCalls: 0, wasmCallsNested: 0,
  txCalls: 0, txFrames: 0, rxCalls: 0, rxFrames: 0,
  stackTimerArms: 0,
};

const wrap = (obj, name, key = name) => {
  const original = obj[name];
  obj[name] = function (...args) {
    counts[key]++;
    return original.apply(this, args);
  };
};
wrap(globalThis, 'setImmediate');
wrap(globalThis, 'setTimeout');
wrap(globalThis, 'clearTimeout');
wrap(globalThis, 'queueMicrotask');

const session = await import('../../dist/core/session.js');
const run = session.WasmSession.prototype.run;
session.WasmSession.prototype.run = function (body) {
  if (this.busy) counts.wasmCallsNested++;
  else counts.wasmCalls++;
  return run.call(this, body);
};
const clock = await import('../../dist/core/clock.js');
wrap(clock.realClock, 'setTimer', 'stackTimerArms');

const native = await import('../../dist/node/native.js');
const addon = native.loadNative();
const Device = addon.FrameDevice;
const write = Device.prototype.write;
Device.prototype.write = function (buffer, lengths, count) {
  counts.txCalls++;
  counts.txFrames += count;
  return write.call(this, buffer, lengths, count);
};
const readInto = Device.prototype.readInto;
Device.prototype.readInto = function (...args) {
  const n = readInto.apply(this, args);
  counts.rxCalls++;
  counts.rxFrames += n;
  return n;
};

// SIGUSR2: write the counts so far (the profiler takes differences).
process.on('SIGUSR2', () => {
  if (out) writeFileSync(out, JSON.stringify(counts));
});
