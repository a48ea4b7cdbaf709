// The native addon against the real kernel: TAP/TUN in a network namespace
// this file creates and removes, unix datagram sockets in a temp directory.
import { execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readlinkSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadNative, NATIVE_BUILD_PATH, type FrameDevice, type NativeError } from '../src/node/native.js';

const run = promisify(execFile);
const native = loadNative();

const isRoot = process.getuid?.() === 0;
const hasTun = existsSync('/dev/net/tun');
const hasIp = (() => {
  try {
    execFileSync('ip', ['-V'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();
const noDeviceTests =
  process.platform !== 'linux' ? `not Linux (${process.platform})`
  : !isRoot ? 'not running as root'
  : !hasTun ? 'no /dev/net/tun'
  : !hasIp ? "no 'ip' command (iproute2)"
  : null;
if (noDeviceTests) console.warn(`native.test.ts: skipping TAP/TUN tests: ${noDeviceTests}`);
const itDevice = noDeviceTests ? it.skip : it;

async function waitFor(check: () => boolean, what: string, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** A device whose received frames are copied into `frames`. */
function receiver(fd: number, slots = 64, slotSize = 2048) {
  const frames: Uint8Array[] = [];
  const errors: NativeError[] = [];
  const device: FrameDevice = new native.FrameDevice(
    fd,
    slots,
    slotSize,
    (count) => {
      const rx = new Uint8Array(device.rxBuffer);
      for (let i = 0; i < count; i++) frames.push(rx.slice(i * slotSize, i * slotSize + device.rxLengths[i]));
    },
    (err) => errors.push(err),
  );
  return { device, frames, errors };
}

/** `count` frames of varied lengths, each starting with its index, back to back. */
function makeFrames(count: number, base = 60): { buffer: Uint8Array; lengths: Uint32Array; frames: Uint8Array[] } {
  const lengths = new Uint32Array(count);
  const frames: Uint8Array[] = [];
  for (let i = 0; i < count; i++) {
    const f = randomBytes(base + ((i * 37) % 1400));
    f.writeUInt32BE(i, 0);
    frames.push(f);
    lengths[i] = f.length;
  }
  const buffer = new Uint8Array(lengths.reduce((a, b) => a + b, 0));
  let off = 0;
  for (const f of frames) {
    buffer.set(f, off);
    off += f.length;
  }
  return { buffer, lengths, frames };
}

describe('native addon: TAP/TUN in a network namespace', () => {
  const ns = `tcpipts-native-${randomBytes(4).toString('hex')}`;
  const nsPath = `/run/netns/${ns}`;
  let created = false;

  beforeAll(async () => {
    if (noDeviceTests) return;
    await run('ip', ['netns', 'add', ns]);
    created = true;
  });

  afterAll(async () => {
    if (created) await run('ip', ['netns', 'del', ns]);
  });

  const linkJson = async (name: string) => {
    const { stdout } = await run('ip', ['-n', ns, '-j', '-s', '-d', 'link', 'show', name]);
    return JSON.parse(stdout)[0];
  };

  itDevice('creates a TAP inside the namespace, up with the requested MTU, and moves frames both ways', async () => {
    const { fd, name } = native.openTap({ name: 'tnat0', tun: false, netns: nsPath, mtu: 1400, up: true });
    const { device, frames, errors } = receiver(fd);
    try {
      expect(name).toBe('tnat0');
      const link = await linkJson(name);
      expect(link.mtu).toBe(1400);
      expect(link.flags).toContain('UP');
      expect(link.link_type).toBe('ether');
      expect(link.linkinfo.info_kind).toBe('tun');
      expect(link.linkinfo.info_data.type).toBe('tap');
      // Not in our namespace: the thread came back.
      await expect(run('ip', ['link', 'show', name])).rejects.toThrow();

      // Receive: the kernel ARPs for a neighbour out of the TAP.
      device.start();
      await run('ip', ['-n', ns, 'addr', 'add', '10.77.0.1/24', 'dev', name]);
      const ping = run('ip', ['netns', 'exec', ns, 'ping', '-c', '1', '-W', '1', '10.77.0.2']).catch(() => undefined);
      await waitFor(() => frames.some((f) => f[12] === 0x08 && f[13] === 0x06), 'an ARP request from the namespace');
      await ping;

      // Transmit: a broadcast frame shows up in the interface's receive counter.
      const before = (await linkJson(name)).stats64.rx.packets;
      const frame = new Uint8Array(60);
      frame.fill(0xff, 0, 6);
      frame.set([0x02, 0, 0, 0, 0, 1], 6);
      frame.set([0x88, 0xb5], 12); // local experimental ethertype
      expect(device.write(frame, new Uint32Array([60]), 1)).toBe(1);
      await waitFor(() => device.stats().txFrames === 1, 'the write');
      let after = before;
      for (let i = 0; i < 100 && after === before; i++) {
        after = (await linkJson(name)).stats64.rx.packets;
      }
      expect(after).toBe(before + 1);
      expect(errors).toEqual([]);
      expect(device.stats()).toMatchObject({ txFrames: 1, txBytes: 60, txErrors: 0, txDropped: 0, rxTruncated: 0, rxErrors: 0 });
      expect(device.stats().rxFrames).toBe(frames.length);
    } finally {
      device.close();
    }
  });

  itDevice('creates a TUN device with a kernel-chosen name', async () => {
    const { fd, name } = native.openTap({ tun: true, netns: nsPath, mtu: 1280 });
    const { device } = receiver(fd);
    try {
      expect(name).toMatch(/^tun\d+$/);
      const link = await linkJson(name);
      expect(link.linkinfo.info_data.type).toBe('tun');
      expect(link.linkinfo.info_data.pi).toBe(false);
      expect(link.mtu).toBe(1280);
      expect(link.flags).not.toContain('UP');
    } finally {
      device.close();
    }
  });

  itDevice('close() twice is harmless; write() after close returns 0 and counts nothing; the device goes away', async () => {
    const { fd, name } = native.openTap({ name: 'tnat1', tun: false, netns: nsPath, up: true });
    const { device } = receiver(fd);
    device.start();
    device.close();
    device.close();
    expect(() => device.start()).toThrow(expect.objectContaining({ code: 'ERR_DEVICE_CLOSED' }));
    device.stop();
    device.ref();
    device.unref();
    expect(device.write(new Uint8Array(60), new Uint32Array([60]), 1)).toBe(0);
    expect(device.stats()).toMatchObject({ txFrames: 0, txErrors: 0, txDropped: 0 });
    await waitFor(() => {
      try {
        execFileSync('ip', ['-n', ns, 'link', 'show', name], { stdio: 'ignore' });
        return false;
      } catch {
        return true;
      }
    }, 'the TAP to disappear with its fd');
  });

  itDevice('a TAP deleted under a started device reports EBADFD through onError once', async () => {
    const { fd, name } = native.openTap({ name: 'tnat2', tun: false, netns: nsPath, up: true });
    const { device, errors } = receiver(fd);
    try {
      device.start();
      await run('ip', ['-n', ns, 'link', 'del', name]);
      await waitFor(() => errors.length > 0, 'onError');
      await new Promise((r) => setTimeout(r, 20));
      expect(errors).toHaveLength(1);
      expect(errors[0].code).toBe('EBADFD');
      expect(errors[0].message).toMatch(/fd \d+/);
    } finally {
      device.close();
    }
  });

  itDevice('a namespace path that does not exist throws ENOENT naming the path', () => {
    const path = `/run/netns/${ns}-nope`;
    let error: NativeError | undefined;
    try {
      native.openTap({ tun: false, netns: path });
    } catch (err) {
      error = err as NativeError;
    }
    expect(error).toBeInstanceOf(Error);
    expect(error!.code).toBe('ENOENT');
    expect(error!.message).toContain(path);
    expect(error!.message).toBe(`cannot open network namespace ${path}: No such file or directory (ENOENT)`);
  });

  itDevice('failures (busy name, bad MTU, not a namespace) throw coded errors and leave this thread at home', () => {
    // setns() acts on the calling thread, which is this one.
    const home = readlinkSync('/proc/thread-self/ns/net');
    const { fd } = native.openTap({ name: 'tnat3', tun: false, netns: nsPath });
    const { device } = receiver(fd);
    try {
      expect(readlinkSync('/proc/thread-self/ns/net')).toBe(home);
      expect(() => native.openTap({ name: 'tnat3', tun: false, netns: nsPath })).toThrow(
        expect.objectContaining({ code: 'EBUSY', message: 'cannot create or attach tap device tnat3: Device or resource busy (EBUSY)' }),
      );
      expect(readlinkSync('/proc/thread-self/ns/net')).toBe(home);
      expect(() => native.openTap({ name: 'tnat4', tun: false, netns: nsPath, mtu: 65535 })).toThrow(
        expect.objectContaining({ code: 'EINVAL', message: expect.stringContaining('cannot set the MTU of tnat4 to 65535') }),
      );
      expect(readlinkSync('/proc/thread-self/ns/net')).toBe(home);
      expect(() => native.openTap({ tun: false, netns: '/dev/null' })).toThrow(
        expect.objectContaining({ code: 'EINVAL', message: expect.stringContaining('cannot enter network namespace /dev/null') }),
      );
      expect(readlinkSync('/proc/thread-self/ns/net')).toBe(home);
    } finally {
      device.close();
    }
  });
});

describe('native addon: unix datagram sockets', () => {
  let dir: string;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'tcpipts-native-'));
  });

  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('a socket pair exchanges 100-frame batches both ways, in order', async () => {
    const { fds } = native.openUnixDgramPair();
    const a = receiver(fds[0]);
    const b = receiver(fds[1]);
    try {
      a.device.start();
      b.device.start();
      const ab = makeFrames(100);
      const ba = makeFrames(100, 200);
      expect(a.device.write(ab.buffer, ab.lengths, 100)).toBe(100);
      expect(b.device.write(ba.buffer, ba.lengths, 100)).toBe(100);
      await waitFor(() => a.frames.length === 100 && b.frames.length === 100, 'both batches');
      expect(b.frames.map((f) => f.length)).toEqual([...ab.lengths]);
      expect(a.frames.map((f) => f.length)).toEqual([...ba.lengths]);
      expect(b.frames.every((f, i) => Buffer.from(f).equals(ab.frames[i]))).toBe(true);
      expect(a.frames.every((f, i) => Buffer.from(f).equals(ba.frames[i]))).toBe(true);
      const bytesAb = ab.lengths.reduce((x, y) => x + y, 0);
      const bytesBa = ba.lengths.reduce((x, y) => x + y, 0);
      await waitFor(() => a.device.stats().txQueued === 0 && b.device.stats().txQueued === 0, 'queues to drain');
      expect(a.device.stats()).toEqual({
        rxFrames: 100, rxBytes: bytesBa, rxTruncated: 0, rxErrors: 0,
        txFrames: 100, txBytes: bytesAb, txQueued: 0, txDropped: 0, txErrors: 0,
        rxGso: 0, rxBadOffload: 0, txGso: 0, txBadOffload: 0, rxHello: 0, peersLost: 0, peersLearned: 0,
      });
      expect(b.device.stats()).toEqual({
        rxFrames: 100, rxBytes: bytesAb, rxTruncated: 0, rxErrors: 0,
        txFrames: 100, txBytes: bytesBa, txQueued: 0, txDropped: 0, txErrors: 0,
        rxGso: 0, rxBadOffload: 0, txGso: 0, txBadOffload: 0, rxHello: 0, peersLost: 0, peersLearned: 0,
      });
      expect(a.errors).toEqual([]);
      expect(b.errors).toEqual([]);
    } finally {
      a.device.close();
      b.device.close();
    }
  });

  it('queues frames while the socket is full (bounded: 2048 frames), then drains them in order', async () => {
    const { fds } = native.openUnixDgramPair();
    const a = receiver(fds[0]);
    const b = receiver(fds[1], 256, 1500);
    try {
      // 64 frames of 1500 bytes, each numbered, per write.
      let next = 0;
      const lengths = new Uint32Array(64).fill(1500);
      const batch = () => {
        const buffer = new Uint8Array(64 * 1500);
        const view = new DataView(buffer.buffer);
        for (let i = 0; i < 64; i++) view.setUint32(i * 1500, next + i);
        const accepted = a.device.write(buffer, lengths, 64);
        next += accepted;
        return accepted;
      };
      // Nobody reads yet: fill the socket buffer until frames start queueing.
      for (let i = 0; i < 1000 && a.device.stats().txQueued === 0; i++) batch();
      expect(a.device.stats().txQueued).toBeGreaterThan(0);
      const sentBeforeQueue = a.device.stats().txFrames;
      // Fill the queue past its bound: the excess is dropped and counted, not accepted.
      while (a.device.stats().txDropped === 0) batch();
      expect(a.device.stats().txQueued).toBe(2048);
      const dropped = a.device.stats().txDropped;
      expect(next).toBe(sentBeforeQueue + 2048);
      expect(a.device.stats().txFrames).toBe(sentBeforeQueue);

      b.device.start();
      await waitFor(() => b.frames.length === next, `${next} frames`, 10_000);
      const order = b.frames.map((f) => new DataView(f.buffer, f.byteOffset).getUint32(0));
      expect(order).toEqual(Array.from({ length: next }, (_, i) => i));
      expect(a.device.stats()).toMatchObject({ txFrames: next, txQueued: 0, txDropped: dropped, txErrors: 0 });
      expect(a.errors).toEqual([]);
    } finally {
      a.device.close();
      b.device.close();
    }
  });

  it('close() counts frames still queued as dropped', () => {
    const { fds } = native.openUnixDgramPair();
    const a = receiver(fds[0]);
    const b = receiver(fds[1]);
    const lengths = new Uint32Array(64).fill(1500);
    const buffer = new Uint8Array(64 * 1500);
    for (let i = 0; i < 1000 && a.device.stats().txQueued === 0; i++) a.device.write(buffer, lengths, 64);
    const queued = a.device.stats().txQueued;
    expect(queued).toBeGreaterThan(0);
    a.device.close();
    expect(a.device.stats()).toMatchObject({ txQueued: 0, txDropped: queued });
    b.device.close();
  });

  it('onFrames is called once per wakeup with at most rxSlots frames', async () => {
    const { fds } = native.openUnixDgramPair();
    const a = receiver(fds[0]);
    const batches: number[] = [];
    const b = new native.FrameDevice(fds[1], 4, 2048, (count) => batches.push(count), () => {});
    try {
      const f = makeFrames(10);
      expect(a.device.write(f.buffer, f.lengths, 10)).toBe(10);
      b.start();
      await waitFor(() => batches.reduce((x, y) => x + y, 0) === 10, 'ten frames');
      expect(Math.max(...batches)).toBeLessThanOrEqual(4);
      expect(batches.length).toBeGreaterThanOrEqual(3);
    } finally {
      a.device.close();
      b.close();
    }
  });

  it('frames longer than a slot are counted as rxTruncated and dropped', async () => {
    const { fds } = native.openUnixDgramPair();
    const a = receiver(fds[0]);
    const b = receiver(fds[1], 8, 100);
    try {
      b.device.start();
      const sizes = new Uint32Array([100, 101, 1500, 40]);
      const buffer = new Uint8Array(100 + 101 + 1500 + 40).fill(7);
      expect(a.device.write(buffer, sizes, 4)).toBe(4);
      await waitFor(() => b.device.stats().rxTruncated + b.device.stats().rxFrames === 4, 'four frames');
      expect(b.frames.map((f) => f.length)).toEqual([100, 40]);
      expect(b.device.stats()).toMatchObject({ rxFrames: 2, rxBytes: 140, rxTruncated: 2 });
    } finally {
      a.device.close();
      b.device.close();
    }
  });

  it('with offload, strips virtio-net headers, drops malformed ones counted, and writes headers with GSO for long TCP frames', async () => {
    const { fds } = native.openUnixDgramPair();
    const raw = receiver(fds[0], 64, 70_000);
    const frames: Uint8Array[] = [];
    const slot = 70_000;
    const dev: FrameDevice = new native.FrameDevice(fds[1], 64, slot, (count) => {
      const rx = new Uint8Array(dev.rxBuffer);
      for (let i = 0; i < count; i++) frames.push(rx.slice(i * slot, i * slot + dev.rxLengths[i]));
    }, () => undefined, { mtu: 1500, linkHeader: 14 });
    /** An Ethernet + IPv4 frame of `total` IP bytes carrying `proto` (a bare 20-byte TCP header when 6). */
    const ip4 = (total: number, proto: number) => {
      const f = new Uint8Array(14 + total);
      f.set([0x08, 0x00], 12);
      f.set([0x45, 0, total >> 8, total & 0xff, 0, 1, 0, 0, 64, proto, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2], 14);
      if (proto === 6) f.set([0x30, 0x39, 0x23, 0x28, 0, 0, 0, 1, 0, 0, 0, 1, 0x50, 0x18, 0xff, 0xff], 34);
      return f;
    };
    const hdr = (flags: number, gsoType: number, gsoSize = 0, csumStart = 0, csumOffset = 0) => {
      const h = Buffer.alloc(10);
      h.writeUInt8(flags, 0);
      h.writeUInt8(gsoType, 1);
      h.writeUInt16LE(54, 2);
      h.writeUInt16LE(gsoSize, 4);
      h.writeUInt16LE(csumStart, 6);
      h.writeUInt16LE(csumOffset, 8);
      return h;
    };
    const send = (...parts: Uint8Array[]) => {
      const b = Buffer.concat(parts);
      raw.device.write(b, Uint32Array.of(b.length), 1);
    };
    try {
      raw.device.start();
      dev.start();
      const small = ip4(60, 17);
      const big = ip4(3000, 6);
      send(hdr(0, 0), small); // plain
      send(hdr(0x80, 0), small); // an unknown flag
      send(hdr(1, 3, 1000, 34, 6), small); // UDP GSO: never negotiated
      send(hdr(1, 0, 0, 70, 16), small); // checksum beyond the frame
      send(hdr(0, 1, 1460), big); // GSO without a partial checksum
      send(Buffer.alloc(6)); // shorter than the header
      send(hdr(1, 1, 1460, 34, 16), big); // a TCP superframe
      await waitFor(() => frames.length === 2, 'the two good frames');
      expect(Buffer.from(frames[0]).equals(small)).toBe(true);
      expect(Buffer.from(frames[1]).equals(big)).toBe(true);
      expect(dev.stats()).toMatchObject({ rxFrames: 2, rxGso: 1, rxBadOffload: 5 });

      // Sending: a long TCP frame goes as GSO with the MSS of MTU 1500, a short
      // one with the checksum left to the kernel, a long UDP frame not at all.
      const long = ip4(3000, 6);
      const short = ip4(100, 6);
      const udp = ip4(2000, 17);
      const out = Buffer.concat([long, udp, short]);
      expect(dev.write(out, Uint32Array.of(long.length, udp.length, short.length), 3)).toBe(2);
      await waitFor(() => raw.frames.length === 2, 'the two frames sent');
      const [g, s] = raw.frames.map((f) => Buffer.from(f));
      // flags NEEDS_CSUM, TCPV4, hdr_len 54, gso_size 1460, csum_start 34, csum_offset 16
      expect([...g.subarray(0, 10)]).toEqual([1, 1, 54, 0, 1460 & 0xff, 1460 >> 8, 34, 0, 16, 0]);
      expect(g.length).toBe(10 + long.length);
      // The pseudo-header sum (10.0.0.1, 10.0.0.2, TCP, 2980 bytes), folded, not complemented.
      expect(g.readUInt16BE(10 + 34 + 16)).toBe(0x0a00 + 0x0001 + 0x0a00 + 0x0002 + 6 + 2980);
      expect([...s.subarray(0, 10)]).toEqual([1, 0, 54, 0, 0, 0, 34, 0, 16, 0]);
      expect(dev.stats()).toMatchObject({ txFrames: 2, txGso: 1, txBadOffload: 1 });
    } finally {
      raw.device.close();
      dev.close();
    }
  });

  it('a peer that goes away is reported once through onError, after write() returns', async () => {
    const { fds } = native.openUnixDgramPair();
    let inWrite = false;
    const errors: { err: NativeError; inWrite: boolean }[] = [];
    const device = new native.FrameDevice(fds[0], 8, 2048, () => {}, (err) => errors.push({ err, inWrite }));
    const peer = receiver(fds[1]);
    peer.device.close();
    try {
      const f = makeFrames(3);
      inWrite = true;
      expect(device.write(f.buffer, f.lengths, 3)).toBe(0);
      inWrite = false;
      await waitFor(() => errors.length > 0, 'onError');
      expect(errors[0].inWrite).toBe(false);
      expect(errors[0].err).toMatchObject({ code: 'ECONNREFUSED', syscall: 'write', errno: expect.any(Number) });
      expect(device.stats().txErrors).toBe(3);
      // A failed device counts what it is given and sends nothing.
      expect(device.write(f.buffer, f.lengths, 2)).toBe(0);
      expect(device.stats().txErrors).toBe(5);
      await new Promise((r) => setTimeout(r, 20));
      expect(errors).toHaveLength(1);
    } finally {
      device.close();
    }
  });

  it('openUnixDgram binds a path and connects to a peer (here itself)', async () => {
    const path = join(dir, 'self.sock');
    const { fd } = native.openUnixDgram({ path, peer: path });
    const r = receiver(fd);
    try {
      r.device.start();
      const f = makeFrames(100);
      expect(r.device.write(f.buffer, f.lengths, 100)).toBe(100);
      await waitFor(() => r.frames.length === 100, 'the frames back');
      expect(r.frames.every((x, i) => Buffer.from(x).equals(f.frames[i]))).toBe(true);
      expect(() => native.openUnixDgram({ path, peer: path })).toThrow(
        expect.objectContaining({ code: 'EADDRINUSE', message: expect.stringContaining(path) }),
      );
    } finally {
      r.device.close();
    }
  });

  it('openUnixDgram to a peer that does not exist throws ENOENT naming it and leaves no socket file', () => {
    const path = join(dir, 'lonely.sock');
    const peer = join(dir, 'nobody.sock');
    expect(() => native.openUnixDgram({ path, peer })).toThrow(
      expect.objectContaining({ code: 'ENOENT', syscall: 'connect', message: `cannot connect unix socket to ${peer}: No such file or directory (ENOENT)` }),
    );
    expect(existsSync(path)).toBe(false);
  });

  it('an exception thrown by onFrames is an uncaught exception, and the device keeps going', async () => {
    const script = `
      const addon = require(${JSON.stringify(NATIVE_BUILD_PATH)});
      const { fds } = addon.openUnixDgramPair();
      const a = new addon.FrameDevice(fds[0], 8, 2048, () => {}, () => {});
      let calls = 0;
      const caught = [];
      process.on('uncaughtException', (err) => caught.push(err.message));
      const b = new addon.FrameDevice(fds[1], 8, 2048, (n) => {
        calls++;
        if (calls === 1) throw new Error('boom from onFrames');
        console.log(JSON.stringify({ calls, caught }));
        a.close(); b.close();
      }, () => {});
      b.start();
      a.write(new Uint8Array(10), new Uint32Array([10]), 1);
      setTimeout(() => a.write(new Uint8Array(10), new Uint32Array([10]), 1), 50);
    `;
    const { stdout } = await run(process.execPath, ['-e', script], { timeout: 10_000 });
    expect(JSON.parse(stdout)).toEqual({ calls: 2, caught: ['boom from onFrames'] });
  });

  it('a worker that ends with devices still open (started, queueing, failing) exits cleanly', async () => {
    // Node will not close a worker's loop with handles open; the devices must close theirs at teardown.
    const script = `
      const { Worker } = require('node:worker_threads');
      const body = (variant) => \`
        const addon = require(${JSON.stringify(NATIVE_BUILD_PATH)});
        const devices = [];
        for (let k = 0; k < 3; k++) {
          const { fds } = addon.openUnixDgramPair();
          for (const fd of fds) {
            const d = new addon.FrameDevice(fd, 8, 2048, () => {}, () => {});
            d.start();
            devices.push(d);
          }
        }
        const buf = new Uint8Array(64 * 1500), len = new Uint32Array(64).fill(1500);
        for (let i = 0; i < 1000 && devices[0].stats().txQueued === 0; i++) devices[0].write(buf, len, 64);
        if (\${JSON.stringify(variant)} === 'closing') for (const d of devices) d.close();
        if (\${JSON.stringify(variant)} === 'failing') { devices[3].close(); devices[2].write(buf, len, 1); }
        require('node:worker_threads').parentPort.postMessage('ready');
      \`;
      (async () => {
        for (const variant of ['open', 'closing', 'failing']) {
          const w = new Worker(body(variant), { eval: true });
          await new Promise((r) => w.once('message', r));
          await w.terminate();
        }
        console.log('ok');
      })();
    `;
    const { stdout } = await run(process.execPath, ['-e', script], { timeout: 10_000 });
    expect(stdout.trim()).toBe('ok');
  });

  it('a started device keeps the process alive; unref() lets it exit', async () => {
    const script = (unref: boolean) => `
      const addon = require(${JSON.stringify(NATIVE_BUILD_PATH)});
      const { fds } = addon.openUnixDgramPair();
      const d = new addon.FrameDevice(fds[0], 8, 2048, () => {}, () => {});
      d.start();
      ${unref ? 'd.unref();' : ''}
    `;
    await run(process.execPath, ['-e', script(true)], { timeout: 5_000 });
    const alive = run(process.execPath, ['-e', script(false)], { timeout: 500 });
    await expect(alive).rejects.toMatchObject({ killed: true });
  });
});

describe('native addon: loading and argument checks', () => {
  it('caches the addon and loads an explicit path', () => {
    expect(loadNative()).toBe(native);
    expect(loadNative(NATIVE_BUILD_PATH)).toBe(native);
    expect(() => loadNative('/nonexistent/tcpip_native.node')).toThrow(
      expect.objectContaining({ code: 'ERR_NATIVE_LOAD_FAILED', message: expect.stringContaining('/nonexistent/tcpip_native.node') }),
    );
  });

  it('exports the Linux API and no VmnetInterface', () => {
    expect(typeof native.openTap).toBe('function');
    expect(typeof native.openUnixDgram).toBe('function');
    expect(typeof native.FrameDevice).toBe('function');
    expect(native.VmnetInterface).toBe(process.platform === 'darwin' ? expect.any(Function) : undefined);
  });

  it('rejects bad arguments in TypeScript, naming them', () => {
    const noop = () => {};
    expect(() => native.openTap({ tun: 'yes' } as never)).toThrow(/"tun" option/);
    expect(() => native.openTap({ tun: false, name: 'x'.repeat(16) })).toThrow(/"name" option/);
    expect(() => native.openTap({ tun: false, name: 'a/b' })).toThrow(/"name" option/);
    expect(() => native.openTap({ tun: false, netns: 'relative' })).toThrow(/"netns" option/);
    expect(() => native.openTap({ tun: false, mtu: 67 })).toThrow(/"mtu" option/);
    expect(() => native.openUnixDgram({ peer: '' })).toThrow(/"peer" option/);
    expect(() => native.openUnixDgram({ peer: '/tmp/' + 'x'.repeat(200) })).toThrow(/"peer" option/);
    expect(() => new native.FrameDevice(-1, 8, 2048, noop, noop)).toThrow(/"fd" argument/);
    expect(() => new native.FrameDevice(3, 0, 2048, noop, noop)).toThrow(/"rxSlots" argument/);
    expect(() => new native.FrameDevice(3, 8, 2048, 'no' as never, noop)).toThrow(/"onFrames" argument/);
    expect(() => new native.FrameDevice(3, 65536, 1 << 20, noop, noop)).toThrow(RangeError);

    const { fds } = native.openUnixDgramPair();
    const { device } = receiver(fds[0]);
    const { device: other } = receiver(fds[1]);
    try {
      expect(() => device.write([1, 2] as never, new Uint32Array([2]), 1)).toThrow(/"buffer" argument/);
      expect(() => device.write(new Uint8Array(2), [2] as never, 1)).toThrow(/"lengths" argument/);
      expect(() => device.write(new Uint8Array(2), new Uint32Array([2]), 2)).toThrow(/"count" argument/);
      expect(() => device.write(new Uint8Array(2), new Uint32Array([3]), 1)).toThrow(RangeError);
      expect(device.stats().txFrames).toBe(0);
    } finally {
      device.close();
      other.close();
    }
  });
});

describe('native addon: the class helper (native/src/napi_class.c) every class is built on', () => {
  const requireRaw = createRequire(import.meta.url);
  // The raw addon, below the TypeScript checks: what the helper itself promises.
  const raw = requireRaw(NATIVE_BUILD_PATH) as Record<string, any>;
  const classes = ['FrameDevice', 'PingSocket'].filter((name) => raw[name]);

  it('gives every class close, ref, unref and stats, as methods of its prototype', () => {
    for (const name of classes) {
      const own = Object.getOwnPropertyNames(raw[name].prototype);
      expect(own).toEqual(expect.arrayContaining(['constructor', 'close', 'ref', 'unref', 'stats']));
    }
  });

  it('a wrong `this` is a TypeError, never a crash, and leaves the real object working', () => {
    const { fds } = raw.openUnixDgramPair();
    const a = new raw.FrameDevice(fds[0], 8, 2048, () => {}, () => {});
    const b = new raw.FrameDevice(fds[1], 8, 2048, () => {}, () => {});
    try {
      for (const name of classes) {
        const proto = raw[name].prototype;
        const wrong = name === 'FrameDevice' ? [{}, Object.create(proto), 42, undefined] : [{}, Object.create(proto), a];
        for (const method of Object.getOwnPropertyNames(proto).filter((m) => m !== 'constructor')) {
          for (const self of wrong) {
            let thrown: unknown;
            try {
              proto[method].call(self, new Uint8Array(8), new Uint32Array(1), 0);
            } catch (err) {
              thrown = err;
            }
            expect(thrown, `${name}.prototype.${method} on ${String(self)}`).toBeInstanceOf(TypeError);
            // V8 refuses most receivers itself (the class's methods carry its
            // signature: "Illegal invocation"); the helper's type-tag check
            // (ERR_INVALID_THIS) backs that up for anything V8 lets through.
            expect((thrown as Error).message).toMatch(new RegExp(`^(Illegal invocation|Value of "this" must be a ${name})$`));
          }
        }
        expect(() => raw[name](4, 8, 2048, () => {}, () => {})).toThrow(
          expect.objectContaining({ name: 'TypeError', code: 'ERR_CONSTRUCT_CALL_REQUIRED' }),
        );
      }
      // PingSocket's close() on a FrameDevice was refused: the device still sends.
      expect(a.write(new Uint8Array(10), new Uint32Array([10]), 1)).toBe(1);
      expect(a.stats()).toMatchObject({ txFrames: 1, txBytes: 10 });
    } finally {
      a.close();
      b.close();
    }
  });

  itDevice('a worker that exits with a ping socket and a device still open has them closed by the cleanup hook', async () => {
    // Ping sockets need net.ipv4.ping_group_range, a per-namespace sysctl: the
    // child runs in a network namespace of its own (unshare -n), so the host's stays as it is.
    const script = `
      require('node:fs').writeFileSync('/proc/sys/net/ipv4/ping_group_range', '0 2147483647');
      require('node:child_process').execFileSync('ip', ['link', 'set', 'lo', 'up']);
      const { Worker } = require('node:worker_threads');
      const body = (ending) => \`
        const addon = require(${JSON.stringify(NATIVE_BUILD_PATH)});
        const open = [new addon.PingSocket(4, 8, 2048, () => {}, () => {}), new addon.PingSocket(6, 8, 2048, () => {}, () => {})];
        const { fds } = addon.openUnixDgramPair();
        for (const fd of fds) { const d = new addon.FrameDevice(fd, 8, 2048, () => {}, () => {}); d.start(); open.push(d); }
        open[0].send(new Uint8Array([8, 0, 0, 0, 0, 0, 0, 1]), 0x7f000001);
        require('node:worker_threads').parentPort.postMessage('ready');
        if (\${JSON.stringify(ending)} === 'exit') setTimeout(() => process.exit(0), 20);
      \`;
      (async () => {
        for (const ending of ['exit', 'terminate']) {
          const w = new Worker(body(ending), { eval: true });
          const exited = new Promise((r) => w.once('exit', r));
          await new Promise((r, j) => { w.once('message', r); w.once('error', j); });
          if (ending === 'terminate') await w.terminate();
          await exited;
        }
        // The fds the workers opened are gone: only the main thread's remain.
        console.log(JSON.stringify({ ok: true, sockets: require('node:fs').readdirSync('/proc/self/fd').length }));
      })().catch((err) => { console.error(err); process.exit(1); });
    `;
    const { stdout: before } = await run('unshare', ['-n', process.execPath, '-e', 'console.log(JSON.stringify({ sockets: require("node:fs").readdirSync("/proc/self/fd").length }))']);
    const { stdout } = await run('unshare', ['-n', process.execPath, '-e', script], { timeout: 10_000 });
    const result = JSON.parse(stdout);
    expect(result.ok).toBe(true);
    // Workers add a few fds of their own (message ports, an eventfd); the 4 device fds per worker must not stay.
    expect(result.sockets).toBeLessThan(JSON.parse(before).sockets + 8);
  });
});
