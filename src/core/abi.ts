/**
 * The wasm boundary, declared once: what wasm/src/*.c exports and imports.
 *
 * Handles are pointers into the instance's memory (numbers); buffers are
 * (pointer, length) pairs; addresses travel through the sockaddr scratch
 * area (see SOCKADDR_*). A contract test instantiates the module and checks
 * that its exports and imports are exactly the ones listed here, with these
 * parameter counts.
 */

type Ptr = number;
type Handle = number;

export interface WasmExports {
  memory: WebAssembly.Memory;
  __heap_base: WebAssembly.Global;
  /** seed: 32 bytes from the host's CSPRNG, keying ISNs and LWIP_RAND (wasm/src/glue_random.c). */
  tt_init(arpMaxAgeSeconds: number, seed: Ptr): void;
  tt_sockaddr_scratch(): Ptr;
  tt_malloc(n: number): Ptr;
  tt_free(p: Ptr): void;
  tt_heap_used(): number;
  tt_check_timeouts(): number;
  tt_debug_trap(): void;
  tt_debug_assert(): void;
  tt_debug_siphash(key: Ptr, data: Ptr, len: number, out: Ptr): void;
  // interfaces
  tt_netif_add(medium: number, mtu: number, mac: Ptr): Handle;
  tt_netif_remove(netif: Handle): void;
  tt_netif_index(netif: Handle): number;
  tt_netif_set_up(netif: Handle, up: number): void;
  tt_netif_set_link_up(netif: Handle, up: number): void;
  tt_netif_set_ip4(netif: Handle, addr: number, mask: number, gw: number): void;
  tt_netif_add_ip6(netif: Handle): number;
  tt_netif_set_ip6_autoconfig(netif: Handle, on: number): void;
  tt_netif_dhcp_start(netif: Handle): number;
  tt_netif_dhcp_stop(netif: Handle): void;
  tt_netif_set_checksums(netif: Handle, flags: number): void;
  tt_netif_set_offloads(netif: Handle, flags: number): void;
  tt_netif_addresses(netif: Handle, out: Ptr): void;
  tt_netif_counters(netif: Handle, out: Ptr): void;
  tt_rx_alloc(netif: Handle, len: number): Ptr;
  /** Feeds at most budget queued frames to lwIP; returns how many are still queued. */
  tt_rx_flush(budget: number): number;
  /** Frames queued for input on netif. */
  tt_rx_queued(netif: Handle): number;
  tt_rx_reserve(n: number, size: number, out: Ptr): number;
  tt_rx_commit(netif: Handle, pbufs: Ptr, lengths: Ptr, count: number): number;
  tt_rx_release(pbufs: Ptr, count: number): void;
  // neighbours, routes, counters
  tt_arp_entry(i: number, out: Ptr): number;
  tt_arp_add_static(ip: number, mac: Ptr): number;
  tt_arp_remove(ip: number): number;
  tt_arp_flush(netif: Handle): void;
  tt_nd6_entry(i: number, out: Ptr): number;
  tt_nd6_remove(): number;
  tt_nd6_flush(netif: Handle): void;
  tt_route_add(prefixLength: number, netif: Handle, metric: number): number;
  tt_route_remove(prefixLength: number, netif: Handle): number;
  tt_route_remove_netif(netif: Handle): void;
  tt_route_entry(i: number, out: Ptr): number;
  tt_set_forwarding(on: number): void;
  tt_stats(out: Ptr): void;
  // TCP
  tt_tcp_new(family: number): Handle;
  tt_tcp_attach(pcb: Handle, id: number): void;
  tt_tcp_bind(pcb: Handle): number;
  tt_tcp_listen(pcb: Handle, id: number, backlog: number): number;
  tt_tcp_connect(pcb: Handle): number;
  tt_tcp_write(pcb: Handle, data: Ptr, len: number, more: number): number;
  tt_tcp_output(pcb: Handle): number;
  tt_tcp_sndbuf(pcb: Handle): number;
  tt_tcp_recved(pcb: Handle, len: number): void;
  tt_tcp_shutdown_write(pcb: Handle): number;
  tt_tcp_close(pcb: Handle): number;
  tt_tcp_abort(pcb: Handle): void;
  tt_tcp_addresses(pcb: Handle): void;
  tt_tcp_set_nodelay(pcb: Handle, on: number): void;
  tt_tcp_set_keepalive(pcb: Handle, on: number, idleMs: number, intervalMs: number, count: number): void;
  tt_tcp_state(pcb: Handle): number;
  /** SYN cookies: 0 sent, 1 accepted (completed a connection), 2 rejected (an ACK to a listener without a valid one). */
  tt_syncookie_counter(which: number): number;
  // memory budget (malloc.c)
  tt_mem_set_budget(bytes: number): void;
  /** Bytes in live allocations. */
  tt_mem_in_use(): number;
  /** 1 while optional allocations (writes, datagrams, new connections) are refused. */
  tt_mem_tight(): number;
  /** 0 NewReno, 1 CUBIC, for connections made from now on (lwIP's tcp_loss.c). */
  tt_tcp_set_cc(cc: number): void;
  /** Writes 6 u32s: timeouts, recoveries, retransmits, probes, sacked, reneged. */
  tt_tcp_loss_stats(out: Ptr): void;
  /** TIME-WAIT connections a new SYN reopened (RFC 6191, tcp_timewait.c). */
  tt_tcp_timewait_reopened(): number;
  // UDP and raw
  tt_udp_new(family: number, id: number): Handle;
  tt_udp_bind(pcb: Handle): number;
  tt_udp_local(pcb: Handle): void;
  tt_udp_sendto(pcb: Handle, data: Ptr, len: number): number;
  tt_udp_remove(pcb: Handle): void;
  tt_udp_bind_netif(pcb: Handle, netif: Handle): void;
  tt_raw_new(family: number, proto: number, id: number): Handle;
  tt_raw_sendto(pcb: Handle, data: Ptr, len: number): number;
  tt_raw_remove(pcb: Handle): void;
  // gateway mode
  tt_gw_set(netif: Handle, on: number): number;
  tt_gw_tcp_accept(syn: Handle, listenerId: number): number;
  tt_gw_tcp_reject(syn: Handle, how: number): void;
  tt_gw_udp_send(netif: Handle, data: Ptr, len: number): number;
  tt_gw_proxy_arp(ip: number): number;
  tt_gw_ip_send(netif: Handle, data: Ptr, len: number, protocol: number, hopLimit: number): number;
  tt_gw_tcp_bind_foreign(pcb: Handle): number;
  // DNS
  tt_dns_set_server(i: number): void;
  tt_dns_get_server(i: number): void;
  tt_dns_lookup(name: Ptr, id: number, family: number): number;
}

/** Parameter count of every exported function (checked by the contract test). */
export const EXPORT_ARITY: { readonly [K in Exclude<keyof WasmExports, 'memory' | '__heap_base'>]: number } = {
  tt_init: 2, tt_sockaddr_scratch: 0, tt_malloc: 1, tt_free: 1, tt_heap_used: 0, tt_check_timeouts: 0,
  tt_debug_trap: 0, tt_debug_assert: 0, tt_debug_siphash: 4,
  tt_netif_add: 3, tt_netif_remove: 1, tt_netif_index: 1, tt_netif_set_up: 2, tt_netif_set_link_up: 2, tt_netif_set_ip4: 4,
  tt_netif_add_ip6: 1, tt_netif_set_ip6_autoconfig: 2, tt_netif_dhcp_start: 1, tt_netif_dhcp_stop: 1,
  tt_netif_set_checksums: 2, tt_netif_set_offloads: 2, tt_netif_addresses: 2, tt_netif_counters: 2, tt_rx_alloc: 2, tt_rx_flush: 1, tt_rx_queued: 1,
  tt_rx_reserve: 3, tt_rx_commit: 4, tt_rx_release: 2,
  tt_arp_entry: 2, tt_arp_add_static: 2, tt_arp_remove: 1, tt_arp_flush: 1,
  tt_nd6_entry: 2, tt_nd6_remove: 0, tt_nd6_flush: 1,
  tt_route_add: 3, tt_route_remove: 2, tt_route_remove_netif: 1, tt_route_entry: 2, tt_set_forwarding: 1,
  tt_stats: 1,
  tt_tcp_new: 1, tt_tcp_attach: 2, tt_tcp_bind: 1, tt_tcp_listen: 3, tt_tcp_connect: 1, tt_tcp_write: 4,
  tt_tcp_output: 1, tt_tcp_sndbuf: 1, tt_tcp_recved: 2, tt_tcp_shutdown_write: 1, tt_tcp_close: 1,
  tt_tcp_abort: 1, tt_tcp_addresses: 1, tt_tcp_set_nodelay: 2, tt_tcp_set_keepalive: 5, tt_tcp_state: 1,
  tt_syncookie_counter: 1, tt_mem_set_budget: 1, tt_mem_in_use: 0, tt_mem_tight: 0,
  tt_tcp_set_cc: 1, tt_tcp_loss_stats: 1, tt_tcp_timewait_reopened: 0,
  tt_udp_new: 2, tt_udp_bind: 1, tt_udp_local: 1, tt_udp_sendto: 3, tt_udp_remove: 1, tt_udp_bind_netif: 2,
  tt_raw_new: 3, tt_raw_sendto: 3, tt_raw_remove: 1,
  tt_dns_set_server: 1, tt_dns_get_server: 1, tt_dns_lookup: 3,
  tt_gw_set: 2, tt_gw_tcp_accept: 2, tt_gw_tcp_reject: 2, tt_gw_udp_send: 3, tt_gw_proxy_arp: 1,
  tt_gw_ip_send: 5, tt_gw_tcp_bind_foreign: 1,
};

/** What the module imports from the host (module "tcpip"). No import may throw. */
export interface WasmImports {
  /** The stack's clock in whole milliseconds (lwIP's sys_now). */
  now(): number;
  /** The same clock in 4 µs ticks, modulo 2^32: RFC 6528's ISN timer. */
  now_4us(): number;
  assert_failed(message: Ptr, line: number, file: Ptr): void;
  link_output(netif: Handle, frame: Ptr, len: number): void;
  netif_status(netif: Handle): void;
  tcp_accept(listenerId: number, pcb: Handle): number;
  tcp_connected(id: number): void;
  tcp_recv(id: number, data: Ptr, len: number): void;
  tcp_fin(id: number): void;
  tcp_sent(id: number, len: number): void;
  tcp_error(id: number, err: number): void;
  udp_recv(id: number, data: Ptr, len: number, from: Ptr): void;
  raw_recv(id: number, packet: Ptr, len: number, from: Ptr): number;
  dns_found(id: number, addr: Ptr): void;
  gw_tcp_syn(netif: Handle, syn: Handle, from: Ptr, to: Ptr): void;
  gw_udp(netif: Handle, data: Ptr, len: number, from: Ptr, to: Ptr): void;
  gw_icmp(netif: Handle, packet: Ptr, len: number): void;
}

export const IMPORT_ARITY: { readonly [K in keyof WasmImports]: number } = {
  now: 0, now_4us: 0, assert_failed: 3, link_output: 3, netif_status: 1, tcp_accept: 2, tcp_connected: 1,
  tcp_recv: 3, tcp_fin: 1, tcp_sent: 2, tcp_error: 2, udp_recv: 4, raw_recv: 4, dns_found: 2,
  gw_tcp_syn: 4, gw_udp: 5, gw_icmp: 3,
};

/** struct tt_sockaddr: family u8, zone u8, port u16 (little-endian), 16 address bytes. */
export const SOCKADDR_SIZE = 20;
export const SOCKADDR_FAMILY = 0;
export const SOCKADDR_ZONE = 1;
export const SOCKADDR_PORT = 2;
export const SOCKADDR_ADDR = 4;

export const MEDIUM_ETHERNET = 0;
export const MEDIUM_IP = 1;

/** lwIP's TCP states (tcpbase.h enum tcp_state). */
export const TCP_STATE = ['CLOSED', 'LISTEN', 'SYN_SENT', 'SYN_RCVD', 'ESTABLISHED', 'FIN_WAIT_1', 'FIN_WAIT_2',
  'CLOSE_WAIT', 'CLOSING', 'LAST_ACK', 'TIME_WAIT'] as const;

/** NETIF_CHECKSUM_* bits (netif.h): generate/check per protocol. */
export const NETIF_CHECKSUM_ENABLE_ALL = 0xffff;
export const NETIF_CHECKSUM_DISABLE_ALL = 0x0000;
/** tt_netif_set_offloads bits (glue_netif.c). */
export const OFFLOAD_CSUM = 1;
export const OFFLOAD_TSO = 2;
