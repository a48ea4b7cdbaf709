/**
 * Links to real devices, over the native addon: Linux TAP and TUN (optionally
 * opened inside another network namespace), unix datagram sockets (one frame
 * per datagram: vfkit, `qemu -netdev dgram`), and macOS vmnet.
 *
 * Frames cross the boundary in batches both ways: the addon reads every frame
 * a wakeup has into fixed slots and calls back once; sends are gathered into
 * one buffer and written with one call per burst (Link.flush).
 */
import { checkMtu, ETHERNET_HEADER, LinkEmitter, type FrameReceiver, type InPlaceReceiver, type Link, type LinkCapabilities, type Medium } from '../core/link.js';
import { invalidOption } from '../core/errors.js';
import { loadNative, type FrameDeviceOffload, type FrameDeviceStats, type FramesCallback, type NativeErrorCallback, type VmnetMode } from './native.js';

/** A device link's counters: the addon's, since the link was opened. */
export type DeviceLinkCounters = FrameDeviceStats;

const RX_SLOTS = 64;
/** With offload, a frame may be a GSO superframe: up to a pbuf's 64 KiB. */
const OFFLOAD_MAX_FRAME = 0xffff;
/** Frames at least this long are written at once, not copied into the batch. */
const DIRECT_FRAME = 8192;

/** Frames gathered before a write is forced even without a flush. */
const TX_BATCH = 64;

/** What DeviceLink needs of a native frame mover (FrameDevice, VmnetInterface). */
interface FramePort {
  readonly rxBuffer?: ArrayBuffer;
  readonly rxLengths?: Uint32Array;
  start?(): void | Promise<void>;
  startInPlace?(): void;
  readInto?(memory: Uint8Array, targets: Uint32Array, slotSize: number, lengths: Uint32Array): number;
  write(buffer: Uint8Array, lengths: Uint32Array, count: number): number;
  stats(): FrameDeviceStats;
  close(): void;
  ref(): void;
  unref(): void;
}

type PortFactory = (onFrames: FramesCallback, onError: NativeErrorCallback) => FramePort;

/**
 * A link over a native frame mover: an fd where one read or write is one
 * frame, or vmnet. Lifecycle (LinkEvents): a fatal error (the TAP deleted,
 * the fd broken) emits 'error' then 'close' with reason 'error' and closes
 * the fd; a unix datagram socket whose peer went away (the VM exited) emits
 * 'down' and keeps its path, and 'up' when frames come again (a restarted
 * VM: without `peer` the latest sender is the peer, with `peer` the path is
 * connected again on each send until it answers).
 */
export class DeviceLink extends LinkEmitter implements Link {
  #device: FramePort;
  #receive: FrameReceiver | null = null;
  #tx: Uint8Array;
  #txLengths = new Uint32Array(TX_BATCH);
  #txCount = 0;
  #txUsed = 0;
  #closed = false;
  #error: Error | null = null;
  #peerUp = true;
  /** Called with a fatal error, before 'error' and 'close' (kept for older callers; prefer on('error')). */
  onError: ((err: Error) => void) | null = null;

  constructor(open: PortFactory, readonly medium: Medium, readonly mtu: number, readonly name: string, started = false,
    readonly capabilities?: LinkCapabilities) {
    super();
    this.#started = started;
    const slot = capabilities?.maxFrame ?? mtu + (medium === 'ethernet' ? ETHERNET_HEADER + 4 : 0);
    this.#device = open((count) => this.#onFrames(count), (err: Error & { peerLost?: boolean }) => {
      if (err.peerLost) {
        if (!this.#peerUp || this.#closed) return;
        this.#peerUp = false;
        this.emit('down', 'peer', err);
        return;
      }
      this.#error = err;
      this.onError?.(err);
      if (this.#closed) return;
      this.#shut();
      this.finish('error', err);
    });
    // Only frames under DIRECT_FRAME are batched.
    this.#tx = new Uint8Array(Math.min(slot, DIRECT_FRAME) * TX_BATCH);
  }


  /** The fatal error that closed the link, if one did. */
  get error(): Error | null {
    return this.#error;
  }

  /** False while a unix datagram link has lost its peer (between 'down' and 'up'). */
  get peerUp(): boolean {
    return this.#peerUp;
  }

  #arrived(n: number): void {
    if (n > 0 && !this.#peerUp && !this.#closed) {
      this.#peerUp = true;
      this.emit('up');
    }
  }

  #onFrames(count: number): void {
    const inPlace = this.#inPlace;
    if (inPlace) {
      // Readable: read the waiting frames straight into the stack's slots.
      const { memory, targets } = inPlace.slots();
      if (targets.length > 0) {
        if (this.#inPlaceLengths.length < targets.length) this.#inPlaceLengths = new Uint32Array(targets.length);
        const n = this.#device.readInto!(memory, targets, inPlace.slotSize, this.#inPlaceLengths);
        this.#arrived(n);
        inPlace.commit(n, this.#inPlaceLengths);
        return;
      }
      // No slots (the stack is out of memory): still drain the device, through
      // our own slots and the copying path, which counts what it drops.
      const own = new Uint8Array(this.#device.rxBuffer!);
      const lengths = this.#device.rxLengths!;
      const slot = own.length / lengths.length;
      const offsets = Uint32Array.from({ length: lengths.length }, (_, i) => i * slot);
      const n = this.#device.readInto!(own, offsets, slot, lengths);
      this.#arrived(n);
      for (let i = 0; i < n; i++) inPlace.receive(own.subarray(i * slot, i * slot + lengths[i]!));
      return;
    }
    this.#arrived(count);
    const receive = this.#receive;
    if (!receive) return;
    const rx = new Uint8Array(this.#device.rxBuffer!);
    const lengths = this.#device.rxLengths!;
    const slot = rx.length / lengths.length;
    for (let i = 0; i < count; i++) receive(rx.subarray(i * slot, i * slot + lengths[i]!));
  }

  attach(receive: FrameReceiver): void {
    this.#receive = receive;
    if (!this.#started) {
      this.#started = true;
      void this.#device.start?.();
    }
  }
  #started = false;
  #inPlace: InPlaceReceiver | null = null;
  #directLength = new Uint32Array(1);
  #inPlaceLengths = new Uint32Array(0);

  /** True once frames are read straight into a stack's memory. */
  get inPlace(): boolean {
    return this.#inPlace !== null;
  }

  get attachInPlace(): ((rx: InPlaceReceiver) => void) | undefined {
    // Only devices that can read into caller memory, and only before starting.
    if (!this.#device.readInto || !this.#device.startInPlace || this.#started) return undefined;
    return (rx) => {
      this.#inPlace = rx;
      this.#started = true;
      this.#device.startInPlace!();
    };
  }

  send(frame: Uint8Array): void {
    if (this.#closed) return;
    if (frame.length >= DIRECT_FRAME) {
      // Written straight from the caller's memory (the stack's wasm memory;
      // the addon copies what the device cannot take now): copying 64 KiB
      // frames into the batch took 5.5 % of the gateway's time at 6 Gbit/s,
      // and batching saves next to nothing at that size. After the batch,
      // to keep the order.
      this.flush();
      this.#directLength[0] = frame.length;
      this.#device.write(frame, this.#directLength, 1);
      return;
    }
    if (this.#txCount === TX_BATCH || this.#txUsed + frame.length > this.#tx.length) this.flush();
    if (frame.length > this.#tx.length) this.#tx = new Uint8Array(frame.length * TX_BATCH);
    this.#tx.set(frame, this.#txUsed);
    this.#txLengths[this.#txCount++] = frame.length;
    this.#txUsed += frame.length;
  }

  flush(): void {
    if (this.#txCount === 0 || this.#closed) return;
    this.#device.write(this.#tx.subarray(0, this.#txUsed), this.#txLengths, this.#txCount);
    this.#txCount = 0;
    this.#txUsed = 0;
  }

  get counters(): DeviceLinkCounters {
    return this.#device.stats();
  }

  /** Keeps (default) or stops the device keeping the Node process alive. */
  ref(): this {
    this.#device.ref();
    return this;
  }

  unref(): this {
    this.#device.unref();
    return this;
  }

  close(): void {
    if (this.#closed) return;
    this.flush();
    this.#shut();
    this.finish('local');
  }

  #shut(): void {
    this.#closed = true;
    this.#receive = null;
    this.#inPlace = null;
    this.#device.close();
  }
}

export interface TapOptions {
  /** Device name (at most 15 bytes); created if missing, attached if it exists. Default: the kernel picks. */
  name?: string;
  /** Open the device inside this network namespace (`/run/netns/NAME` or `/proc/PID/ns/net`). */
  netns?: string;
  /** Device MTU, set on the kernel side too. Default 1500. */
  mtu?: number;
  /** Bring the kernel side up. Default true. */
  up?: boolean;
  /**
   * Use the kernel's offloads, as virtio-net does: checksums left partial
   * both ways and TCP segments of up to 64 KiB instead of one per MTU (the
   * kernel cuts ours to its MSS). The stack then checks no checksums on the
   * interface and computes no TCP checksum. For interfaces where the stack
   * is an endpoint (a server, the gateway), not a router. Default false.
   */
  offload?: boolean;
}

function checkTapOptions(options: TapOptions): Required<Pick<TapOptions, 'mtu' | 'up' | 'offload'>> {
  if (options === null || typeof options !== 'object') throw invalidOption('options', 'an object', options);
  if (options.name !== undefined && (typeof options.name !== 'string' || Buffer.byteLength(options.name) > 15 || /[\s/]/.test(options.name))) {
    throw invalidOption('name', 'an interface name of at most 15 bytes without spaces or slashes', options.name);
  }
  if (options.netns !== undefined && (typeof options.netns !== 'string' || options.netns === '')) {
    throw invalidOption('netns', 'a path like /run/netns/NAME or /proc/PID/ns/net', options.netns);
  }
  const mtu = options.mtu ?? 1500;
  checkMtu(mtu, 'mtu');
  const up = options.up ?? true;
  if (typeof up !== 'boolean') throw invalidOption('up', 'a boolean', up);
  const offload = options.offload ?? false;
  if (typeof offload !== 'boolean') throw invalidOption('offload', 'a boolean', offload);
  return { mtu, up, offload };
}

function openDevice(tun: boolean, options: TapOptions): DeviceLink {
  if (process.platform !== 'linux') throw new Error(`${tun ? 'TUN' : 'TAP'} links require Linux (this is ${process.platform})`);
  const { mtu, up, offload } = checkTapOptions(options);
  const native = loadNative();
  const { fd, name } = native.openTap({ name: options.name, tun, netns: options.netns, mtu, up, offload });
  const medium = tun ? 'ip' : 'ethernet';
  if (!offload) return new DeviceLink(frameDevice(fd, medium, mtu), medium, mtu, name);
  const caps: LinkCapabilities = { checksumOffload: true, tcpSegmentation: true, maxFrame: OFFLOAD_MAX_FRAME };
  return new DeviceLink(frameDevice(fd, medium, mtu, { mtu, linkHeader: tun ? 0 : ETHERNET_HEADER }), medium, mtu, name, false, caps);
}

/** A Linux TAP device: Ethernet frames (IFF_TAP | IFF_NO_PI). */
export function openTap(options: TapOptions = {}): DeviceLink {
  return openDevice(false, options);
}

/** A Linux TUN device: bare IP packets (IFF_TUN | IFF_NO_PI). */
export function openTun(options: TapOptions = {}): DeviceLink {
  return openDevice(true, options);
}

export interface UnixDgramOptions {
  /** Our socket's path (the peer sends here). */
  path?: string;
  /** The peer's socket path (we send there). Absent: wait at `path`; the first sender becomes the peer. */
  peer?: string;
  medium?: Medium;
  mtu?: number;
}

/** A unix datagram socket carrying one frame per datagram. */
export function openUnixDgram(options: UnixDgramOptions): DeviceLink {
  if (options === null || typeof options !== 'object') throw invalidOption('options', 'an object', options);
  if (options.peer !== undefined && (typeof options.peer !== 'string' || options.peer === '')) throw invalidOption('peer', 'a socket path', options.peer);
  if (options.path !== undefined && (typeof options.path !== 'string' || options.path === '')) throw invalidOption('path', 'a socket path', options.path);
  if (options.path === undefined && options.peer === undefined) throw invalidOption('peer', 'a socket path (or give path, to wait for a peer)', options.peer);
  const medium = options.medium ?? 'ethernet';
  if (medium !== 'ethernet' && medium !== 'ip') throw invalidOption('medium', "'ethernet' or 'ip'", medium);
  const mtu = options.mtu ?? 1500;
  checkMtu(mtu, 'mtu');
  const { fd } = loadNative().openUnixDgram({ path: options.path, peer: options.peer });
  return new DeviceLink(frameDevice(fd, medium, mtu), medium, mtu, (options.path ?? options.peer)!);
}

function frameDevice(fd: number, medium: Medium, mtu: number, offload?: FrameDeviceOffload): PortFactory {
  const slot = offload ? OFFLOAD_MAX_FRAME : mtu + (medium === 'ethernet' ? ETHERNET_HEADER + 4 : 0);
  return (onFrames, onError) => new (loadNative().FrameDevice)(fd, RX_SLOTS, slot, onFrames, onError, offload);
}

export interface VmnetLinkOptions {
  /** 'shared' (NAT to the host's network), 'host' (host-only) or 'bridged'. */
  mode: VmnetMode;
  /** The host interface for 'bridged', e.g. 'en0'. */
  bridgedInterface?: string;
}

/**
 * A macOS vmnet.framework interface (Ethernet). Resolves once vmnet has
 * started it; the link's MTU is the one vmnet reports, and `mac` is the
 * address vmnet assigned, which the stack's interface should use.
 */
export async function openVmnet(options: VmnetLinkOptions): Promise<DeviceLink & { mac: string }> {
  if (process.platform !== 'darwin') {
    throw Object.assign(new Error(`vmnet requires macOS (this is ${process.platform})`), { code: 'ERR_NOT_SUPPORTED' });
  }
  if (options === null || typeof options !== 'object') throw invalidOption('options', 'an object', options);
  if (!['shared', 'host', 'bridged'].includes(options.mode)) throw invalidOption('mode', "'shared', 'host' or 'bridged'", options.mode);
  if (options.mode === 'bridged' && (typeof options.bridgedInterface !== 'string' || options.bridgedInterface === '')) {
    throw invalidOption('bridgedInterface', "a host interface name such as 'en0'", options.bridgedInterface);
  }
  const Vmnet = loadNative().VmnetInterface;
  if (!Vmnet) throw Object.assign(new Error('this build of the native addon has no vmnet support'), { code: 'ERR_NOT_SUPPORTED' });
  // vmnet decides the MTU and MAC when it starts, so start first and build
  // the link around the running interface.
  let deliver: FramesCallback = () => undefined;
  let fail: NativeErrorCallback = () => undefined;
  const port = new Vmnet({
    mode: options.mode,
    bridgedInterface: options.bridgedInterface,
    onFrames: (count) => deliver(count),
    onError: (err) => fail(err),
  });
  await port.start();
  const link = new DeviceLink((onFrames, onError) => {
    deliver = onFrames;
    fail = onError;
    return port;
  }, 'ethernet', port.mtu ?? 1500, `vmnet-${options.mode}`, true);
  return Object.assign(link, { mac: port.mac ?? '' });
}
