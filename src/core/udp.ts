/** UDP endpoints, callback-shaped (the dgram-like socket is in src/node/). */
import type { SocketAddress, WasmSession } from './session.js';
import { lwipError } from './errors.js';
import type { IpAddress } from '../wire/address.js';

export type UdpMessageHandler = (data: Uint8Array, from: SocketAddress) => void;

export class UdpEndpoint {
  onMessage: UdpMessageHandler | null = null;
  #pcb: number;

  constructor(readonly session: WasmSession, pcb: number, readonly id: number) {
    this.#pcb = pcb;
  }

  get open(): boolean {
    return this.#pcb !== 0 && this.session.alive;
  }

  bind(address: IpAddress | null, port: number): SocketAddress {
    const s = this.session;
    s.writeSockaddr(0, address, port);
    const err = s.run((x) => x.tt_udp_bind(this.#pcb));
    if (err !== 0) throw lwipError(err, 'bind', address ? undefined : '0.0.0.0', port);
    return this.local();
  }

  local(): SocketAddress {
    const s = this.session;
    s.run((x) => x.tt_udp_local(this.#pcb));
    return s.readSockaddr(s.sockaddr(0));
  }

  /** Sends one datagram; returns 0 or a negative err_t. */
  send(data: Uint8Array, to: IpAddress, port: number): number {
    const s = this.session;
    const buf = s.scratch(data.length);
    s.u8.set(data, buf);
    s.writeSockaddr(1, to, port);
    return s.run((x) => x.tt_udp_sendto(this.#pcb, buf, data.length));
  }

  /** Ties the endpoint to one interface (handle), or unties it (0). */
  bindInterface(netif: number): void {
    if (this.open) this.session.run((x) => x.tt_udp_bind_netif(this.#pcb, netif));
  }

  close(): void {
    if (!this.open) return;
    const pcb = this.#pcb;
    this.#pcb = 0;
    this.session.run((x) => x.tt_udp_remove(pcb));
  }
}
