/**
 * tcpip-ts: userspace TCP/IP stacks for sandboxes — lwIP in WebAssembly, one
 * isolated instance per stack, with Node's net/dgram/http shapes on top.
 */
import './node/load.js';

export { Stack, createStack, type ConnectOptions } from './node/stack.js';
export { TcpSocket, type TcpSocketOptions } from './node/socket.js';
export { TcpServer, type ListenOptions, type TcpServerOptions } from './node/server.js';
export { UdpSocket, type RemoteInfo } from './node/dgram.js';
export {
  DeviceLink, openTap, openTun, openUnixDgram, openVmnet,
  type DeviceLinkCounters, type TapOptions, type UnixDgramOptions, type VmnetLinkOptions,
} from './node/links.js';
export { StreamLink, type StreamLinkOptions, type StreamListenOptions, type StreamTarget, type StreamLinkCounters } from './node/stream-link.js';
export { pcapFile } from './node/pcap.js';
export { openVxlan, VxlanSocketLink, type VxlanOptions, type VxlanSocketCounters } from './node/vxlan.js';
export { loadNative } from './node/native.js';
export { confine } from './node/confine.js';
export {
  Gateway, createGateway, parseForward, type GatewayOptions, type GatewayMetrics, type FlowInfo, type Forward, type ForwardOptions,
} from './gateway/gateway.js';
export { DnsForwarder, type DnsForwarderOptions } from './gateway/dns-server.js';
export { DhcpServer } from './gateway/dhcp-server.js';
export { EgressPolicy, type EgressPolicyOptions } from './gateway/policy.js';
export {
  Interface, createCable, createLoopback, ManualClock, realClock, errorCode, ERR, MIN_MTU, MAX_MTU,
  type StackOptions, type InterfaceOptions, type Route, type RouteOptions, type Neighbor, type StackStats,
  type InterfaceCounters, type InterfaceEvents, type Link, type LinkEvents, type LinkCloseReason, type EventedLink, LinkEmitter, type Medium, type FrameReceiver, type CableOptions, type Clock, type SystemError,
  capture, type PcapSink, type CaptureOptions,
  Switch, SwitchPort, MacTable, createSwitch,
  type SwitchOptions, type SwitchPortOptions, type SwitchPortCounters, type SwitchCounters, type MacTableEntry,
  EmulatedLink, emulate,
  VxlanLink, type VxlanLinkOptions, type VxlanRemote, type VxlanTransport, type VxlanCounters, type VxlanFdbEntry,
  type EmulateOptions, type Impairment, type GilbertElliott, type DelayDistribution, type EmulationCounters, type Direction,
  parseIp, formatIp, parsePrefix, formatPrefix, parseMac, formatMac, isIP, prefixContains, ipEquals,
  type IpAddress, type IpPrefix, type Family,
} from './core/index.js';
// Types that appear in the signatures above, so users can name them.
export type {
  Ipv4Config, Ipv6Address, Ipv6State, MibCounters, LinkCounters, ProtocolCounters, TcpLossCounters,
} from './core/index.js';
export type { NativeAddon, NativeConfinement, SandboxReport, FrameDeviceStats, VmnetMode } from './node/native.js';
export type { GatewayIPv6, GatewayIPv6Options } from './gateway/gateway.js';
export { AutoForwarder } from './gateway/forwards.js';
export type { AutoForwardEvent, AutoForwardOptions, Listening, ListeningSource } from './gateway/forwards.js';
export type { DhcpLease, DhcpServerOptions, DhcpServerStats } from './gateway/dhcp-server.js';
export type { DnsForwarderCounters, LearningPolicy, UpstreamResolver } from './gateway/dns-server.js';
export type { DecisionReason, Flow, PolicyAction, PolicyCounters, PolicyDecision, PolicyProtocol, PolicyRule, PolicyRuleInit } from './gateway/policy.js';
