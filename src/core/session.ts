/**
 * One wasm instance: its memory, the calls into it, the callbacks out of it.
 *
 * Re-entrancy rule: lwIP is not re-entrant, and user code must never run
 * while lwIP is on the call stack. So callbacks from wasm (imports) only copy
 * what they need and queue an event; events are dispatched after the
 * outermost call returns (`run`). Imports never throw into wasm.
 *
 * A trap (an lwIP assert, an out-of-bounds access) ends this instance only:
 * the session is marked failed and the owner is told; every other instance
 * has its own memory and keeps running.
 */
import type { WasmExports, WasmImports } from './abi.js';
import { SOCKADDR_ADDR, SOCKADDR_FAMILY, SOCKADDR_PORT, SOCKADDR_SIZE, SOCKADDR_ZONE } from './abi.js';
import type { Clock } from './clock.js';
import { stackClosedError } from './errors.js';
import { formatIPv4, formatIPv6, type IpAddress } from '../wire/address.js';

export interface SocketAddress {
  family: 4 | 6;
  address: string;
  port: number;
  zone: number;
}

/** The callbacks a session's owner handles (already outside any wasm frame,
 * except those marked "in wasm", which must only copy and queue). */
export interface SessionHost {
  /** In wasm: a frame to send; valid only during the call. */
  linkOutput(netif: number, frame: Uint8Array): void;
  /** In wasm: a new connection on a listener; returns the id to give it (0 refuses). */
  tcpAccept(listenerId: number, pcb: number): number;
  /** In wasm: an ICMP/raw packet; returns true when it was ours. */
  rawReceive(id: number, packet: Uint8Array, from: SocketAddress): boolean;
  /** Events, dispatched after the call into wasm returns. */
  event(kind: SessionEvent): void;
  /** The instance trapped; the session is unusable from now on. */
  failed(error: Error): void;
  /** A burst of frames was sent (links may flush their batches). */
  linkFlush(): void;
}

export type SessionEvent =
  | { type: 'netif'; netif: number }
  | { type: 'tcp-connected'; id: number }
  | { type: 'tcp-data'; id: number; data: Uint8Array }
  | { type: 'tcp-fin'; id: number }
  | { type: 'tcp-sent'; id: number; bytes: number }
  | { type: 'tcp-error'; id: number; err: number }
  | { type: 'tcp-accepted'; listenerId: number; id: number }
  | { type: 'udp'; id: number; data: Uint8Array; from: SocketAddress }
  | { type: 'dns'; id: number; address: SocketAddress | null }
  | { type: 'gw-syn'; netif: number; syn: number; from: SocketAddress; to: SocketAddress }
  | { type: 'gw-udp'; netif: number; data: Uint8Array; from: SocketAddress; to: SocketAddress }
  | { type: 'gw-icmp'; netif: number; packet: Uint8Array };

const NO_TIMER = 0xffffffff;
/** Size of the slabs received TCP data is copied into (see #rxSlab). */
const RX_SLAB_SIZE = 256 * 1024;

export class WasmSession {
  readonly exports: WasmExports;
  #memory: WebAssembly.Memory;
  #u8: Uint8Array;
  #dv: DataView;
  #depth = 0;
  #events: SessionEvent[] = [];
  /** Index of the first queued event not yet handed to the host. */
  #undispatched = 0;
  /**
   * Received TCP data is copied out of wasm into this slab, and consecutive
   * segments of one connection within a batch become one chunk: one
   * allocation per slab instead of one ArrayBuffer per segment (at MTU 1500
   * that was 17 % of the time in garbage collection with 8 streams), and
   * fewer, larger chunks for the reader (fewer stream pushes, acks and, in
   * the gateway, host socket writes).
   */
  #rxSlab = new Uint8Array(0);
  #rxSlabUsed = 0;
  #dispatching = false;
  #failed: Error | null = null;
  #closed = false;
  #assertMessage: string | null = null;
  #sentFrames = false;
  #timer: unknown = null;
  #timerAt = Infinity;
  #sockaddrs: number;
  /** lwIP's sys_now() during the current outermost call: read once per call,
   * since lwIP asks many times per segment and the clock is not free. */
  #now = 0;
  /** The clock's reading behind #now, unrounded (for now_4us). */
  #clockMs = 0;
  #scratch = 0;
  #scratchSize = 0;

  constructor(module: WebAssembly.Module, readonly clock: Clock, readonly host: SessionHost) {
    const imports = this.#imports();
    const instance = new WebAssembly.Instance(module, { tcpip: imports as unknown as WebAssembly.ModuleImports });
    this.exports = instance.exports as unknown as WasmExports;
    this.#memory = this.exports.memory;
    this.#u8 = new Uint8Array(this.#memory.buffer);
    this.#dv = new DataView(this.#memory.buffer);
    this.#sockaddrs = this.exports.tt_sockaddr_scratch();
  }

  get failed(): Error | null {
    return this.#failed;
  }

  get alive(): boolean {
    return this.#failed === null && !this.#closed;
  }

  /** True while a call into wasm is on the stack. */
  get busy(): boolean {
    return this.#depth > 0;
  }

  /** The memory as bytes; re-read after any call (memory may have grown). */
  get u8(): Uint8Array {
    if (this.#u8.byteLength === 0) this.#refreshViews();
    return this.#u8;
  }

  get dv(): DataView {
    // Both views share one buffer; a detached buffer shows as a zero-length
    // Uint8Array (reading a DataView's byteLength would throw instead).
    if (this.#u8.byteLength === 0) this.#refreshViews();
    return this.#dv;
  }

  #refreshViews(): void {
    this.#u8 = new Uint8Array(this.#memory.buffer);
    this.#dv = new DataView(this.#memory.buffer);
  }

  /**
   * Calls into wasm. Runs due timers at the end of the outermost call,
   * dispatches the events the call produced, and re-arms the stack's timer.
   * A trap fails the session and is rethrown as a stack-closed error.
   */
  run<T>(body: (x: WasmExports) => T): T {
    if (this.#failed || this.#closed) throw stackClosedError(this.#failed ?? undefined);
    if (this.#depth === 0) {
      this.#clockMs = this.clock.now();
      this.#now = Math.floor(this.#clockMs) >>> 0;
    }
    this.#depth++;
    let result: T;
    let sleep = NO_TIMER;
    try {
      result = body(this.exports);
      if (this.#depth === 1) sleep = this.exports.tt_check_timeouts();
    } catch (err) {
      this.#depth--;
      if (err instanceof WebAssembly.RuntimeError || err instanceof RangeError) {
        // A trap or a wasm stack overflow: this instance's state is unknown.
        this.#fail(err as Error);
        throw stackClosedError(this.#failed ?? undefined);
      }
      throw err;
    }
    this.#depth--;
    if (this.#depth === 0) this.#afterCall(sleep);
    return result;
  }

  #afterCall(sleep: number): void {
    if (this.#sentFrames) {
      this.#sentFrames = false;
      this.host.linkFlush();
    }
    if (sleep !== NO_TIMER) this.#armTimer(sleep);
    this.#dispatch();
    // Writers that found the stack at its memory budget try again once it
    // has drained (malloc.c clears the flag only well below the budget);
    // from a microtask, since this call may be inside a writer's own.
    if (this.#memoryWaiters.size > 0 && this.alive && this.exports.tt_mem_tight() === 0) {
      const waiters = [...this.#memoryWaiters];
      this.#memoryWaiters.clear();
      queueMicrotask(() => {
        for (const wake of waiters) wake();
      });
    }
  }

  #memoryWaiters = new Set<() => void>();

  /** Calls wake once the stack is no longer at its memory budget. */
  waitForMemory(wake: () => void): void {
    this.#memoryWaiters.add(wake);
  }

  #dispatch(): void {
    if (this.#dispatching) return;
    this.#dispatching = true;
    try {
      // Events queued by calls made from inside handlers are picked up by
      // this same loop, in order.
      for (let i = 0; i < this.#events.length; i++) {
        if (this.#failed) break;
        this.#undispatched = i + 1;
        this.host.event(this.#events[i]!);
      }
    } finally {
      this.#events.length = 0;
      this.#undispatched = 0;
      this.#dispatching = false;
    }
    this.#runBatched();
  }

  #batched: ((x: WasmExports) => void)[] = [];

  /**
   * Runs fn in wasm now, or, while events are being dispatched, together
   * with the other batched calls in one call into wasm after the dispatch
   * (acknowledging data a handler consumed: one crossing and one timer check
   * per burst instead of per segment).
   */
  batch(fn: (x: WasmExports) => void): void {
    if (!this.#dispatching) {
      this.run(fn);
      return;
    }
    this.#batched.push(fn);
  }

  #runBatched(): void {
    if (this.#batched.length === 0 || !this.alive) {
      this.#batched.length = 0;
      return;
    }
    const calls = this.#batched;
    this.#batched = [];
    this.run((x) => {
      for (const fn of calls) fn(x);
    });
  }

  #armTimer(sleepMs: number): void {
    const at = this.clock.now() + sleepMs;
    const keepAlive = this.#keepAlive;
    if (this.#timer !== null) {
      // The armed timer fires first and re-arms, unless it must now (or no
      // longer) keep the process alive.
      if (this.#timerAt <= at && this.#timerKeepsAlive === keepAlive) return;
      this.clock.cancelTimer(this.#timer);
    }
    this.#timerAt = Math.min(at, this.#timerAt);
    this.#timerKeepsAlive = keepAlive;
    this.#timer = this.clock.setTimer(() => {
      this.#timer = null;
      this.#timerAt = Infinity;
      if (this.alive) this.run(() => undefined);
      // +1 ms: lwIP's deadlines are whole milliseconds of the floored clock,
      // and a timer that fires a hair early only re-arms for the remainder.
    }, this.#timerAt - this.clock.now() + 1, keepAlive);
  }

  /**
   * Whether the stack's timer keeps a Node process alive: true while its
   * owner has open sockets that are not unref'd (as Node's own handles do),
   * so retransmissions and handshakes in flight are not cut short by exit.
   */
  setKeepAlive(on: boolean): void {
    if (this.#keepAlive === on) return;
    this.#keepAlive = on;
    if (this.#timer !== null && this.alive) {
      const remaining = Math.max(0, this.#timerAt - this.clock.now());
      this.clock.cancelTimer(this.#timer);
      this.#timer = null;
      this.#timerAt = Infinity;
      this.#armTimer(remaining);
    }
  }
  #keepAlive = false;
  #timerKeepsAlive = false;

  #tcpData(id: number, ptr: number, len: number): void {
    let slab = this.#rxSlab;
    let at = this.#rxSlabUsed;
    if (at + len > slab.length) {
      // The old slab lives on while chunks of it are referenced.
      slab = this.#rxSlab = new Uint8Array(Math.max(RX_SLAB_SIZE, len));
      at = 0;
    }
    slab.set(this.u8.subarray(ptr, ptr + len), at);
    this.#rxSlabUsed = at + len;
    const events = this.#events;
    const last = events.length > this.#undispatched ? events[events.length - 1] : undefined;
    if (last?.type === 'tcp-data' && last.id === id && last.data.buffer === slab.buffer && last.data.byteOffset + last.data.length === at) {
      last.data = new Uint8Array(slab.buffer, last.data.byteOffset, last.data.length + len);
    } else {
      events.push({ type: 'tcp-data', id, data: new Uint8Array(slab.buffer, at, len) });
    }
  }

  #fail(err: Error): void {
    if (this.#failed) return;
    const message = this.#assertMessage ?? `wasm trap: ${err.message}`;
    const failure = new Error(`stack failed: ${message}`, { cause: err }) as Error & { code: string };
    failure.code = 'ERR_STACK_FAILED';
    this.#failed = failure;
    this.#stopTimer();
    this.#events.length = 0;
    this.host.failed(failure);
  }

  #stopTimer(): void {
    if (this.#timer !== null) this.clock.cancelTimer(this.#timer);
    this.#timer = null;
  }

  close(): void {
    this.#closed = true;
    this.#stopTimer();
  }

  // ---- memory helpers ----

  /** A scratch buffer in wasm memory of at least n bytes (reused between calls). */
  scratch(n: number): number {
    if (n > this.#scratchSize) {
      const size = Math.max(n, 4096, this.#scratchSize * 2);
      const ptr = this.run((x) => {
        if (this.#scratch) x.tt_free(this.#scratch);
        return x.tt_malloc(size);
      });
      if (ptr === 0) throw Object.assign(new Error('out of memory in stack'), { code: 'ENOMEM' });
      this.#scratch = ptr;
      this.#scratchSize = size;
    }
    return this.#scratch;
  }

  /** Pointer of scratch sockaddr i (0 and 1 carry arguments, 2 carries results). */
  sockaddr(i: 0 | 1 | 2): number {
    return this.#sockaddrs + i * SOCKADDR_SIZE;
  }

  writeSockaddr(i: 0 | 1, ip: IpAddress | null, port: number): void {
    const p = this.sockaddr(i);
    const u8 = this.u8;
    u8.fill(0, p, p + SOCKADDR_SIZE);
    if (ip) {
      u8[p + SOCKADDR_FAMILY] = ip.family;
      u8[p + SOCKADDR_ZONE] = ip.zone;
      u8.set(ip.bytes, p + SOCKADDR_ADDR);
    }
    this.dv.setUint16(p + SOCKADDR_PORT, port, true);
  }

  readSockaddr(ptr: number): SocketAddress {
    const u8 = this.u8;
    const family = u8[ptr + SOCKADDR_FAMILY] === 6 ? 6 : 4;
    const a = ptr + SOCKADDR_ADDR;
    return {
      family,
      address: family === 6 ? formatIPv6(u8, a) : formatIPv4(u8, a),
      port: this.dv.getUint16(ptr + SOCKADDR_PORT, true),
      zone: u8[ptr + SOCKADDR_ZONE]!,
    };
  }

  readSockaddrBytes(ptr: number): IpAddress {
    const u8 = this.u8;
    const family = u8[ptr + SOCKADDR_FAMILY] === 6 ? 6 : 4;
    const a = ptr + SOCKADDR_ADDR;
    return { family, bytes: u8.slice(a, a + (family === 6 ? 16 : 4)), zone: u8[ptr + SOCKADDR_ZONE]! };
  }

  readCString(ptr: number): string {
    const u8 = this.u8;
    let end = ptr;
    while (end < u8.length && u8[end] !== 0) end++;
    return new TextDecoder().decode(u8.subarray(ptr, end));
  }

  // ---- imports ----

  #imports(): WasmImports {
    const guard = <A extends unknown[], R>(fallback: R, fn: (...args: A) => R) => (...args: A): R => {
      try {
        return fn(...args);
      } catch (err) {
        // A bug on our side of the boundary: never unwind through lwIP.
        queueMicrotask(() => this.#fail(err as Error));
        return fallback;
      }
    };
    const queue = (e: SessionEvent) => {
      this.#events.push(e);
    };
    return {
      now: () => this.#now,
      // 250 ticks a millisecond; the clock may be fractional (realClock is).
      now_4us: () => Math.floor(this.#clockMs * 250) >>> 0,
      assert_failed: guard(undefined, (message: number, line: number, file: number) => {
        this.#assertMessage = `lwIP assertion "${this.readCString(message)}" failed at ${this.readCString(file)}:${line}`;
      }),
      link_output: guard(undefined, (netif: number, frame: number, len: number) => {
        this.#sentFrames = true;
        this.host.linkOutput(netif, this.u8.subarray(frame, frame + len));
      }),
      netif_status: guard(undefined, (netif: number) => queue({ type: 'netif', netif })),
      tcp_accept: guard(0, (listenerId: number, pcb: number) => {
        const id = this.host.tcpAccept(listenerId, pcb);
        if (id !== 0) queue({ type: 'tcp-accepted', listenerId, id });
        return id;
      }),
      tcp_connected: guard(undefined, (id: number) => queue({ type: 'tcp-connected', id })),
      tcp_recv: guard(undefined, (id: number, data: number, len: number) => this.#tcpData(id, data, len)),
      tcp_fin: guard(undefined, (id: number) => queue({ type: 'tcp-fin', id })),
      tcp_sent: guard(undefined, (id: number, bytes: number) => queue({ type: 'tcp-sent', id, bytes })),
      tcp_error: guard(undefined, (id: number, err: number) => queue({ type: 'tcp-error', id, err })),
      udp_recv: guard(undefined, (id: number, data: number, len: number, from: number) =>
        queue({ type: 'udp', id, data: this.u8.slice(data, data + len), from: this.readSockaddr(from) })),
      raw_recv: guard(0, (id: number, packet: number, len: number, from: number) =>
        this.host.rawReceive(id, this.u8.subarray(packet, packet + len), this.readSockaddr(from)) ? 1 : 0),
      dns_found: guard(undefined, (id: number, addr: number) =>
        queue({ type: 'dns', id, address: addr === 0 ? null : this.readSockaddr(addr) })),
      gw_tcp_syn: guard(undefined, (netif: number, syn: number, from: number, to: number) =>
        queue({ type: 'gw-syn', netif, syn, from: this.readSockaddr(from), to: this.readSockaddr(to) })),
      gw_udp: guard(undefined, (netif: number, data: number, len: number, from: number, to: number) =>
        queue({ type: 'gw-udp', netif, data: this.u8.slice(data, data + len), from: this.readSockaddr(from), to: this.readSockaddr(to) })),
      gw_icmp: guard(undefined, (netif: number, packet: number, len: number) =>
        queue({ type: 'gw-icmp', netif, packet: this.u8.slice(packet, packet + len) })),
    };
  }
}
