/**
 * TcpSocket: a net.Socket-shaped stream.Duplex over a stack's TCP connection.
 *
 * Flow control both ways:
 * - write(): data goes into lwIP's send buffer; when it is full the write
 *   callback waits for the peer's ACKs (tcp_sent), so the Writable buffers
 *   and write() returns false until 'drain'.
 * - read: received bytes are acknowledged to lwIP (tcp_recved, which reopens
 *   the TCP window) only once the Readable side has room, i.e. as the
 *   consumer reads. A slow reader therefore closes the window and throttles
 *   the sender instead of buffering without bound.
 */
import { Duplex } from 'node:stream';
import type { TcpConnection } from '../core/tcp.js';
import type { SystemError } from '../core/errors.js';
import type { Stack } from '../core/stack.js';

export interface TcpSocketOptions {
  allowHalfOpen?: boolean;
  readableHighWaterMark?: number;
  writableHighWaterMark?: number;
}

interface PendingWrite {
  chunk: Uint8Array;
  offset: number;
  callback: (err?: Error | null) => void;
}

export class TcpSocket extends Duplex {
  #conn: TcpConnection | null = null;
  #stack: Stack;
  #pending: PendingWrite | null = null;
  #unacked = 0;
  #finSent = false;
  #finReceived = false;
  #connecting: boolean;
  #bytesRead = 0;
  #bytesWritten = 0;
  #remote: { address?: string; family?: string; port?: number } = {};
  #local: { address?: string; family?: string; port?: number } = {};
  #noDelay = false;
  #keepAlive: [boolean, number] | null = null;

  constructor(stack: Stack, options: TcpSocketOptions = {}) {
    super({
      allowHalfOpen: options.allowHalfOpen ?? false,
      readableHighWaterMark: options.readableHighWaterMark,
      writableHighWaterMark: options.writableHighWaterMark,
      // Node's net.Socket emits 'end' then 'close'; autoDestroy does that.
      autoDestroy: true,
      emitClose: true,
      decodeStrings: true,
    });
    this.#stack = stack;
    this.#connecting = true;
    stack.ref(this);
    this.once('close', () => stack.unref(this));
  }

  /** Binds this socket to a connection (accepted or connecting). */
  _attach(conn: TcpConnection, connected: boolean): void {
    this.#conn = conn;
    this.#connecting = !connected;
    if (connected) this.#readAddresses();
    conn.handler = {
      connect: () => {
        this.#connecting = false;
        this.#readAddresses();
        if (this.#noDelay) conn.setNoDelay(true);
        if (this.#keepAlive) conn.setKeepAlive(...this.#keepAlive);
        this.emit('connect');
        this.emit('ready');
        this.#continueWrite();
      },
      data: (chunk) => {
        this.#bytesRead += chunk.length;
        if (this.push(chunk)) conn.consumed(chunk.length);
        else this.#unacked += chunk.length;
      },
      end: () => {
        this.#finReceived = true;
        this.push(null);
        // As net.Socket does: lets 'end' fire when nothing is buffered, even
        // if nobody is reading.
        this.read(0);
        this.#maybeClose();
      },
      sent: () => this.#continueWrite(),
      error: (err: SystemError | null) => {
        this.#conn = null;
        this.#stack.tcpForget(conn);
        this.destroy(err ?? undefined);
      },
    };
  }

  #readAddresses(): void {
    const conn = this.#conn;
    if (!conn) return;
    const l = conn.local, r = conn.remote;
    if (l) this.#local = { address: l.address, family: l.family === 6 ? 'IPv6' : 'IPv4', port: l.port };
    if (r) this.#remote = { address: r.address, family: r.family === 6 ? 'IPv6' : 'IPv4', port: r.port };
  }

  get connecting(): boolean {
    return this.#connecting;
  }
  get pending(): boolean {
    return this.#connecting || this.#conn === null;
  }
  get readyState(): string {
    if (this.#connecting) return 'opening';
    if (this.readable && this.writable) return 'open';
    if (this.readable) return 'readOnly';
    if (this.writable) return 'writeOnly';
    return 'closed';
  }
  get remoteAddress(): string | undefined { return this.#remote.address; }
  get remoteFamily(): string | undefined { return this.#remote.family; }
  get remotePort(): number | undefined { return this.#remote.port; }
  get localAddress(): string | undefined { return this.#local.address; }
  get localFamily(): string | undefined { return this.#local.family; }
  get localPort(): number | undefined { return this.#local.port; }
  get bytesRead(): number { return this.#bytesRead; }
  get bytesWritten(): number { return this.#bytesWritten; }
  get bufferSize(): number { return this.writableLength; }

  address(): { address?: string; family?: string; port?: number } {
    return { ...this.#local };
  }

  setNoDelay(noDelay = true): this {
    this.#noDelay = noDelay;
    if (this.#conn && !this.#connecting) this.#conn.setNoDelay(noDelay);
    return this;
  }

  setKeepAlive(enable = false, initialDelay = 0): this {
    // Node's default idle time when 0 is given is the OS default (2 h on Linux).
    this.#keepAlive = [enable, initialDelay > 0 ? initialDelay : 7_200_000];
    if (this.#conn && !this.#connecting) this.#conn.setKeepAlive(...this.#keepAlive);
    return this;
  }

  setTimeout(ms: number, callback?: () => void): this {
    // Idle timeouts are the caller's business in Node too: emit 'timeout' only.
    if (callback) this.once('timeout', callback);
    clearTimeout(this.#idleTimer);
    this.#idleMs = ms;
    if (ms > 0) this.#armIdle();
    return this;
  }
  #idleTimer: ReturnType<typeof setTimeout> | undefined;
  #idleMs = 0;
  #armIdle(): void {
    this.#idleTimer = setTimeout(() => this.emit('timeout'), this.#idleMs);
    this.#idleTimer.unref?.();
  }

  /** As net.Socket: an open socket keeps the process alive unless unref'd. */
  ref(): this {
    if (!this.destroyed) this.#stack.ref(this);
    return this;
  }

  unref(): this {
    this.#stack.unref(this);
    return this;
  }

  override _read(): void {
    if (this.#unacked > 0 && this.#conn) {
      const n = this.#unacked;
      this.#unacked = 0;
      this.#conn.consumed(n);
    }
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (err?: Error | null) => void): void {
    this.#pending = { chunk, offset: 0, callback };
    if (!this.#connecting) this.#continueWrite();
  }

  #continueWrite(): void {
    const p = this.#pending;
    const conn = this.#conn;
    if (!p || !conn || this.#connecting) return;
    if (this.#idleMs > 0) {
      clearTimeout(this.#idleTimer);
      this.#armIdle();
    }
    let n: number;
    try {
      // One call into the stack for the copy, tcp_write and tcp_output, so
      // lwIP's timers are checked once per write rather than after each step.
      n = conn.session.run(() => {
        const taken = conn.write(p.offset === 0 ? p.chunk : p.chunk.subarray(p.offset));
        conn.output();
        return taken;
      });
    } catch (err) {
      this.#pending = null;
      p.callback(err as Error);
      return;
    }
    p.offset += n;
    this.#bytesWritten += n;
    if (p.offset >= p.chunk.length) {
      this.#pending = null;
      p.callback();
    }
    // else: lwIP's buffer is full; tcp_sent will call us again.
  }

  override _final(callback: (err?: Error | null) => void): void {
    const conn = this.#conn;
    if (!conn) {
      callback();
      return;
    }
    const finish = () => {
      try {
        conn.shutdown();
        this.#finSent = true;
        callback();
        this.#maybeClose();
      } catch (err) {
        callback(err as Error);
      }
    };
    if (this.#connecting) this.once('connect', finish);
    else finish();
  }

  /** Both directions finished cleanly: let lwIP complete the close. */
  #maybeClose(): void {
    if (this.#finSent && this.#finReceived && this.#conn) {
      const conn = this.#conn;
      this.#conn = null;
      this.#stack.tcpForget(conn);
      conn.close();
    }
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    clearTimeout(this.#idleTimer);
    const conn = this.#conn;
    this.#conn = null;
    if (conn) {
      this.#stack.tcpForget(conn);
      // destroy() before both sides finished resets the connection, as the
      // issue asks and as a kernel does when unread data is discarded.
      if (this.#finSent && this.#finReceived) conn.close();
      else conn.abort();
    }
    const p = this.#pending;
    this.#pending = null;
    if (p) p.callback(err ?? Object.assign(new Error('socket destroyed'), { code: 'ERR_STREAM_DESTROYED' }));
    callback(err);
  }
}
