/** TcpServer: a net.Server-shaped listener on a stack. */
import { EventEmitter } from 'node:events';
import type { Stack } from '../core/stack.js';
import type { TcpListener } from '../core/tcp.js';
import { invalidOption } from '../core/errors.js';
import { parseIp } from '../wire/address.js';
import { TcpSocket, type TcpSocketOptions } from './socket.js';

export interface ListenOptions {
  port?: number;
  host?: string;
  backlog?: number;
}

export interface TcpServerOptions extends TcpSocketOptions {
  pauseOnConnect?: boolean;
}

export class TcpServer extends EventEmitter {
  #stack: Stack;
  #listener: TcpListener | null = null;
  #sockets = new Set<TcpSocket>();
  #options: TcpServerOptions;
  #closing = false;

  constructor(stack: Stack, options: TcpServerOptions = {}, onConnection?: (socket: TcpSocket) => void) {
    super();
    this.#stack = stack;
    this.#options = options;
    if (onConnection) this.on('connection', onConnection);
  }

  get listening(): boolean {
    return this.#listener !== null;
  }

  /** listen(port?, host?, backlog?, cb?) or listen({ port, host, backlog }, cb?) */
  listen(...args: unknown[]): this {
    let cb: (() => void) | undefined;
    if (typeof args[args.length - 1] === 'function') cb = args.pop() as () => void;
    let opts: ListenOptions;
    if (typeof args[0] === 'object' && args[0] !== null) opts = args[0] as ListenOptions;
    else opts = { port: args[0] as number | undefined, host: args[1] as string | undefined, backlog: args[2] as number | undefined };
    const port = opts.port === undefined || opts.port === null ? 0 : Number(opts.port);
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw invalidOption('port', 'an integer from 0 to 65535', opts.port);
    let address = null;
    if (opts.host !== undefined && opts.host !== null && opts.host !== '' && opts.host !== '::' ) {
      address = parseIp(opts.host);
      if (!address) throw invalidOption('host', 'an IP address of the stack', opts.host);
    }
    // Node takes any count here; the stack holds at most min(backlog, 255)
    // half-open connections per listener and answers more with SYN cookies.
    const backlog = opts.backlog ?? 511;
    if (!Number.isInteger(backlog) || backlog < 0) throw invalidOption('backlog', 'a non-negative integer', opts.backlog);
    if (this.#listener) throw Object.assign(new Error('Listen method has been called more than once without closing.'), { code: 'ERR_SERVER_ALREADY_LISTEN' });
    if (cb) this.once('listening', cb);
    try {
      this.#listener = this.#stack.tcpListen(address, port, backlog);
    } catch (err) {
      process.nextTick(() => this.emit('error', err));
      return this;
    }
    this.#closing = false;
    if (!this.#unrefd) this.#stack.ref(this);
    this.#listener.handler = {
      connection: (conn) => {
        const socket = new TcpSocket(this.#stack, this.#options);
        socket._attach(conn, true);
        this.#sockets.add(socket);
        socket.once('close', () => {
          this.#sockets.delete(socket);
          this.#maybeClosed();
        });
        if (this.#options.pauseOnConnect) socket.pause();
        this.emit('connection', socket);
      },
    };
    process.nextTick(() => this.emit('listening'));
    return this;
  }

  address(): { address: string; family: string; port: number } | null {
    if (!this.#listener) return null;
    const l = this.#listener.local;
    return { address: l.address, family: l.family === 6 || l.address === '::' ? 'IPv6' : 'IPv4', port: l.port };
  }

  /** Stops accepting; cb runs once every accepted connection has closed. */
  close(cb?: (err?: Error) => void): this {
    if (!this.#listener) {
      if (cb) process.nextTick(() => cb(Object.assign(new Error('Server is not running.'), { code: 'ERR_SERVER_NOT_RUNNING' })));
      return this;
    }
    if (cb) this.once('close', cb);
    this.#stack.tcpUnlisten(this.#listener);
    this.#stack.unref(this);
    this.#listener = null;
    this.#closing = true;
    this.#maybeClosed();
    return this;
  }

  #maybeClosed(): void {
    if (this.#closing && this.#sockets.size === 0) {
      this.#closing = false;
      process.nextTick(() => this.emit('close'));
    }
  }

  getConnections(cb: (err: Error | null, count: number) => void): this {
    process.nextTick(() => cb(null, this.#sockets.size));
    return this;
  }

  /** As net.Server: a listening server keeps the process alive unless unref'd. */
  ref(): this {
    this.#unrefd = false;
    if (this.#listener) this.#stack.ref(this);
    return this;
  }

  unref(): this {
    this.#unrefd = true;
    this.#stack.unref(this);
    return this;
  }
  #unrefd = false;
}
