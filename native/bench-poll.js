#!/usr/bin/env node
// How many frames per second FrameDevice moves over uv_poll, on a unix
// datagram socket pair (one frame per datagram, one syscall per frame).
// Not a test. Run after `npm run build:native`:
//   node native/bench-poll.js [seconds=3] [frameSize=1500]
// Three figures: sending and receiving on this one thread; receiving only
// (a child process sends); sending only (a child process receives).
import { spawn } from 'node:child_process';
import { closeSync } from 'node:fs';
import { createRequire } from 'node:module';

const addon = createRequire(import.meta.url)('./build/Release/tcpip_native.node');
const SLOTS = 64;
const BATCH = 64;
/** Keep this many frames in flight in the native queue at most. */
const HIGH_WATER = 256;

const [, , arg1, arg2, arg3, arg4] = process.argv;

if (arg1 === '--child') {
  child(arg2, Number(arg3), Number(arg4));
} else {
  await main(Number(arg1 ?? 3), Number(arg2 ?? 1500));
}

function frames(size) {
  const buffer = new Uint8Array(size * BATCH).fill(0xab);
  const lengths = new Uint32Array(BATCH).fill(size);
  return { buffer, lengths };
}

/** Writes batches whenever the native queue is low, until stopped. */
function pump(device, size) {
  const { buffer, lengths } = frames(size);
  let running = true;
  const tick = () => {
    if (!running) return;
    if (device.stats().txQueued < HIGH_WATER) device.write(buffer, lengths, BATCH);
    setImmediate(tick);
  };
  setImmediate(tick);
  return () => {
    running = false;
  };
}

function counter(fd) {
  const c = { frames: 0, bytes: 0, calls: 0 };
  const device = new addon.FrameDevice(fd, SLOTS, 2048, (count) => {
    c.calls++;
    c.frames += count;
    for (let i = 0; i < count; i++) c.bytes += device.rxLengths[i];
  }, (err) => {
    console.error('receiver:', err.message);
  });
  return { device, c };
}

function report(label, frameCount, bytes, seconds, calls) {
  const fps = frameCount / seconds;
  const gbit = (bytes * 8) / seconds / 1e9;
  const perCall = calls ? `, ${(frameCount / calls).toFixed(1)} frames per onFrames` : '';
  console.log(`${label.padEnd(34)} ${(fps / 1e3).toFixed(0).padStart(6)} kframes/s  ${gbit.toFixed(2)} Gbit/s${perCall}`);
}

function child(mode, seconds, size) {
  // fd 3 is our end of the pair.
  if (mode === 'send') {
    const device = new addon.FrameDevice(3, SLOTS, 2048, () => {}, (err) => console.error('child sender:', err.message));
    const stop = pump(device, size);
    setTimeout(() => {
      stop();
      device.close();
    }, seconds * 1000 + 500);
  } else {
    const { device, c } = counter(3);
    device.start();
    process.on('message', (m) => {
      if (m === 'report') process.send({ ...c });
      if (m === 'exit') {
        device.close();
        process.disconnect();
      }
    });
  }
}

async function measure(device, c, seconds) {
  await new Promise((r) => setTimeout(r, 200)); // warm up
  const start = { ...c };
  const t0 = process.hrtime.bigint();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const dt = Number(process.hrtime.bigint() - t0) / 1e9;
  return { frames: c.frames - start.frames, bytes: c.bytes - start.bytes, calls: c.calls - start.calls, dt };
}

async function main(seconds, size) {
  console.log(`FrameDevice over a unix datagram socketpair, ${size}-byte frames, ${SLOTS} rx slots, ${seconds} s each (node ${process.version})`);

  {
    const { fds } = addon.openUnixDgramPair();
    const a = new addon.FrameDevice(fds[0], SLOTS, 2048, () => {}, (err) => console.error('sender:', err.message));
    const { device: b, c } = counter(fds[1]);
    b.start();
    const stop = pump(a, size);
    const m = await measure(b, c, seconds);
    stop();
    report('one thread (send + receive)', m.frames, m.bytes, m.dt, m.calls);
    const s = a.stats();
    if (s.txDropped || s.txErrors) console.log(`  sender dropped ${s.txDropped}, errors ${s.txErrors}`);
    a.close();
    b.close();
  }

  {
    const { fds } = addon.openUnixDgramPair();
    const { device: b, c } = counter(fds[1]);
    b.start();
    const kid = spawn(process.execPath, [new URL(import.meta.url).pathname, '--child', 'send', String(seconds), String(size)], {
      stdio: ['ignore', 'inherit', 'inherit', fds[0]],
    });
    closeSync(fds[0]); // the child has its own copy now
    const m = await measure(b, c, seconds);
    report('receive only (child sends)', m.frames, m.bytes, m.dt, m.calls);
    b.close();
    kid.kill();
  }

  {
    const { fds } = addon.openUnixDgramPair();
    const a = new addon.FrameDevice(fds[0], SLOTS, 2048, () => {}, (err) => console.error('sender:', err.message));
    const kid = spawn(process.execPath, [new URL(import.meta.url).pathname, '--child', 'recv', '0', String(size)], {
      stdio: ['ignore', 'inherit', 'inherit', fds[1], 'ipc'],
    });
    closeSync(fds[1]);
    const ask = () => new Promise((r) => { kid.once('message', r); kid.send('report'); });
    const stop = pump(a, size);
    await new Promise((r) => setTimeout(r, 200));
    const c0 = await ask();
    const t0 = process.hrtime.bigint();
    await new Promise((r) => setTimeout(r, seconds * 1000));
    const c1 = await ask();
    const dt = Number(process.hrtime.bigint() - t0) / 1e9;
    stop();
    report('send only (child receives)', c1.frames - c0.frames, c1.bytes - c0.bytes, dt, c1.calls - c0.calls);
    kid.send('exit');
    a.close();
  }
}
