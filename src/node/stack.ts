/**
 * The Node face of a Stack: net-style TCP (connect, createServer), dgram-style
 * UDP (createSocket) and an http.Agent whose connections go through the stack.
 */
import { Agent, type AgentOptions, type ClientRequestArgs } from 'node:http';
import type { Duplex } from 'node:stream';
import { Stack as CoreStack, type StackOptions } from '../core/stack.js';
import { invalidOption, systemError } from '../core/errors.js';
import { parseIp, type IpAddress } from '../wire/address.js';
import { TcpSocket } from './socket.js';
import { TcpServer, type TcpServerOptions } from './server.js';
import { UdpSocket } from './dgram.js';

export interface ConnectOptions {
  port: number;
  host?: string;
  localAddress?: string;
  localPort?: number;
  family?: 4 | 6;
  allowHalfOpen?: boolean;
  noDelay?: boolean;
  keepAlive?: boolean;
  keepAliveInitialDelay?: number;
  readableHighWaterMark?: number;
  writableHighWaterMark?: number;
}

function normalizeConnectArgs(args: unknown[]): [ConnectOptions, (() => void) | undefined] {
  let cb: (() => void) | undefined;
  if (typeof args[args.length - 1] === 'function') cb = args.pop() as () => void;
  if (typeof args[0] === 'object' && args[0] !== null) return [args[0] as ConnectOptions, cb];
  return [{ port: args[0] as number, host: args[1] as string | undefined }, cb];
}

export class Stack extends CoreStack {
  /** connect(port, host?, cb?) or connect(options, cb?): a connecting TcpSocket. */
  connect(...args: unknown[]): TcpSocket {
    const [options, cb] = normalizeConnectArgs(args);
    return this.createConnection(options, cb);
  }

  createConnection(options: ConnectOptions, cb?: () => void): TcpSocket {
    if (options === null || typeof options !== 'object') throw invalidOption('options', 'an object', options);
    const port = Number(options.port);
    if (!Number.isInteger(port) || port <= 0 || port > 65535) throw invalidOption('port', 'an integer from 1 to 65535', options.port);
    const host = options.host ?? 'localhost';
    if (typeof host !== 'string') throw invalidOption('host', 'a string', host);
    let local: { address?: IpAddress; port?: number } | undefined;
    if (options.localAddress !== undefined || options.localPort !== undefined) {
      const address = options.localAddress === undefined ? undefined : parseIp(options.localAddress) ?? undefined;
      if (options.localAddress !== undefined && !address) throw invalidOption('localAddress', 'an IP address', options.localAddress);
      if (options.localPort !== undefined && (!Number.isInteger(options.localPort) || options.localPort < 0 || options.localPort > 65535)) {
        throw invalidOption('localPort', 'an integer from 0 to 65535', options.localPort);
      }
      local = { address, port: options.localPort };
    }
    const socket = new TcpSocket(this, options);
    if (cb) socket.once('connect', cb);
    if (options.noDelay) socket.setNoDelay(true);
    if (options.keepAlive) socket.setKeepAlive(true, options.keepAliveInitialDelay);
    const start = (ip: IpAddress) => {
      try {
        socket._attach(this.tcpConnect(ip, port, local), false);
      } catch (err) {
        socket.destroy(err as Error);
      }
    };
    const literal = parseIp(host);
    if (literal) {
      // Errors reach the caller asynchronously, after it could add listeners.
      process.nextTick(() => start(literal));
    } else if (host === 'localhost') {
      process.nextTick(() => socket.destroy(systemError('ECONNREFUSED', 'connect', host, port)));
    } else {
      this.resolve(host, { family: options.family }).then(
        (addrs) => start(parseIp(addrs[0]!)!),
        (err: Error) => socket.destroy(err),
      );
    }
    return socket;
  }

  createServer(options?: TcpServerOptions | ((socket: TcpSocket) => void), onConnection?: (socket: TcpSocket) => void): TcpServer {
    if (typeof options === 'function') return new TcpServer(this, {}, options);
    return new TcpServer(this, options ?? {}, onConnection);
  }

  /**
   * createSocket('udp4' | 'udp6', onMessage?) or createSocket({ type, interface? }, onMessage?).
   * `interface` (a name such as 'eth0') ties the socket to that interface:
   * it sends there without a route lookup (limited broadcast included) and
   * hears only what arrives there.
   */
  createSocket(type: 'udp4' | 'udp6' | { type: 'udp4' | 'udp6'; interface?: string }, onMessage?: (msg: Buffer, rinfo: unknown) => void): UdpSocket {
    const t = typeof type === 'object' && type !== null ? type.type : type;
    if (t !== 'udp4' && t !== 'udp6') throw invalidOption('type', "'udp4' or 'udp6'", t);
    let iface: { name: string; handle: number } | undefined;
    if (typeof type === 'object' && type !== null && type.interface !== undefined) {
      const found = this.interfaces.find((i) => i.name === type.interface);
      if (!found) throw invalidOption('interface', 'the name of an interface of this stack', type.interface);
      iface = found;
    }
    const socket = new UdpSocket(this, t, iface);
    if (onMessage) socket.on('message', onMessage);
    return socket;
  }

  /** An http.Agent whose requests connect through this stack. */
  httpAgent(options?: AgentOptions): Agent {
    const stack = this;
    class StackAgent extends Agent {
      override createConnection(opts: ClientRequestArgs): Duplex {
        return stack.connect({ port: Number(opts.port ?? 80), host: opts.hostname ?? opts.host ?? 'localhost' });
      }
    }
    return new StackAgent(options);
  }
}

export function createStack(options?: StackOptions): Stack {
  return new Stack(options);
}
