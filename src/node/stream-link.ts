/**
 * StreamLink: frames over a byte stream with a 4-byte big-endian length
 * before each frame — QEMU's `-netdev stream` (and `-netdev socket`) framing,
 * over a unix or TCP socket.
 */
import { connect as netConnect, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { checkMedium, checkMtu, ETHERNET_HEADER, type FrameReceiver, type Link, type Medium } from '../core/link.js';
import { invalidOption } from '../core/errors.js';

export interface StreamLinkOptions {
  medium?: Medium;
  mtu?: number;
  /** Bytes the socket may buffer before frames are dropped (counted). Default 8 MiB. */
  maxQueuedBytes?: number;
}

export interface StreamLinkCounters {
  rxFrames: number;
  rxBytes: number;
  txFrames: number;
  txBytes: number;
  /** Frames not sent because the peer was not reading fast enough. */
  txDropped: number;
  /** Length prefixes larger than the link allows: the stream cannot be resynchronised and is closed. */
  rxBadLength: number;
}

const PREFIX = 4;

export class StreamLink implements Link {
  readonly medium: Medium;
  readonly mtu: number;
  readonly counters: StreamLinkCounters = { rxFrames: 0, rxBytes: 0, txFrames: 0, txBytes: 0, txDropped: 0, rxBadLength: 0 };
  #stream: Duplex;
  #receive: FrameReceiver | null = null;
  #maxFrame: number;
  #maxQueued: number;
  #pending: Buffer | null = null;
  #out: Buffer[] = [];
  #outBytes = 0;
  #closed = false;

  constructor(stream: Duplex, options: StreamLinkOptions = {}) {
    if (!stream || typeof stream.write !== 'function') throw invalidOption('stream', 'a Duplex stream', stream);
    this.medium = options.medium ?? 'ethernet';
    this.mtu = options.mtu ?? 1500;
    checkMedium(this.medium, 'medium');
    checkMtu(this.mtu, 'mtu');
    this.#maxQueued = options.maxQueuedBytes ?? 8 * 1024 * 1024;
    this.#maxFrame = this.mtu + (this.medium === 'ethernet' ? ETHERNET_HEADER + 4 : 0);
    this.#stream = stream;
    stream.on('data', (chunk: Buffer) => this.#onData(chunk));
    stream.on('error', () => this.close());
    stream.on('close', () => this.close());
  }

  /** Connects to a unix socket path or a TCP host:port and resolves to the link. */
  static connect(target: { path: string } | { host?: string; port: number }, options: StreamLinkOptions = {}): Promise<StreamLink> {
    return new Promise((resolve, reject) => {
      const socket: Socket = 'path' in target ? netConnect(target.path) : netConnect(target.port, target.host ?? '127.0.0.1');
      socket.setNoDelay(true);
      socket.once('error', reject);
      socket.once('connect', () => {
        socket.off('error', reject);
        resolve(new StreamLink(socket, options));
      });
    });
  }

  attach(receive: FrameReceiver): void {
    this.#receive = receive;
  }

  #onData(chunk: Buffer): void {
    let buf = this.#pending ? Buffer.concat([this.#pending, chunk]) : chunk;
    let off = 0;
    while (buf.length - off >= PREFIX) {
      const len = buf.readUInt32BE(off);
      if (len === 0 || len > this.#maxFrame) {
        this.counters.rxBadLength++;
        this.close();
        return;
      }
      if (buf.length - off - PREFIX < len) break;
      const frame = buf.subarray(off + PREFIX, off + PREFIX + len);
      off += PREFIX + len;
      this.counters.rxFrames++;
      this.counters.rxBytes += len;
      this.#receive?.(frame);
    }
    this.#pending = off < buf.length ? Buffer.from(buf.subarray(off)) : null;
  }

  send(frame: Uint8Array): void {
    if (this.#closed) return;
    if (this.#stream.writableLength + this.#outBytes > this.#maxQueued) {
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
    if (this.#out.length === 0 || this.#closed) return;
    const data = this.#out.length === 1 ? this.#out[0]! : Buffer.concat(this.#out, this.#outBytes);
    this.#out = [];
    this.#outBytes = 0;
    this.#stream.write(data);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#receive = null;
    this.#stream.destroy();
  }
}
