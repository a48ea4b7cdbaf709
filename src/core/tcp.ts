/**
 * TCP endpoints over lwIP's raw API, callback-shaped (no streams here; the
 * Node Duplex lives in src/node/socket.ts).
 */
import type { WasmExports } from './abi.js';
import type { SocketAddress, WasmSession } from './session.js';
import { ERR, lwipError, type SystemError } from './errors.js';

export interface TcpHandler {
  /** The three-way handshake completed (client side). */
  connect(): void;
  /** Bytes arrived. Call TcpConnection.consumed() once they are read. */
  data(chunk: Uint8Array): void;
  /** The peer sent FIN. */
  end(): void;
  /** The peer acknowledged bytes (0: the stack is below its memory budget again): there is room to write again. */
  sent(bytes: number): void;
  /** The connection is gone: reset, refused, timed out, or the stack failed
   * (err), or the stack was closed by its owner (null). */
  error(err: SystemError | null): void;
}

/** The largest slice tcp_write takes in one call (its length is a u16). */
const WRITE_SLICE = 0xffff;

export class TcpConnection {
  handler: TcpHandler | null = null;
  /** True until connected (or failed): a reset now means "refused". */
  connecting: boolean;
  #pcb: number;
  #local: SocketAddress | null = null;
  #remote: SocketAddress | null = null;

  constructor(readonly session: WasmSession, pcb: number, readonly id: number, connecting: boolean, remote?: SocketAddress) {
    this.#pcb = pcb;
    this.connecting = connecting;
    if (remote) this.#remote = remote;
  }

  /** False once lwIP freed the PCB (closed, reset or aborted). */
  get open(): boolean {
    return this.#pcb !== 0 && this.session.alive;
  }

  get local(): SocketAddress | null {
    this.#readAddresses();
    return this.#local;
  }

  get remote(): SocketAddress | null {
    this.#readAddresses();
    return this.#remote;
  }

  #readAddresses(): void {
    if (this.#local && this.#local.port !== 0) return;
    if (!this.open) return;
    this.session.run((x) => x.tt_tcp_addresses(this.#pcb));
    this.#local = this.session.readSockaddr(this.session.sockaddr(0));
    this.#remote = this.session.readSockaddr(this.session.sockaddr(1));
  }

  // The calls of the data path, made once per connection rather than as a
  // closure per call (with the arguments in fields): a 1-byte request/response
  // through the gateway allocated ~5 KB per round trip, and every scavenge
  // it causes is a pause on the path of some round trip (the p99).
  #writeBuf = 0;
  #writeLen = 0;
  #writeMore = 0;
  #recvedBytes = 0;
  #sndbufCall = (x: WasmExports): number => x.tt_tcp_sndbuf(this.#pcb);
  #writeCall = (x: WasmExports): number => x.tt_tcp_write(this.#pcb, this.#writeBuf, this.#writeLen, this.#writeMore);
  #outputCall = (x: WasmExports): number => x.tt_tcp_output(this.#pcb);
  #recvedCall = (x: WasmExports): void => {
    const bytes = this.#recvedBytes;
    this.#recvedBytes = 0;
    if (this.#pcb !== 0 && bytes > 0) x.tt_tcp_recved(this.#pcb, bytes);
  };

  /** Queues as much of data as lwIP's send buffer takes; returns the count. */
  write(data: Uint8Array): number {
    if (!this.open) return 0;
    const s = this.session;
    let total = 0;
    while (total < data.length) {
      // Copy into wasm only what lwIP will take now: when the send buffer is
      // nearly full, copying a whole slice wasted up to 23x the bytes sent.
      const room = s.run(this.#sndbufCall);
      const n = Math.min(data.length - total, WRITE_SLICE, room);
      if (n === 0) break;
      const buf = s.scratch(n);
      s.u8.set(data.subarray(total, total + n), buf);
      this.#writeBuf = buf;
      this.#writeLen = n;
      this.#writeMore = total + n < data.length ? 1 : 0;
      const taken = s.run(this.#writeCall);
      if (taken < 0) throw lwipError(taken, 'write');
      total += taken;
      if (taken < n) {
        // At the memory budget nothing in flight may be left to ACK (and
        // call sent()): the session calls back once memory has drained.
        if (s.exports.tt_mem_tight() !== 0) s.waitForMemory(this.#memoryFreed);
        break;
      }
    }
    return total;
  }

  #memoryFreed = (): void => {
    if (this.open) this.handler?.sent(0);
  };

  /** Sends what write() queued (Nagle permitting). */
  output(): void {
    if (this.open) this.session.run(this.#outputCall);
  }

  /** Bytes lwIP will accept now. */
  get writable(): number {
    return this.open ? this.session.run((x) => x.tt_tcp_sndbuf(this.#pcb)) : 0;
  }

  /** Reopens the receive window by bytes the reader has consumed. */
  consumed(bytes: number): void {
    if (bytes <= 0 || !this.open) return;
    // Batched calls of one dispatch add up; the first to run reopens by all.
    const queued = this.#recvedBytes > 0;
    this.#recvedBytes += bytes;
    if (!queued) this.session.batch(this.#recvedCall);
  }

  /** Sends FIN after queued data (half-close). */
  shutdown(): void {
    if (!this.open) return;
    const err = this.session.run((x) => x.tt_tcp_shutdown_write(this.#pcb));
    if (err !== ERR.OK && err !== ERR.CONN) throw lwipError(err, 'shutdown');
  }

  /** Releases the connection gracefully (FIN if not yet sent); lwIP finishes
   * the close on its own. No more callbacks. */
  close(): void {
    if (!this.open) return;
    const pcb = this.#pcb;
    this.#pcb = 0;
    this.session.run((x) => x.tt_tcp_close(pcb));
  }

  /** Sends RST and releases the connection. No more callbacks. */
  abort(): void {
    if (!this.open) return;
    const pcb = this.#pcb;
    this.#pcb = 0;
    this.session.run((x) => x.tt_tcp_abort(pcb));
  }

  /** lwIP freed the PCB (error callback). */
  released(): void {
    this.#pcb = 0;
  }

  setNoDelay(on: boolean): void {
    if (this.open) this.session.run((x) => x.tt_tcp_set_nodelay(this.#pcb, on ? 1 : 0));
  }

  setKeepAlive(on: boolean, idleMs: number, intervalMs = 75_000, count = 9): void {
    if (this.open) this.session.run((x) => x.tt_tcp_set_keepalive(this.#pcb, on ? 1 : 0, idleMs, intervalMs, count));
  }
}

export interface TcpListenerHandler {
  connection(conn: TcpConnection): void;
}

export class TcpListener {
  handler: TcpListenerHandler | null = null;
  #pcb: number;

  constructor(readonly session: WasmSession, pcb: number, readonly id: number, readonly local: SocketAddress) {
    this.#pcb = pcb;
  }

  get open(): boolean {
    return this.#pcb !== 0 && this.session.alive;
  }

  close(): void {
    if (!this.open) return;
    const pcb = this.#pcb;
    this.#pcb = 0;
    this.session.run((x) => x.tt_tcp_close(pcb));
  }
}
