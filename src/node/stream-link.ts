/**
 * StreamLink: frames over a byte stream with a 4-byte big-endian length
 * before each frame: QEMU's `-netdev stream` (and `-netdev socket`) framing,
 * which socket_vmnet and Lima speak too, over a unix or TCP socket.
 *
 * Three ways to get one: around a Duplex you already have (`new
 * StreamLink(stream)`: the stream's end is the link's end), as the connecting
 * side (`StreamLink.connect`, for QEMU `server=on`), or as the listening side
 * (`StreamLink.listen`, for QEMU `server=off`), which outlives its peer: when
 * the VM goes it emits 'down' and takes the next connection (the VM
 * restarted), so the stack on it keeps its state.
 */
import { connect as netConnect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { listenReplacingStale } from './listen.js';
import type { Duplex } from 'node:stream';
import { checkMedium, checkMtu, ETHERNET_HEADER, LinkEmitter, type FrameReceiver, type Link, type Medium } from '../core/link.js';
import { invalidOption } from '../core/errors.js';

export interface StreamLinkOptions {
  medium?: Medium;
  mtu?: number;
  /** Bytes the socket may buffer before frames are dropped (counted). Default 8 MiB. */
  maxQueuedBytes?: number;
}

export interface StreamListenOptions extends StreamLinkOptions {
  /**
   * What a connection arriving while a peer is connected does: false
   * (default) refuses it (closed at once, 'error' ERR_LINK_BUSY on the link),
   * true lets it replace the current peer (a runtime that restarts the VM
   * before the old connection is seen to close).
   */
  replace?: boolean;
}

/** Where to connect or listen: a unix socket path, or TCP (host defaults to 127.0.0.1). */
export type StreamTarget = { path: string } | { host?: string; port: number };

export interface StreamLinkCounters {
  rxFrames: number;
  rxBytes: number;
  txFrames: number;
  txBytes: number;
  /** Frames not sent: the peer was not reading fast enough, or there was no peer. */
  txDropped: number;
  /** Length prefixes of 0 or larger than the link allows: the stream cannot be resynchronised, so its peer is dropped. */
  rxBadLength: number;
  /** Listening links: peers taken on. */
  peersAccepted: number;
  /** Listening links: connections refused because a peer was connected. */
  peersRefused: number;
}

const PREFIX = 4;
/** Socket errors that mean the VM went away, not that the link is broken. */
const PEER_GONE = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED']);

function linkError(code: string, message: string): Error & { code: string } {
  return Object.assign(new Error(message), { code });
}

function describe(target: StreamTarget): string {
  return 'path' in target ? target.path : `${target.host ?? '127.0.0.1'}:${target.port}`;
}

function checkTarget(target: unknown, fn: string): StreamTarget {
  if (target === null || typeof target !== 'object') throw invalidOption('target', 'an object { path } or { host, port }', target);
  const t = target as { path?: unknown; host?: unknown; port?: unknown };
  if ('path' in t) {
    if (typeof t.path !== 'string' || t.path === '') throw invalidOption('path', 'a unix socket path', t.path);
    return { path: t.path };
  }
  if (!Number.isInteger(t.port) || (t.port as number) < (fn === 'listen' ? 0 : 1) || (t.port as number) > 65535) {
    throw invalidOption('port', `an integer from ${fn === 'listen' ? 0 : 1} to 65535 (or give path)`, t.port);
  }
  if (t.host !== undefined && (typeof t.host !== 'string' || t.host === '')) throw invalidOption('host', 'a host name or address', t.host);
  return { host: t.host as string | undefined, port: t.port as number };
}

export class StreamLink extends LinkEmitter implements Link {
  readonly medium: Medium;
  readonly mtu: number;
  readonly counters: StreamLinkCounters = {
    rxFrames: 0, rxBytes: 0, txFrames: 0, txBytes: 0, txDropped: 0, rxBadLength: 0, peersAccepted: 0, peersRefused: 0,
  };
  #stream: Duplex | null = null;
  #server: Server | null = null;
  #where = '';
  #replace = false;
  #receive: FrameReceiver | null = null;
  #maxFrame: number;
  #maxQueued: number;
  #pending: Buffer | null = null;
  #out: Buffer[] = [];
  #outBytes = 0;
  #closed = false;

  /** A link over one stream: when the stream ends, the link closes ('close' with reason 'peer'). */
  constructor(stream: Duplex | null, options: StreamLinkOptions = {}) {
    super();
    if (stream !== null && (!stream || typeof stream.write !== 'function')) throw invalidOption('stream', 'a Duplex stream', stream);
    if (options === null || typeof options !== 'object') throw invalidOption('options', 'an object', options);
    this.medium = options.medium ?? 'ethernet';
    this.mtu = options.mtu ?? 1500;
    checkMedium(this.medium, 'medium');
    checkMtu(this.mtu, 'mtu');
    this.#maxQueued = options.maxQueuedBytes ?? 8 * 1024 * 1024;
    if (!Number.isInteger(this.#maxQueued) || this.#maxQueued < 0) throw invalidOption('maxQueuedBytes', 'a non-negative integer', options.maxQueuedBytes);
    this.#maxFrame = this.mtu + (this.medium === 'ethernet' ? ETHERNET_HEADER + 4 : 0);
    if (stream) this.#adopt(stream);
  }

  /**
   * Connects to a unix socket path or a TCP host:port (QEMU `-netdev
   * stream,server=on`) and resolves to the link; rejects with the socket's
   * error (ENOENT, ECONNREFUSED, ...) naming the target.
   */
  static connect(target: StreamTarget, options: StreamLinkOptions = {}): Promise<StreamLink> {
    const t = checkTarget(target, 'connect');
    const link = new StreamLink(null, options); // options checked before any socket exists
    return new Promise((resolve, reject) => {
      const socket: Socket = 'path' in t ? netConnect(t.path) : netConnect(t.port, t.host ?? '127.0.0.1');
      socket.setNoDelay(true);
      socket.once('error', (err: NodeJS.ErrnoException) => {
        reject(Object.assign(new Error(`StreamLink.connect: cannot connect to ${describe(t)}: ${err.message}`), { code: err.code, cause: err }));
      });
      socket.once('connect', () => {
        socket.removeAllListeners('error');
        link.#where = describe(t);
        link.#adopt(socket);
        resolve(link);
      });
    });
  }

  /**
   * Listens at a unix socket path or a TCP port (QEMU `-netdev
   * stream,server=off`, socket_vmnet's clients) and resolves once listening.
   * One peer at a time: the link carries the connected peer's frames, emits
   * 'up' when one connects and 'down' when it goes (the VM exited, or it
   * broke the framing), and then takes the next connection. A stale socket
   * file at `path` (nobody listening) is replaced; a live one is refused
   * with EADDRINUSE, a file that is not a socket with EEXIST. Frames sent while no peer is connected are dropped
   * (counted in txDropped).
   */
  static listen(target: StreamTarget, options: StreamListenOptions = {}): Promise<StreamLink> {
    // Bad options throw here, before anything listens; the rest is asynchronous.
    const t = checkTarget(target, 'listen');
    if (options?.replace !== undefined && typeof options.replace !== 'boolean') throw invalidOption('replace', 'a boolean', options.replace);
    const link = new StreamLink(null, options);
    link.#replace = options.replace ?? false;
    return link.#listen(t);
  }

  async #listen(t: StreamTarget): Promise<StreamLink> {
    const link = this;
    const server = createServer({ noDelay: true }, (socket) => link.#accept(socket));
    link.#server = server;
    link.#where = describe(t);
    try {
      await listenReplacingStale(server, t);
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      link.#server = null;
      link.#closed = true;
      const why = e.code === 'EADDRINUSE' && !('path' in t) ? 'another process listens there' : e.message;
      throw Object.assign(new Error(`StreamLink.listen: cannot listen at ${describe(t)}: ${why}`), { code: e.code, cause: e });
    }
    server.on('error', (err) => link.#fail(err));
    if (!('path' in t)) {
      const a = server.address() as AddressInfo;
      link.#where = `${a.address}:${a.port}`;
    }
    return link;
  }

  /** A listening link's address: the unix path, or { address, family, port } (port 0 resolved). */
  address(): string | AddressInfo | null {
    return this.#server?.address() ?? null;
  }

  /** Whether a peer is connected now. */
  get connected(): boolean {
    return this.#stream !== null;
  }

  #accept(socket: Socket): void {
    if (this.#closed) {
      socket.destroy();
      return;
    }
    if (this.#stream) {
      if (!this.#replace) {
        this.counters.peersRefused++;
        socket.destroy();
        this.emit('error', linkError('ERR_LINK_BUSY',
          `StreamLink at ${this.#where}: refused a second connection while a peer is connected (one peer at a time; the first keeps the link)`));
        return;
      }
      this.#drop(this.#stream, 'peer');
    }
    this.counters.peersAccepted++;
    this.#adopt(socket);
    this.emit('up');
  }

  #adopt(stream: Duplex): void {
    this.#stream = stream;
    this.#pending = null;
    let error: NodeJS.ErrnoException | null = null;
    stream.on('data', (chunk: Buffer) => {
      if (this.#stream === stream) this.#onData(stream, chunk);
    });
    stream.on('error', (err: NodeJS.ErrnoException) => {
      error = err;
    });
    stream.on('close', () => {
      if (this.#stream !== stream) return;
      const peerGone = error === null || PEER_GONE.has(error.code ?? '');
      this.#drop(stream, peerGone ? 'peer' : 'error', peerGone ? undefined : error!);
    });
  }

  /** Lets go of a peer's stream; a one-stream link closes with it. */
  #drop(stream: Duplex, reason: 'peer' | 'error', error?: Error): void {
    if (this.#stream !== stream) return;
    this.#stream = null;
    this.#pending = null;
    this.#out = [];
    this.#outBytes = 0;
    stream.destroy();
    if (this.#server && !this.#closed) {
      if (error) this.emit('error', error);
      this.emit('down', reason, error);
      return;
    }
    this.#closed = true;
    this.#receive = null;
    this.finish(reason, error);
  }

  #fail(err: Error): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#server?.close();
    this.#server = null;
    const stream = this.#stream;
    this.#stream = null;
    stream?.destroy();
    this.#receive = null;
    this.finish('error', err);
  }

  attach(receive: FrameReceiver): void {
    this.#receive = receive;
  }

  #onData(stream: Duplex, chunk: Buffer): void {
    let buf = this.#pending ? Buffer.concat([this.#pending, chunk]) : chunk;
    let off = 0;
    while (buf.length - off >= PREFIX) {
      const len = buf.readUInt32BE(off);
      if (len === 0 || len > this.#maxFrame) {
        // The stream cannot be resynchronised after a bad length: drop the peer.
        this.counters.rxBadLength++;
        this.#drop(stream, 'error', linkError('ERR_LINK_BAD_FRAME',
          `StreamLink at ${this.#where || 'its stream'}: the peer sent a frame length of ${len} bytes (allowed: 1 to ${this.#maxFrame}); the peer was disconnected`));
        return;
      }
      if (buf.length - off - PREFIX < len) break;
      const frame = buf.subarray(off + PREFIX, off + PREFIX + len);
      off += PREFIX + len;
      this.counters.rxFrames++;
      this.counters.rxBytes += len;
      this.#receive?.(frame);
      if (this.#stream !== stream) return; // the receiver closed the link
    }
    this.#pending = off < buf.length ? Buffer.from(buf.subarray(off)) : null;
  }

  send(frame: Uint8Array): void {
    const stream = this.#stream;
    if (this.#closed || !stream || stream.writableLength + this.#outBytes > this.#maxQueued) {
      this.counters.txDropped++;
      return;
    }
    const record = Buffer.allocUnsafe(PREFIX + frame.length);
    record.writeUInt32BE(frame.length, 0);
    record.set(frame, PREFIX);
    this.#out.push(record);
    this.#outBytes += record.length;
    this.counters.txFrames++;
    this.counters.txBytes += frame.length;
  }

  /** Writes the burst as one chunk. */
  flush(): void {
    const stream = this.#stream;
    if (this.#out.length === 0 || this.#closed || !stream) return;
    const data = this.#out.length === 1 ? this.#out[0]! : Buffer.concat(this.#out, this.#outBytes);
    this.#out = [];
    this.#outBytes = 0;
    stream.write(data);
  }

  /** Closes the peer's stream and, for a listening link, the listener (its socket file is removed). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#receive = null;
    this.#server?.close();
    this.#server = null;
    const stream = this.#stream;
    this.#stream = null;
    stream?.destroy();
    this.finish('local');
  }
}
