/**
 * One sandbox TCP connection carried over one host socket: the stack's
 * connection (core TcpConnection, callbacks) and the host's net.Socket are
 * joined directly, without a Duplex over the inner side and two pipe()s:
 * that stream machinery (its objects, listeners and end/finish/close ticks)
 * was a large part of the gateway's CPU per connection (bench/README.md,
 * gateway, "Where a connection's CPU goes").
 *
 * Flow control, each way bounded:
 * - sandbox → host: received bytes are written to the host socket and
 *   acknowledged to lwIP (tcp_recved, reopening the window) only while the
 *   host socket takes them (write() true); after a false, the bytes are
 *   acknowledged at 'drain'. What waits is the host socket's write buffer
 *   plus at most one TCP window.
 * - host → sandbox: a chunk read from the host socket goes into lwIP's send
 *   buffer; what does not fit waits (one chunk) with the host socket paused
 *   until the sandbox's ACKs make room (tcp_sent).
 * Half-closes cross in order (a FIN follows the data before it), and a reset
 * on either side resets the other.
 */
import type { Socket } from 'node:net';
import type { Stack } from '../core/stack.js';
import type { TcpConnection, TcpHandler } from '../core/tcp.js';
import type { SystemError } from '../core/errors.js';

/** Byte counts a splice adds to as data crosses (the flow's and the gateway's). */
export interface SpliceCounters {
  bytesOut: number;
  bytesIn: number;
}

/**
 * A per-turn budget shared by a gateway's host sockets (the gateway's
 * TurnBudget): take() counts what a host socket delivered and returns true
 * when this turn's budget is spent; the source is then paused until the
 * budget calls its budgetResume() on a later turn.
 */
export interface HostBudget {
  take(bytes: number, source: { budgetResume(): void }): boolean;
}

export class TcpSplice implements TcpHandler {
  /** Paused for this turn's host budget: the budget resumes it (budgetResume). */
  #budgetPaused = false;
  readonly #stack: Stack;
  readonly #host: Socket;
  #conn: TcpConnection | null;
  readonly #counters: SpliceCounters[];
  readonly #onClose: () => void;
  /** Bytes from the sandbox written to the host socket, not yet acknowledged to lwIP (the host socket is full). */
  #unacked = 0;
  /** Host bytes lwIP's send buffer has not taken yet (the host socket is paused meanwhile). */
  #pending: Uint8Array | null = null;
  /** The host sent FIN: our FIN to the sandbox follows #pending. */
  #hostEnded = false;
  #finSent = false;
  #finReceived = false;
  #innerDone = false;
  #hostClosed = false;
  #closed = false;

  readonly #budget: HostBudget | null;

  constructor(stack: Stack, conn: TcpConnection, host: Socket, counters: SpliceCounters[], onClose: () => void, budget?: HostBudget) {
    this.#stack = stack;
    this.#budget = budget ?? null;
    this.#conn = conn;
    this.#host = host;
    this.#counters = counters;
    this.#onClose = onClose;
    // As a TcpSocket would: an open inner connection keeps the stack's timer
    // (retransmissions, the FIN's) holding the process alive.
    stack.ref(this);
    conn.handler = this;
    host.on('data', this.#hostData);
    host.on('drain', this.#hostDrain);
    host.on('end', this.#hostEnd);
    host.on('error', this.#hostError);
    host.on('close', this.#hostClose);
  }

  // -------------------------------------------------------- inner (TcpHandler)

  connect(): void {
    // Accepted connections are connected already.
  }

  data(chunk: Uint8Array): void {
    const n = chunk.length;
    for (const c of this.#counters) c.bytesOut += n;
    if (this.#hostClosed || this.#host.destroyed) return;
    if (this.#unacked === 0 && this.#host.write(chunk)) this.#conn?.consumed(n);
    else {
      if (this.#unacked > 0) this.#host.write(chunk);
      this.#unacked += n;
    }
  }

  end(): void {
    this.#finReceived = true;
    // After the data written before it; the host socket closes once both
    // directions have ended (allowHalfOpen, autoDestroy).
    if (!this.#host.destroyed) this.#host.end();
    this.#maybeCloseInner();
  }

  sent(): void {
    this.#flushPending();
  }

  error(err: SystemError | null): void {
    const conn = this.#conn;
    this.#conn = null;
    if (conn) this.#stack.tcpForget(conn);
    this.#innerClosed();
    // A reset from the sandbox resets the host side; a stack closed by its
    // owner (null) just closes it.
    if (err && this.#host.resetAndDestroy) this.#host.resetAndDestroy();
    else this.#host.destroy();
  }

  // -------------------------------------------------------- host socket

  #hostData = (chunk: Buffer): void => {
    for (const c of this.#counters) c.bytesIn += chunk.length;
    if (!this.#conn) return;
    // The socket is paused while a chunk waits, so one never meets another.
    this.#pending = this.#pending ? Buffer.concat([this.#pending, chunk]) : chunk;
    this.#flushPending();
    if (this.#pending) this.#host.pause();
    if (!this.#budgetPaused && this.#budget?.take(chunk.length, this)) {
      this.#budgetPaused = true;
      this.#host.pause();
    }
  };

  /** A later turn: the host budget no longer holds the host socket back (a chunk waiting for lwIP still does). */
  budgetResume(): void {
    this.#budgetPaused = false;
    if (!this.#pending && !this.#host.destroyed) this.#host.resume();
  }

  #hostDrain = (): void => {
    const n = this.#unacked;
    this.#unacked = 0;
    if (n > 0) this.#conn?.consumed(n);
  };

  #hostEnd = (): void => {
    this.#hostEnded = true;
    if (!this.#pending) this.#shutdownInner();
  };

  #hostError = (): void => {
    // The host peer reset (or the socket failed): reset the sandbox's side,
    // unless both directions had already finished cleanly.
    this.#releaseInner();
  };

  #hostClose = (): void => {
    this.#hostClosed = true;
    // Closed before the host's FIN (destroyed, or failed): the sandbox's
    // side goes too. After it, bytes still on their way to the sandbox
    // (#pending, lwIP's send buffer) are delivered, then our FIN.
    if (this.#conn && !this.#hostEnded) this.#releaseInner();
    this.#maybeFinished();
  };

  // -------------------------------------------------------- internals

  /** One call into the stack for the copy, tcp_write and tcp_output (made once, not a closure per chunk). */
  #writePending = (): number => {
    const conn = this.#conn!;
    const n = conn.write(this.#pending!);
    conn.output();
    return n;
  };

  /** Moves #pending into lwIP's send buffer as far as it takes it; resumes the host socket once all is in. */
  #flushPending(): void {
    const p = this.#pending;
    const conn = this.#conn;
    if (!p || !conn) return;
    let taken: number;
    try {
      taken = conn.session.run(this.#writePending);
    } catch {
      this.#pending = null;
      this.#releaseInner();
      this.#host.destroy();
      return;
    }
    if (taken < p.length) {
      this.#pending = p.subarray(taken);
      return;
    }
    this.#pending = null;
    if (this.#hostEnded) this.#shutdownInner();
    else if (this.#host.isPaused() && !this.#budgetPaused) this.#host.resume();
  }

  #shutdownInner(): void {
    const conn = this.#conn;
    if (!conn || this.#finSent) return;
    try {
      conn.shutdown();
    } catch {
      this.#releaseInner();
      this.#host.destroy();
      return;
    }
    this.#finSent = true;
    this.#maybeCloseInner();
  }

  /** Both directions finished cleanly: lwIP completes the close by itself. */
  #maybeCloseInner(): void {
    const conn = this.#conn;
    if (!conn || !this.#finSent || !this.#finReceived) return;
    this.#conn = null;
    this.#stack.tcpForget(conn);
    conn.close();
    this.#innerClosed();
  }

  /** Ends the sandbox's side now: gracefully if both directions had finished, otherwise with RST. */
  #releaseInner(): void {
    const conn = this.#conn;
    if (!conn) return;
    this.#conn = null;
    this.#stack.tcpForget(conn);
    if (this.#finSent && this.#finReceived) conn.close();
    else conn.abort();
    this.#innerClosed();
  }

  #innerClosed(): void {
    if (this.#innerDone) return;
    this.#innerDone = true;
    this.#pending = null;
    this.#stack.unref(this);
    this.#maybeFinished();
  }

  #maybeFinished(): void {
    if (this.#closed || !this.#innerDone || !this.#hostClosed) return;
    this.#closed = true;
    this.#onClose();
  }

  /** Ends both sides now (the link went down, the gateway closed): RST where a direction was unfinished. */
  destroy(): void {
    this.#releaseInner();
    this.#host.destroy();
  }
}
