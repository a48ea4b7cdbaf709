/**
 * The native device addon (`native/`, N-API, C): opens TAP/TUN devices and
 * unix datagram sockets, and moves frames between them and JavaScript in
 * batches; on macOS it also drives vmnet.framework, on Linux it opens the
 * unprivileged ICMP echo sockets the gateway forwards pings through. This
 * file finds and loads it and checks every argument before the addon sees it.
 *
 * Frames move through fixed slots shared with the addon, without a copy or an
 * allocation per frame:
 * - receive: the addon fills `rxBuffer` (slot i at byte i * slotSize) and
 *   `rxLengths[i]`, then calls `onFrames(count)` once per batch. The slots are
 *   reused as soon as onFrames returns, so copy what you keep.
 * - transmit: `write(buffer, lengths, count)` takes `count` frames laid back
 *   to back in `buffer` (frame i starts at the sum of the lengths before it).
 */
import { createRequire } from 'node:module';
import { join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { types } from 'node:util';
import { invalidOption } from '../core/errors.js';
import { PACKAGE_ROOT } from './package-root.js';

/** The addon, as loadNative() returns it. */
export interface NativeAddon {
  /**
   * Opens /dev/net/tun as a TAP (`tun: false`: Ethernet frames) or TUN
   * (`tun: true`: bare IP packets) device without packet-info headers,
   * non-blocking and close-on-exec. `name` creates or attaches that device
   * ('' or absent: the kernel picks tapN/tunN; the name used is returned).
   * With `netns` (a path: /run/netns/NAME, /proc/PID/ns/net) the device is
   * created and configured inside that network namespace while the fd keeps
   * working from this one. `mtu` sets its MTU, `up: true` brings it up.
   * Throws an Error with `code` (ENOENT, EPERM, EBUSY, ...) naming what failed.
   * Linux only (ERR_NOT_SUPPORTED elsewhere).
   */
  openTap(options: TapOptions): { fd: number; name: string };
  /**
   * An AF_UNIX datagram socket, one frame per datagram (vfkit's
   * unixSocketPath, qemu's -netdev dgram), non-blocking, with 4 MiB socket
   * buffers, bound to `path` if given and connected to `peer` (which must
   * already exist) if given; without `peer` the first sender becomes the
   * peer. The caller unlinks `path` when done.
   */
  openUnixDgram(options: UnixDgramOptions): { fd: number };
  /** Two connected unix datagram sockets (socketpair), for tests and for handing one end to a child process. */
  openUnixDgramPair(): { fds: [number, number] };
  /** Moves frames for a file descriptor; see FrameDevice. */
  FrameDevice: FrameDeviceConstructor;
  /** vmnet.framework interfaces; present on macOS only. */
  VmnetInterface?: VmnetInterfaceConstructor;
  /** Unprivileged ICMP echo sockets (IPv4 and IPv6); present on Linux only. */
  PingSocket?: PingSocketConstructor;
  /** The primitives confine.ts applies; present on Linux only. */
  confinement?: NativeConfinement;
  /**
   * Sends buffer[0, length) to address:port on the UDP socket `fd` (one
   * someone else owns, e.g. Node's dgram) as datagrams of `segmentSize`
   * bytes, the last possibly shorter, in one sendmsg() with UDP_SEGMENT
   * (Linux 4.18+ GSO; one datagram needs no segmentation). `address` is a
   * bare IPv4 or IPv6 literal. Returns 0, or the errno of a failure (EAGAIN
   * a full socket buffer, EIO a route without checksum offload, EINVAL or
   * ENOPROTOOPT no GSO, EAFNOSUPPORT an address that is not a bare literal):
   * failures are data-path events for the caller. Present on Linux only.
   */
  udpSendSegments?(fd: number, buffer: Uint8Array, length: number, segmentSize: number, address: string, port: number): number;
}

/**
 * Linux confinement, as thin as it can be: confine.ts (src/node/confine.ts)
 * holds the policy and is the way to use it.
 */
export interface NativeConfinement {
  /** This build's numbers (from <sys/syscall.h>) for the system calls confine.ts may deny; absent where the architecture has no such call. */
  readonly syscallNumbers: Readonly<Record<string, number>>;
  /**
   * Installs a seccomp filter, on every thread (SECCOMP_FILTER_FLAG_TSYNC),
   * that fails these calls with EPERM, and every call made under another
   * architecture or ABI (i386, x32). Needs no_new_privs or CAP_SYS_ADMIN.
   * 1 to 200 numbers. x86_64 and arm64 only (ERR_NOT_SUPPORTED elsewhere).
   */
  seccompDeny(numbers: Uint32Array): void;
  /** PR_SET_NO_NEW_PRIVS for the calling thread. */
  setNoNewPrivs(): void;
  /**
   * A new mount namespace whose root is a read-only tmpfs holding only
   * `files` (relative paths such as 'etc/resolv.conf'), then no capability
   * but `keepCapabilities` (bounding, permitted, effective, inheritable;
   * ambient cleared) and no_new_privs, on the calling thread and, through a
   * signal, every other thread in /proc/self/task. Threads that block the
   * signal are left as they are and listed in `unreachable`.
   */
  sandbox(files: { path: string; data: Uint8Array }[], keepCapabilities: Uint32Array): SandboxReport;
}

export interface SandboxReport {
  /** Threads of the process when it ran, the caller included. */
  threads: number;
  /** Threads that applied it, the caller included. */
  reached: number;
  /** Threads that block the signal (Node's inspector watchdog thread). */
  unreachable: { tid: number; name: string }[];
}

export interface TapOptions {
  /** Device name, at most 15 bytes; '' or absent lets the kernel choose. */
  name?: string;
  /** true: TUN (IP packets); false: TAP (Ethernet frames). */
  tun: boolean;
  /** Network namespace to create the device in, as a path. */
  netns?: string;
  /** MTU to set, 68–65535. */
  mtu?: number;
  /** Bring the device up. */
  up?: boolean;
  /**
   * IFF_VNET_HDR with checksum offload and TSO (TUN_F_CSUM | TUN_F_TSO4 |
   * TUN_F_TSO6): frames both ways carry a virtio-net header, which a
   * FrameDevice given `offload` reads and writes.
   */
  offload?: boolean;
}

/** For a FrameDevice on an fd opened with `offload`: the link's real MTU and link header length (14 or 0). */
export interface FrameDeviceOffload {
  mtu: number;
  linkHeader: 0 | 14;
}

export interface UnixDgramOptions {
  /** Path to bind to (so the peer can send to us); absent: unbound. */
  path?: string;
  /**
   * Path of the peer's bound socket to connect to. Absent: the socket waits
   * unconnected at `path`, and the first sender becomes the peer (the
   * gvproxy side of vfkit's unixSocketPath); frames sent before that are
   * counted as txDropped.
   */
  peer?: string;
}

/** Counters since the device was created. `txQueued` is the current queue length. */
export interface FrameDeviceStats {
  rxFrames: number;
  rxBytes: number;
  /** Frames longer than a slot, dropped. */
  rxTruncated: number;
  rxErrors: number;
  txFrames: number;
  txBytes: number;
  /** Frames waiting in the native queue for the fd to become writable. */
  txQueued: number;
  /** Frames dropped because the native queue was full (or still queued at close). */
  txDropped: number;
  /** Frames the kernel refused, or not sent because the device failed. */
  txErrors: number;
  /** With offload: GSO superframes received (several segments in one frame). */
  rxGso: number;
  /** With offload: frames dropped for a virtio-net header we cannot take (malformed, or an offload not negotiated). */
  rxBadOffload: number;
  /** With offload: frames sent as GSO (the kernel cuts them to the MSS). */
  txGso: number;
  /** With offload: frames longer than the MTU that the kernel could not cut (not TCP), dropped. */
  txBadOffload: number;
  /** Unix datagram sockets: vfkit's 4-byte "VFKT" greetings, consumed (not frames). */
  rxHello?: number;
  /** Unix datagram sockets: times the peer went away (ECONNREFUSED, ENOENT, ENOTCONN on a send). */
  peersLost?: number;
  /** Unix datagram sockets: peers taken on (a new sender learned, or the peer path connected again). */
  peersLearned?: number;
}

/** Errors passed to onError or thrown: `code` is an errno name (ENOENT), an ERR_ code or a VMNET_ status. */
export interface NativeError extends Error {
  code: string;
  errno?: number;
  syscall?: string;
  /**
   * Set on the errors of a unix datagram FrameDevice whose peer went away:
   * not fatal, the device keeps running and takes the next sender as its
   * peer (no peer given) or connects to its peer's path again on later sends.
   */
  peerLost?: boolean;
}

export type FramesCallback = (count: number) => void;
export type NativeErrorCallback = (error: NativeError) => void;

/**
 * `new FrameDevice(fd, rxSlots, slotSize, onFrames, onError)` owns `fd` once
 * constructed (if the constructor throws, the fd stays the caller's).
 * - `start()` polls for input; each wakeup reads up to rxSlots frames (one
 *   read() each) and calls onFrames(count) once. A full batch continues on
 *   the next loop turn. Frames longer than slotSize are counted in
 *   rxTruncated and dropped.
 * - `write()` sends each frame with one write(); when the fd would block, the
 *   rest are copied into a native queue (2048 frames / 64 MiB) and sent in
 *   order as it drains; beyond that they are dropped (txDropped). Returns the
 *   number of frames sent or queued.
 * - A fatal error (device deleted, fd broken, peer gone) stops the device and
 *   calls onError once, never synchronously from write(). A unix datagram
 *   socket's peer going away is not fatal there (see NativeError.peerLost),
 *   unless it is a socket pair's. An exception thrown
 *   by onFrames or onError is an uncaught exception, as in any Node callback.
 * - While started (or draining its queue) the device keeps the event loop
 *   and itself alive; `unref()` lets the process exit anyway.
 * - `close()` stops and closes the fd; it is idempotent, and write() then
 *   returns 0 without counting.
 * - `startInPlace()` polls like start(), but a readable fd calls onFrames(0)
 *   and the caller reads the frames itself with `readInto(memory, targets,
 *   slotSize, lengths)`: frame i lands in `memory` at byte `targets[i]`
 *   (at most slotSize bytes), its length in `lengths[i]`; it returns the
 *   count. A stack uses this to read straight into its wasm memory.
 */
export interface FrameDevice {
  readonly rxBuffer: ArrayBuffer;
  readonly rxLengths: Uint32Array;
  start(): void;
  startInPlace(): void;
  readInto(memory: Uint8Array, targets: Uint32Array, slotSize: number, lengths: Uint32Array): number;
  stop(): void;
  write(buffer: Uint8Array, lengths: Uint32Array, count: number): number;
  stats(): FrameDeviceStats;
  close(): void;
  ref(): void;
  unref(): void;
}

/** A FrameDevice instance (the name links.ts uses). */
export type FrameDeviceHandle = FrameDevice;

export interface FrameDeviceConstructor {
  new (fd: number, rxSlots: number, slotSize: number, onFrames: FramesCallback, onError: NativeErrorCallback, offload?: FrameDeviceOffload): FrameDevice;
}

export type VmnetMode = 'shared' | 'host' | 'bridged';

export interface VmnetOptions {
  mode: VmnetMode;
  /** The host interface to bridge to (mode 'bridged' only), e.g. 'en0'. */
  bridgedInterface?: string;
  /** Receive slots, 1–200 (vmnet's per-read limit); default 64. Each is maxPacketSize bytes. */
  rxSlots?: number;
  onFrames: FramesCallback;
  onError: NativeErrorCallback;
}

/**
 * A vmnet.framework interface. `start()` resolves once vmnet has started it;
 * then `mac` (the address the guest side should use), `mtu`,
 * `maxPacketSize`, `rxBuffer` and `rxLengths` are set. Frames arrive through
 * onFrames as with FrameDevice. `write()` hands frames to vmnet_write, which
 * has no back-pressure signal: frames it does not take are counted in
 * txDropped. Needs root or the com.apple.vm.networking entitlement.
 */
export interface VmnetInterface {
  readonly mac?: string;
  readonly mtu?: number;
  readonly maxPacketSize?: number;
  readonly rxBuffer?: ArrayBuffer;
  readonly rxLengths?: Uint32Array;
  start(): Promise<void>;
  stop(): Promise<void>;
  write(buffer: Uint8Array, lengths: Uint32Array, count: number): number;
  stats(): FrameDeviceStats;
  close(): void;
  ref(): void;
  unref(): void;
}

/** A VmnetInterface instance. */
export type VmnetInterfaceHandle = VmnetInterface;

export interface VmnetInterfaceConstructor {
  new (options: VmnetOptions): VmnetInterface;
}

/** Counters since the socket was opened. */
export interface PingSocketStats {
  rxMessages: number;
  rxBytes: number;
  /** Replies longer than a slot, dropped. */
  rxTruncated: number;
  /** Failed reads that did not end the socket. */
  rxErrors: number;
  txMessages: number;
  txBytes: number;
  /** Requests dropped because the socket's send buffer was full. */
  txDropped: number;
  /** Requests the kernel refused (send() threw). */
  txErrors: number;
}

/** `onMessages(count)`: replies 0..count-1 wait in the receive slots. */
export type MessagesCallback = (count: number) => void;

/**
 * `new PingSocket(family, rxSlots, slotSize, onMessages, onError)` opens a
 * Linux "ping socket": socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP) for family
 * 4, socket(AF_INET6, SOCK_DGRAM, IPPROTO_ICMPV6) for family 6. Either needs
 * no privilege but only works for groups in net.ipv4.ping_group_range (one
 * sysctl for both families): outside it the constructor throws EACCES.
 * - `send(message, address)` sends an ICMP echo request (type 8, or 128 for
 *   ICMPv6; code 0; the kernel rewrites its identifier to the socket's own
 *   and computes the checksum, for ICMPv6 over its pseudo header; sequence
 *   and data go as given) to `address`: for family 4 an IPv4 address as a
 *   32-bit number (a.b.c.d is a << 24 | b << 16 | c << 8 | d), for family 6
 *   the 16 bytes of an IPv6 address. Returns false when the send buffer is
 *   full (the request is dropped and counted); throws an errno-coded error
 *   for anything else (ENETUNREACH, EINVAL for a message that is not an echo
 *   request).
 * - Echo replies (type 0, or 129) for the socket's identifier arrive in
 *   batches: `onMessages(count)`, reply i (ICMP header and data) at byte
 *   i * slotSize of `rxBuffer`, its length in `rxLengths[i]`, its source
 *   address in `rxAddresses`: for family 4 a Uint32Array, `rxAddresses[i]`
 *   as above; for family 6 a Uint8Array, bytes 16 * i to 16 * i + 15. The
 *   slots are reused once onMessages returns.
 * - A failure of the socket itself calls onError once and stops receiving.
 * - While open it keeps the event loop alive; `unref()` lets the process
 *   exit anyway. `close()` is idempotent; send() then throws ERR_SOCKET_CLOSED.
 */
export interface PingSocket {
  readonly rxBuffer: ArrayBuffer;
  readonly rxLengths: Uint32Array;
  /** Family 4: one number per slot; family 6: 16 bytes per slot. */
  readonly rxAddresses: Uint32Array | Uint8Array;
  /** `address`: a number for family 4, 16 bytes for family 6. */
  send(message: Uint8Array, address: number | Uint8Array): boolean;
  stats(): PingSocketStats;
  close(): void;
  ref(): void;
  unref(): void;
}

export interface PingSocketConstructor {
  new (family: 4 | 6, rxSlots: number, slotSize: number, onMessages: MessagesCallback, onError: NativeErrorCallback): PingSocket;
}

// The classes below carry the public names; these aliases name the shapes inside them.
type FrameDeviceShape = FrameDevice;
type VmnetShape = VmnetInterface;
type PingShape = PingSocket;

/** What the .node file itself exports (openTap is absent off Linux; the confinement functions sit at the top level). */
type RawAddon = Omit<NativeAddon, 'openTap' | 'confinement'> & { openTap?: NativeAddon['openTap'] } & Partial<NativeConfinement>;

// ---- locating and loading ----------------------------------------------------

/** The addon's directory: binding.gyp and src/, and what is built from them. */
export const NATIVE_DIR = fileURLToPath(new URL('native/', PACKAGE_ROOT));
/** Where node-gyp (`npm run build:native` in a checkout, the install script elsewhere) puts the addon. */
export const NATIVE_BUILD_PATH = join(NATIVE_DIR, 'build', 'Release', 'tcpip_native.node');
/** The platforms the package ships a prebuilt binary for (native/prebuilds/<platform>-<arch>/, glibc). */
export const PREBUILT_PLATFORMS: readonly string[] = ['linux-x64', 'linux-arm64'];

/** How loadNative() chose the file. */
export type NativeSource = 'explicit path' | 'TCPIP_TS_NATIVE' | 'local build' | 'prebuilt binary';

export interface NativeLocation {
  path: string;
  source: NativeSource;
}

const requireHere = createRequire(new URL('package.json', PACKAGE_ROOT));
const loaded = new Map<string, NativeAddon>();
let foundAddon: NativeAddon | undefined;

/**
 * Says which file loadNative() would load, without loading it: `explicitPath`
 * (or the TCPIP_TS_NATIVE environment variable), else what node-gyp-build
 * picks in native/: the local build (build/Release, from node-gyp) first,
 * then the prebuilt binary for this platform, architecture and libc
 * (prebuilds/<platform>-<arch>/tcpip-ts.glibc.node: Node-API 8, so one
 * file serves every Node from 20 on). Throws ERR_NATIVE_NOT_FOUND, naming
 * the platform and what to install, when there is neither.
 */
export function locateNative(explicitPath?: string): NativeLocation {
  if (explicitPath !== undefined && (typeof explicitPath !== 'string' || explicitPath === '')) {
    throw invalidOption('explicitPath', 'a non-empty string', explicitPath);
  }
  if (explicitPath !== undefined) return { path: resolve(explicitPath), source: 'explicit path' };
  const fromEnv = process.env.TCPIP_TS_NATIVE;
  if (fromEnv) return { path: resolve(fromEnv), source: 'TCPIP_TS_NATIVE' };
  let path: string;
  try {
    path = (requireHere('node-gyp-build') as { path(dir: string): string }).path(NATIVE_DIR);
  } catch (cause) {
    throw notFound(cause);
  }
  const prebuilt = !path.startsWith(join(NATIVE_DIR, 'build') + sep);
  return { path, source: prebuilt ? 'prebuilt binary' : 'local build' };
}

/**
 * Loads the addon found by locateNative(). A file that is there but does not
 * load is an error (ERR_NATIVE_LOAD_FAILED), not a reason to try the next.
 * Loaded addons are cached by path.
 */
export function loadNative(explicitPath?: string): NativeAddon {
  // The addon found by looking is kept and comes first: after confine() its
  // file (and the directories node-gyp-build lists) may no longer be reachable.
  if (explicitPath === undefined && !process.env.TCPIP_TS_NATIVE && foundAddon) return foundAddon;
  const location = locateNative(explicitPath);
  const addon = loadFrom(location);
  if (location.source === 'local build' || location.source === 'prebuilt binary') foundAddon = addon;
  return addon;
}

function platformName(): string {
  if (process.platform !== 'linux') return `${process.platform}-${process.arch}`;
  const header = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header;
  return `${process.platform}-${process.arch} (${header?.glibcVersionRuntime ? `glibc ${header.glibcVersionRuntime}` : 'not glibc'})`;
}

function notFound(cause: unknown): NativeError {
  const err = new Error(
    `tcpip-ts: no native addon for ${platformName()}, Node ${process.version}: the package ships prebuilt binaries for ` +
      `${PREBUILT_PLATFORMS.join(' and ')} (glibc) and none was built from source at install. ` +
      'To build it, install python3, make and a C compiler (Debian: apt install python3 make gcc; macOS: xcode-select --install) ' +
      'and run "npm rebuild tcpip-ts" (where npm skips install scripts, approve it first: npm install-scripts approve tcpip-ts); ' +
      'or set TCPIP_TS_NATIVE to a tcpip_native.node file. ' +
      'Stacks on in-memory links work without it.',
    { cause },
  ) as NativeError;
  err.code = 'ERR_NATIVE_NOT_FOUND';
  return err;
}

function loadFrom({ path, source }: NativeLocation): NativeAddon {
  const cached = loaded.get(path);
  if (cached) return cached;
  let raw: RawAddon;
  try {
    raw = requireHere(path) as RawAddon;
  } catch (cause) {
    const fix = source === 'explicit path' || source === 'TCPIP_TS_NATIVE'
      ? 'Point it at a tcpip_native.node built for this platform'
      : 'Rebuild it with "npm rebuild tcpip-ts --build-from-source" (needs python3, make and a C compiler)';
    const err = new Error(`tcpip-ts: cannot load the native addon (${source}) ${path}: ${(cause as Error).message}. ${fix}.`, { cause }) as NativeError;
    err.code = 'ERR_NATIVE_LOAD_FAILED';
    throw err;
  }
  const addon = checked(raw);
  loaded.set(path, addon);
  return addon;
}

// ---- argument checks ---------------------------------------------------------

/** The kernel's limit (IFNAMSIZ - 1). */
const IFNAME_MAX = 15;
/** sun_path holds 108 bytes on Linux, 104 on macOS, including the NUL. */
const SUN_PATH_MAX = process.platform === 'linux' ? 107 : 103;
const PATH_MAX = 4095;
const MAX_RX_SLOTS = 65536;
const MAX_SLOT_SIZE = 1 << 20;
/** The addon's own cap on one device's receive area. */
const MAX_RX_AREA = 1 << 30;
const VMNET_MAX_SLOTS = 200;

function rangeError(message: string): RangeError & { code: string } {
  const err = new RangeError(message) as RangeError & { code: string };
  err.code = 'ERR_OUT_OF_RANGE';
  return err;
}

function argumentError(name: string, expected: string, value: unknown): TypeError & { code: string } {
  const err = new TypeError(`The "${name}" argument must be ${expected}. Received ${describe(value)}`) as TypeError & { code: string };
  err.code = 'ERR_INVALID_ARG_TYPE';
  return err;
}

function describe(value: unknown): string {
  if (typeof value === 'function') return 'a function';
  if (typeof value === 'string') return `'${value}'`;
  if (value === null || typeof value !== 'object') return String(value);
  return `an instance of ${value.constructor?.name ?? 'Object'}`;
}

function checkInteger(name: string, value: unknown, min: number, max: number, option = false): asserts value is number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    const expected = `an integer from ${min} to ${max}`;
    throw option ? invalidOption(name, expected, value) : argumentError(name, expected, value);
  }
}

function checkFunction(name: string, value: unknown, option = false): asserts value is (...args: never[]) => unknown {
  if (typeof value !== 'function') throw option ? invalidOption(name, 'a function', value) : argumentError(name, 'a function', value);
}

function checkOptions(value: unknown): asserts value is Record<string, unknown> {
  if (value === null || typeof value !== 'object') throw argumentError('options', 'an object', value);
}

/** A path for a system call: non-empty, no NUL, at most `max` bytes. */
function checkPath(name: string, value: unknown, max: number): asserts value is string {
  if (typeof value !== 'string' || value === '' || value.includes('\0') || Buffer.byteLength(value) > max) {
    throw invalidOption(name, `a non-empty path of at most ${max} bytes without NUL characters`, value);
  }
}

function checkInterfaceName(value: unknown): asserts value is string | undefined {
  if (value === undefined || value === '') return;
  // What the kernel's dev_valid_name() accepts.
  if (typeof value !== 'string' || Buffer.byteLength(value) > IFNAME_MAX || value === '.' || value === '..' || /[/:\s\0]/.test(value)) {
    throw invalidOption('name', `an interface name of at most ${IFNAME_MAX} bytes without '/', ':' or whitespace`, value);
  }
}

function checkTapOptions(options: unknown): asserts options is TapOptions {
  checkOptions(options);
  checkInterfaceName(options.name);
  if (typeof options.tun !== 'boolean') throw invalidOption('tun', 'a boolean', options.tun);
  if (options.netns !== undefined) {
    checkPath('netns', options.netns, PATH_MAX);
    if (!options.netns.startsWith('/')) throw invalidOption('netns', 'an absolute path (/run/netns/NAME, /proc/PID/ns/net)', options.netns);
  }
  if (options.mtu !== undefined) checkInteger('mtu', options.mtu, 68, 65535, true);
  if (options.up !== undefined && typeof options.up !== 'boolean') throw invalidOption('up', 'a boolean', options.up);
  if (options.offload !== undefined && typeof options.offload !== 'boolean') throw invalidOption('offload', 'a boolean', options.offload);
}

function checkUnixDgramOptions(options: unknown): asserts options is UnixDgramOptions {
  checkOptions(options);
  if (options.path !== undefined) checkPath('path', options.path, SUN_PATH_MAX);
  if (options.peer !== undefined) checkPath('peer', options.peer, SUN_PATH_MAX);
  if (options.path === undefined && options.peer === undefined) throw invalidOption('peer', 'a socket path (or give path, to wait for a peer)', options.peer);
}

/** Frames laid back to back: the lengths must fit the buffer. */
function checkFrames(buffer: unknown, lengths: unknown, count: unknown): void {
  if (!types.isUint8Array(buffer)) throw argumentError('buffer', 'a Uint8Array', buffer);
  if (!types.isUint32Array(lengths)) throw argumentError('lengths', 'a Uint32Array', lengths);
  checkInteger('count', count, 0, lengths.length);
  let total = 0;
  for (let i = 0; i < count; i++) total += lengths[i];
  if (total > buffer.length) throw rangeError(`The frames' lengths add up to ${total} bytes, more than the buffer's ${buffer.length}`);
}

function notSupported(what: string): NativeError {
  const err = new Error(`tcpip-ts: ${what} is not supported on ${process.platform}`) as NativeError;
  err.code = 'ERR_NOT_SUPPORTED';
  return err;
}

// ---- the checked face --------------------------------------------------------

function checked(raw: RawAddon): NativeAddon {
  const NativeFrameDevice = raw.FrameDevice;

  class FrameDevice implements FrameDeviceShape {
    readonly #device: FrameDeviceShape;

    constructor(fd: number, rxSlots: number, slotSize: number, onFrames: FramesCallback, onError: NativeErrorCallback, offload?: FrameDeviceOffload) {
      checkInteger('fd', fd, 0, 0x7fffffff);
      checkInteger('rxSlots', rxSlots, 1, MAX_RX_SLOTS);
      checkInteger('slotSize', slotSize, 1, MAX_SLOT_SIZE);
      if (rxSlots * slotSize > MAX_RX_AREA) throw rangeError(`rxSlots * slotSize must be at most ${MAX_RX_AREA} bytes. Received ${rxSlots * slotSize}`);
      checkFunction('onFrames', onFrames);
      checkFunction('onError', onError);
      if (offload !== undefined) {
        if (offload === null || typeof offload !== 'object') throw argumentError('offload', 'an object', offload);
        checkInteger('offload.mtu', offload.mtu, 576, 65535);
        if (offload.linkHeader !== 0 && offload.linkHeader !== 14) throw invalidOption('offload.linkHeader', '0 or 14', offload.linkHeader);
        this.#device = new NativeFrameDevice(fd, rxSlots, slotSize, onFrames, onError, { mtu: offload.mtu, linkHeader: offload.linkHeader });
      } else {
        this.#device = new NativeFrameDevice(fd, rxSlots, slotSize, onFrames, onError);
      }
    }

    get rxBuffer(): ArrayBuffer {
      return this.#device.rxBuffer;
    }

    get rxLengths(): Uint32Array {
      return this.#device.rxLengths;
    }

    start(): void {
      this.#device.start();
    }

    startInPlace(): void {
      this.#device.startInPlace();
    }

    readInto(memory: Uint8Array, targets: Uint32Array, slotSize: number, lengths: Uint32Array): number {
      if (!types.isUint8Array(memory)) throw argumentError('memory', 'a Uint8Array', memory);
      if (!types.isUint32Array(targets)) throw argumentError('targets', 'a Uint32Array', targets);
      if (!types.isUint32Array(lengths)) throw argumentError('lengths', 'a Uint32Array', lengths);
      checkInteger('slotSize', slotSize, 1, MAX_SLOT_SIZE);
      const n = Math.min(targets.length, lengths.length);
      for (let i = 0; i < n; i++) {
        if (targets[i]! + slotSize > memory.length) throw new RangeError(`readInto: targets[${i}] + slotSize lies outside memory`);
      }
      return this.#device.readInto(memory, targets, slotSize, lengths);
    }

    stop(): void {
      this.#device.stop();
    }

    write(buffer: Uint8Array, lengths: Uint32Array, count: number): number {
      checkFrames(buffer, lengths, count);
      return this.#device.write(buffer, lengths, count);
    }

    stats(): FrameDeviceStats {
      return this.#device.stats();
    }

    close(): void {
      this.#device.close();
    }

    ref(): void {
      this.#device.ref();
    }

    unref(): void {
      this.#device.unref();
    }
  }

  const addon: NativeAddon = {
    openTap(options: TapOptions) {
      checkTapOptions(options);
      if (!raw.openTap) throw notSupported('TAP/TUN');
      const { name, tun, netns, mtu, up, offload } = options;
      return raw.openTap({ name, tun, netns, mtu, up, offload });
    },
    openUnixDgram(options: UnixDgramOptions) {
      checkUnixDgramOptions(options);
      return raw.openUnixDgram({ path: options.path, peer: options.peer });
    },
    openUnixDgramPair() {
      return raw.openUnixDgramPair();
    },
    FrameDevice,
  };
  if (raw.udpSendSegments) addon.udpSendSegments = raw.udpSendSegments;
  if (raw.VmnetInterface) addon.VmnetInterface = checkedVmnet(raw.VmnetInterface);
  if (raw.PingSocket) addon.PingSocket = checkedPingSocket(raw.PingSocket);
  if (raw.sandbox && raw.seccompDeny && raw.setNoNewPrivs && raw.syscallNumbers) {
    const { sandbox, seccompDeny, setNoNewPrivs, syscallNumbers } = raw;
    addon.confinement = Object.freeze({ syscallNumbers, seccompDeny, setNoNewPrivs, sandbox });
  }
  return Object.freeze(addon);
}

function checkedVmnet(NativeVmnet: VmnetInterfaceConstructor): VmnetInterfaceConstructor {
  return class VmnetInterface implements VmnetShape {
    readonly #vmnet: VmnetShape;

    constructor(options: VmnetOptions) {
      checkOptions(options);
      const { mode, bridgedInterface, rxSlots, onFrames, onError } = options;
      if (mode !== 'shared' && mode !== 'host' && mode !== 'bridged') throw invalidOption('mode', "'shared', 'host' or 'bridged'", mode);
      if (mode === 'bridged') {
        if (typeof bridgedInterface !== 'string' || bridgedInterface === '' || Buffer.byteLength(bridgedInterface) > 63 || bridgedInterface.includes('\0')) {
          throw invalidOption('bridgedInterface', "a host interface name such as 'en0' (mode 'bridged' needs one)", bridgedInterface);
        }
      } else if (bridgedInterface !== undefined) {
        throw invalidOption('bridgedInterface', "absent unless mode is 'bridged'", bridgedInterface);
      }
      if (rxSlots !== undefined) checkInteger('rxSlots', rxSlots, 1, VMNET_MAX_SLOTS, true);
      checkFunction('onFrames', onFrames, true);
      checkFunction('onError', onError, true);
      this.#vmnet = new NativeVmnet({ mode, bridgedInterface, rxSlots, onFrames, onError });
    }

    get mac(): string | undefined {
      return this.#vmnet.mac;
    }

    get mtu(): number | undefined {
      return this.#vmnet.mtu;
    }

    get maxPacketSize(): number | undefined {
      return this.#vmnet.maxPacketSize;
    }

    get rxBuffer(): ArrayBuffer | undefined {
      return this.#vmnet.rxBuffer;
    }

    get rxLengths(): Uint32Array | undefined {
      return this.#vmnet.rxLengths;
    }

    start(): Promise<void> {
      return this.#vmnet.start();
    }

    stop(): Promise<void> {
      return this.#vmnet.stop();
    }

    write(buffer: Uint8Array, lengths: Uint32Array, count: number): number {
      checkFrames(buffer, lengths, count);
      return this.#vmnet.write(buffer, lengths, count);
    }

    stats(): FrameDeviceStats {
      return this.#vmnet.stats();
    }

    close(): void {
      this.#vmnet.close();
    }

    ref(): void {
      this.#vmnet.ref();
    }

    unref(): void {
      this.#vmnet.unref();
    }
  };
}

/**
 * The ICMP header, and the most a message can be: IPv4's 65535 less a
 * 20-byte header; for IPv6 the payload length field's 65535 (no jumbograms).
 */
const PING_MIN_MESSAGE = 8;
const PING_MAX_MESSAGE = { 4: 65515, 6: 65535 } as const;
/** The addon's own cap on a ping socket's receive area. */
const MAX_PING_AREA = 64 << 20;

function checkedPingSocket(NativePing: PingSocketConstructor): PingSocketConstructor {
  return class PingSocket implements PingShape {
    readonly #socket: PingShape;
    readonly #family: 4 | 6;

    constructor(family: 4 | 6, rxSlots: number, slotSize: number, onMessages: MessagesCallback, onError: NativeErrorCallback) {
      if (family !== 4 && family !== 6) throw argumentError('family', '4 or 6', family);
      checkInteger('rxSlots', rxSlots, 1, MAX_RX_SLOTS);
      checkInteger('slotSize', slotSize, PING_MIN_MESSAGE, MAX_SLOT_SIZE);
      if (rxSlots * slotSize > MAX_PING_AREA) throw rangeError(`rxSlots * slotSize must be at most ${MAX_PING_AREA} bytes. Received ${rxSlots * slotSize}`);
      checkFunction('onMessages', onMessages);
      checkFunction('onError', onError);
      this.#family = family;
      this.#socket = new NativePing(family, rxSlots, slotSize, onMessages, onError);
    }

    get rxBuffer(): ArrayBuffer {
      return this.#socket.rxBuffer;
    }

    get rxLengths(): Uint32Array {
      return this.#socket.rxLengths;
    }

    get rxAddresses(): Uint32Array | Uint8Array {
      return this.#socket.rxAddresses;
    }

    send(message: Uint8Array, address: number | Uint8Array): boolean {
      if (!types.isUint8Array(message)) throw argumentError('message', 'a Uint8Array', message);
      const max = PING_MAX_MESSAGE[this.#family];
      if (message.length < PING_MIN_MESSAGE || message.length > max) {
        throw rangeError(`The "message" argument must be ${PING_MIN_MESSAGE} to ${max} bytes. Received ${message.length}`);
      }
      if (this.#family === 4) checkInteger('address', address, 0, 0xffffffff);
      else if (!types.isUint8Array(address) || address.length !== 16) throw argumentError('address', 'an IPv6 address as 16 bytes (Uint8Array)', address);
      return this.#socket.send(message, address);
    }

    stats(): PingSocketStats {
      return this.#socket.stats();
    }

    close(): void {
      this.#socket.close();
    }

    ref(): void {
      this.#socket.ref();
    }

    unref(): void {
      this.#socket.unref();
    }
  };
}
