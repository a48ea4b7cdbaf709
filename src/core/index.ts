/**
 * tcpip-ts core: stacks, links and wire formats without Node-only modules.
 *
 * Layers, top to bottom: Stack (sockets, tables) → WasmSession (the lwIP
 * instance) → Link (devices) → wire (formats).
 */
export { Stack, type HeldSyn, type GatewayHandler, type StackOptions, type InterfaceOptions, type Route, type RouteOptions, type Neighbor, type StackStats } from './stack.js';
export { Interface, type InterfaceCounters, type InterfaceEvents } from './interface.js';
export { createCable, createLoopback, LinkEmitter, type Link, type LinkEvents, type LinkCloseReason, type EventedLink, type LinkCapabilities, type Medium, type FrameReceiver, type CableOptions, MIN_MTU, MAX_MTU } from './link.js';
export { ManualClock, realClock, type Clock } from './clock.js';
export { TcpConnection, TcpListener, type TcpHandler } from './tcp.js';
export { UdpEndpoint } from './udp.js';
export { setModuleSource, getModule } from './module.js';
export { capture, type PcapSink, type CaptureOptions } from './capture.js';
export {
  Switch, SwitchPort, MacTable, createSwitch,
  type SwitchOptions, type SwitchPortOptions, type SwitchPortCounters, type SwitchCounters, type MacTableEntry,
} from './switch.js';
export {
  EmulatedLink, emulate,
  type EmulateOptions, type Impairment, type GilbertElliott, type DelayDistribution, type EmulationCounters, type Direction,
} from './emulate.js';
export { VxlanLink, type VxlanLinkOptions, type VxlanRemote, type VxlanTransport, type VxlanCounters, type VxlanFdbEntry } from './vxlan.js';
export { errorCode, ERR, type SystemError } from './errors.js';
export {
  parseIp, formatIp, parsePrefix, formatPrefix, parseMac, formatMac, isIP, prefixContains, ipEquals,
  type IpAddress, type IpPrefix, type Family,
} from '../wire/address.js';
// Types that appear in the signatures above, so users can name them.
export type { Ipv4Config, Ipv6Address, Ipv6State, MibCounters } from './interface.js';
export type { LinkCounters } from './link.js';
export type { ProtocolCounters, TcpLossCounters } from './stack.js';
export type { SocketAddress } from './session.js';
export type { TcpListenerHandler } from './tcp.js';
export type { UdpMessageHandler } from './udp.js';
