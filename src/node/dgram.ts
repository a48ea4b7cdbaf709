/** UdpSocket: a dgram.Socket-shaped UDP socket on a stack. */
import { EventEmitter } from 'node:events';
import type { Stack } from '../core/stack.js';
import type { UdpEndpoint } from '../core/udp.js';
import { invalidOption, lwipError } from '../core/errors.js';
import { IPV4_ANY, IPV6_ANY, parseIp } from '../wire/address.js';

export interface RemoteInfo {
  address: string;
  family: 'IPv4' | 'IPv6';
  port: number;
  size: number;
}

type SendCallback = (err: Error | null, bytes?: number) => void;

export class UdpSocket extends EventEmitter {
  readonly type: 'udp4' | 'udp6';
  #stack: Stack;
  #ep: UdpEndpoint;
  #bound = false;

  /** The interface the socket is tied to (createSocket's `interface`), or null. */
  readonly interface: string | null;

  constructor(stack: Stack, type: 'udp4' | 'udp6', iface?: { name: string; handle: number }) {
    super();
    this.#stack = stack;
    this.type = type;
    this.#ep = stack.udpOpen(type === 'udp6' ? 6 : 4);
    this.interface = iface?.name ?? null;
    if (iface) this.#ep.bindInterface(iface.handle);
    this.#ep.onMessage = (data, from) => {
      const msg = Buffer.from(data.buffer, data.byteOffset, data.length);
      const rinfo: RemoteInfo = { address: from.address, family: from.family === 6 ? 'IPv6' : 'IPv4', port: from.port, size: data.length };
      this.emit('message', msg, rinfo);
    };
  }

  /** bind(port?, address?, cb?) or bind({ port, address }, cb?) */
  bind(...args: unknown[]): this {
    let cb: (() => void) | undefined;
    if (typeof args[args.length - 1] === 'function') cb = args.pop() as () => void;
    const opts = typeof args[0] === 'object' && args[0] !== null
      ? (args[0] as { port?: number; address?: string })
      : { port: args[0] as number | undefined, address: args[1] as string | undefined };
    const port = opts.port ?? 0;
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw invalidOption('port', 'an integer from 0 to 65535', opts.port);
    // As in Node: no address means 0.0.0.0 for udp4 and :: for udp6, so a
    // udp4 and a udp6 socket can share a port number.
    let address = this.type === 'udp6' ? IPV6_ANY : IPV4_ANY;
    if (opts.address !== undefined) {
      const parsed = parseIp(opts.address);
      if (!parsed) throw invalidOption('address', 'an IP address', opts.address);
      address = parsed;
    }
    if (cb) this.once('listening', cb);
    try {
      this.#ep.bind(address, port);
      this.#bound = true;
      if (!this.#unrefd) this.#stack.ref(this);
    } catch (err) {
      process.nextTick(() => this.emit('error', err));
      return this;
    }
    process.nextTick(() => this.emit('listening'));
    return this;
  }

  address(): { address: string; family: string; port: number } {
    const l = this.#ep.local();
    return { address: l.address, family: l.family === 6 ? 'IPv6' : 'IPv4', port: l.port };
  }

  /** send(msg, port, address, cb?) or send(msg, offset, length, port, address, cb?) */
  send(msg: Uint8Array | string, port: number, address?: string, cb?: SendCallback): void;
  send(msg: Uint8Array | string, offset: number, length: number, port: number, address?: string, cb?: SendCallback): void;
  send(msg: Uint8Array | string, ...args: unknown[]): void {
    let cb: SendCallback | undefined;
    if (typeof args[args.length - 1] === 'function') cb = args.pop() as SendCallback;
    let data = typeof msg === 'string' ? Buffer.from(msg) : msg;
    if (!(data instanceof Uint8Array)) throw invalidOption('msg', 'a Buffer, Uint8Array or string', msg);
    if (args.length >= 4) {
      const [offset, length] = args as [number, number];
      data = data.subarray(offset, offset + length);
      args = args.slice(2);
    }
    const [port, address] = args as [number, string | undefined];
    if (!Number.isInteger(port) || port <= 0 || port > 65535) throw invalidOption('port', 'an integer from 1 to 65535', port);
    const host = address ?? (this.type === 'udp6' ? '::1' : '127.0.0.1');
    const to = parseIp(host);
    if (!to) throw invalidOption('address', 'an IP address', address);
    if (!this.#bound) this.bind();
    const err = this.#ep.send(data, to, port);
    const error = err === 0 ? null : lwipError(err, 'send', host, port);
    if (cb) process.nextTick(() => cb(error, err === 0 ? data.length : undefined));
    else if (error) process.nextTick(() => this.emit('error', error));
  }

  close(cb?: () => void): this {
    if (cb) this.once('close', cb);
    this.#stack.udpClose(this.#ep);
    this.#stack.unref(this);
    process.nextTick(() => this.emit('close'));
    return this;
  }

  /** As dgram.Socket: a bound socket keeps the process alive unless unref'd. */
  ref(): this {
    this.#unrefd = false;
    if (this.#bound) this.#stack.ref(this);
    return this;
  }

  unref(): this {
    this.#unrefd = true;
    this.#stack.unref(this);
    return this;
  }
  #unrefd = false;
}
