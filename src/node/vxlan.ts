/**
 * VXLAN over a host UDP socket (node:dgram), IPv4 or IPv6 underlay: the
 * transport under core's VxlanLink.
 */
import * as dgram from 'node:dgram';
import * as os from 'node:os';
import { invalidOption } from '../core/errors.js';
import { VxlanLink, type VxlanLinkOptions, type VxlanTransport } from '../core/vxlan.js';
import { isIP } from '../wire/address.js';
import { loadNative } from './native.js';
import { VXLAN_OVERHEAD_IPV4, VXLAN_OVERHEAD_IPV6, VXLAN_PORT } from '../wire/vxlan.js';

export interface VxlanOptions extends VxlanLinkOptions {
  /** Address to bind to (the underlay's local address). Default every address of the family. */
  local?: string;
  /** Underlay family, when neither `local` nor a remote says. Default 4. */
  family?: 4 | 6;
  /** MTU of the underlay path; the link's default MTU is this less the encapsulation (50 bytes over IPv4, 70 over IPv6, as Linux). Default 1500. */
  underlayMtu?: number;
  /** Socket buffer sizes in bytes (SO_RCVBUF/SO_SNDBUF; the kernel caps them at net.core.rmem_max/wmem_max). Default 4 MiB. */
  socketBuffer?: number;
  /**
   * Hand runs of equal-sized packets to one VTEP to the kernel in one system
   * call (UDP GSO, Linux 4.18+, through the native addon). Default true
   * where available; falls back to one send per packet when the addon, the
   * kernel or the route (no checksum offload) cannot.
   */
  gso?: boolean;
}

export interface VxlanSocketCounters {
  /** Sends the socket refused (e.g. EHOSTUNREACH); the frames are lost, as on a wire. */
  sendErrors: number;
  lastError: Error | null;
  /** System calls that carried a run of packets (UDP GSO), and the packets they carried. */
  gsoSends: number;
  gsoPackets: number;
  /** Runs sent one packet at a time after a GSO send failed (a full socket buffer, or GSO refused: then `gso` turns false). */
  gsoFallbacks: number;
  /** Whether runs still go out with GSO. */
  gso: boolean;
}

/** The fd under a bound dgram socket (Node keeps its handle behind a symbol; -1 when it is not to be found). */
function socketFd(socket: dgram.Socket): number {
  const state = Object.getOwnPropertySymbols(socket).find((k) => k.description === 'state symbol');
  const fd = (state && (socket as unknown as Record<symbol, { handle?: { fd?: unknown } }>)[state]?.handle?.fd);
  return typeof fd === 'number' && fd >= 0 ? fd : -1;
}

/** errnos that say GSO cannot work here (not a passing condition such as a full buffer). */
const GSO_UNSUPPORTED = new Set([os.constants.errno.EIO, os.constants.errno.EINVAL, os.constants.errno.ENOPROTOOPT, os.constants.errno.EOPNOTSUPP]);

/** A VxlanLink on its own UDP socket. */
export class VxlanSocketLink extends VxlanLink {
  readonly socket: dgram.Socket;
  readonly socketCounters: VxlanSocketCounters;

  /** @internal use openVxlan */
  constructor(socket: dgram.Socket, options: VxlanLinkOptions, socketCounters: VxlanSocketCounters, gso?: () => ((buffer: Uint8Array, length: number, segmentSize: number, address: string, port: number) => number) | null) {
    // Bound on first use: the fd exists once the socket is bound.
    let sendGso: ((buffer: Uint8Array, length: number, segmentSize: number, address: string, port: number) => number) | null | undefined;
    const transport: VxlanTransport = {
      alloc: (n) => Buffer.allocUnsafe(n),
      send: (packet, address, port) => socket.send(packet, port, address, (err) => {
        if (err) {
          socketCounters.sendErrors++;
          socketCounters.lastError = err;
        }
      }),
      ...(gso && {
        sendSegments: (buffer: Uint8Array, length: number, segmentSize: number, address: string, port: number): boolean => {
          if (sendGso === undefined) sendGso = gso();
          const err = sendGso === null ? os.constants.errno.EOPNOTSUPP : address.includes('%') ? os.constants.errno.EAFNOSUPPORT : sendGso(buffer, length, segmentSize, address, port);
          if (err === 0) {
            socketCounters.gsoSends++;
            socketCounters.gsoPackets += Math.ceil(length / segmentSize);
            return true;
          }
          socketCounters.gsoFallbacks++;
          if (GSO_UNSUPPORTED.has(err)) {
            // For good: the link sends one packet at a time from now on.
            socketCounters.gso = false;
            delete transport.sendSegments;
          }
          return false;
        },
      }),
      close: () => socket.close(),
    };
    super(transport, options);
    this.socket = socket;
    this.socketCounters = socketCounters;
    socket.on('message', (msg, rinfo) => this.input(msg, rinfo.address));
  }

  /** The local address and port the socket is bound to. */
  address(): { address: string; port: number; family: string } {
    return this.socket.address();
  }

  /** Keeps (default) or stops the socket keeping the Node process alive. */
  ref(): this {
    this.socket.ref();
    return this;
  }

  unref(): this {
    this.socket.unref();
    return this;
  }
}

/**
 * Opens a VXLAN link: binds a UDP socket (default port 4789) and resolves
 * with a Link that carries Ethernet frames to the remotes and learnt VTEPs.
 * Attach it to a stack (`addInterface({ link })`) or a switch port.
 *
 * @example
 * const link = await openVxlan({ vni: 42, local: '192.0.2.1', remotes: ['192.0.2.2'] });
 * stack.addInterface({ link, ipv4: '10.42.0.2/24' });
 */
export async function openVxlan(options: VxlanOptions): Promise<VxlanSocketLink> {
  if (options === null || typeof options !== 'object') throw invalidOption('options', 'an object', options);
  const { local, family: given, underlayMtu = 1500, socketBuffer = 4 << 20, gso = true, ...rest } = options;
  if (typeof gso !== 'boolean') throw invalidOption('gso', 'a boolean', gso);
  if (local !== undefined && isIP(local) === 0) throw invalidOption('local', 'an IPv4 or IPv6 address', local);
  if (given !== undefined && given !== 4 && given !== 6) throw invalidOption('family', '4 or 6', given);
  const first = rest.remotes?.[0];
  const firstAddress = typeof first === 'string' ? first : first?.address;
  const family = given ?? (local ? isIP(local) : firstAddress && isIP(firstAddress) ? isIP(firstAddress) : 4);
  if (local && isIP(local) !== family) throw invalidOption('local', `an IPv${family} address (the family)`, local);
  for (const r of rest.remotes ?? []) {
    const a = typeof r === 'string' ? r : r?.address;
    if (typeof a !== 'string' || isIP(a) !== family) throw invalidOption('remotes', `IPv${family} addresses, as the underlay's family`, r);
  }
  if (!Number.isInteger(underlayMtu) || underlayMtu < 1280 || underlayMtu > 65535) throw invalidOption('underlayMtu', 'an integer from 1280 to 65535', underlayMtu);
  if (!Number.isInteger(socketBuffer) || socketBuffer < 4096) throw invalidOption('socketBuffer', 'an integer of bytes, 4096 or more', socketBuffer);
  const mtu = rest.mtu ?? underlayMtu - (family === 4 ? VXLAN_OVERHEAD_IPV4 : VXLAN_OVERHEAD_IPV6);
  const port = rest.port ?? VXLAN_PORT;
  const counters: VxlanSocketCounters = { sendErrors: 0, lastError: null, gsoSends: 0, gsoPackets: 0, gsoFallbacks: 0, gso: false };
  const socket = dgram.createSocket({ type: family === 4 ? 'udp4' : 'udp6', ipv6Only: family === 6 });
  const gsoSender = () => {
    let send: NonNullable<ReturnType<typeof loadNative>['udpSendSegments']> | undefined;
    try {
      send = loadNative().udpSendSegments;
    } catch {
      /* no addon: one send per packet */
    }
    const fd = socketFd(socket);
    if (!send || fd < 0) return null;
    return (buffer: Uint8Array, length: number, segmentSize: number, address: string, port: number) => send(fd, buffer, length, segmentSize, address, port);
  };
  // Validates everything before the socket is bound.
  const link = new VxlanSocketLink(socket, { ...rest, port, mtu }, counters, gso && process.platform === 'linux' ? gsoSender : undefined);
  counters.gso = gso && process.platform === 'linux';
  socket.on('error', (err) => {
    counters.sendErrors++;
    counters.lastError = err;
  });
  await new Promise<void>((resolve, reject) => {
    const fail = (err: Error) => reject(err);
    socket.once('error', fail);
    socket.bind({ port, address: local, exclusive: true }, () => {
      socket.off('error', fail);
      resolve();
    });
  });
  try {
    socket.setRecvBufferSize(socketBuffer);
    socket.setSendBufferSize(socketBuffer);
  } catch {
    /* capped or refused: the defaults work, only bursts drop sooner */
  }
  return link;
}
