/**
 * Links for watching and forging what a stack says on the wire: a tap that
 * wraps any IP-medium link and keeps a parsed copy of every packet each way,
 * and a probe link with no peer, into which a test injects packets and whose
 * output it reads.
 */
import type { FrameReceiver, Link } from '../../src/core/link.js';
import { IpProtocol, parseIPv4Packet, type IPv4Packet } from '../../src/wire/ipv4.js';
import { parseIPv6Packet, type IPv6Packet } from '../../src/wire/ipv6.js';
import { parseTcpSegment, type TcpSegment } from '../../src/wire/tcp.js';

export interface TappedPacket {
  /** 'out': sent by the stack the link is added to; 'in': received by it. */
  dir: 'out' | 'in';
  bytes: Uint8Array;
  v4?: IPv4Packet;
  v6?: IPv6Packet;
  /** The TCP segment, for unfragmented TCP packets. */
  tcp?: TcpSegment;
}

export function parsePacket(dir: 'out' | 'in', frame: Uint8Array): TappedPacket {
  const bytes = Uint8Array.from(frame);
  const packet: TappedPacket = { dir, bytes };
  if (bytes[0]! >> 4 === 4) {
    const v4 = parseIPv4Packet(bytes);
    if (v4) {
      packet.v4 = v4;
      if (v4.protocol === IpProtocol.TCP && !v4.moreFragments && v4.fragmentOffset === 0) packet.tcp = parseTcpSegment(v4.payload) ?? undefined;
    }
  } else if (bytes[0]! >> 4 === 6) {
    const v6 = parseIPv6Packet(bytes);
    if (v6) {
      packet.v6 = v6;
      if (v6.upperProtocol === IpProtocol.TCP && !v6.fragment) packet.tcp = parseTcpSegment(v6.upperPayload) ?? undefined;
    }
  }
  return packet;
}

/**
 * Wraps an IP-medium link: every packet is forwarded unchanged and kept in
 * `packets`. `inject` delivers a forged or replayed packet to the stack as if
 * it came from the link (kept as 'in' too).
 */
export function tap(link: Link): Link & { packets: TappedPacket[]; inject(packet: Uint8Array): void } {
  if (link.medium !== 'ip') throw new TypeError('tap() takes an IP-medium link');
  const packets: TappedPacket[] = [];
  let deliver: FrameReceiver | null = null;
  return {
    medium: link.medium,
    mtu: link.mtu,
    packets,
    attach(receive: FrameReceiver) {
      deliver = (frame) => {
        packets.push(parsePacket('in', frame));
        receive(frame);
      };
      link.attach(deliver);
    },
    inject(packet: Uint8Array) {
      if (!deliver) throw new Error('tap not attached');
      deliver(packet);
    },
    send(frame: Uint8Array) {
      packets.push(parsePacket('out', frame));
      link.send(frame);
    },
    flush: () => link.flush?.(),
    close: () => link.close(),
  };
}

/** An IP-medium link with nobody at the other end: `inject` delivers a packet to the stack, `sent` is what it sent. */
export function probeLink(mtu = 1500): Link & { sent: TappedPacket[]; inject(packet: Uint8Array): void } {
  let receive: FrameReceiver | null = null;
  const sent: TappedPacket[] = [];
  return {
    medium: 'ip',
    mtu,
    sent,
    attach(r: FrameReceiver) {
      receive = r;
    },
    send(frame: Uint8Array) {
      sent.push(parsePacket('out', frame));
    },
    close() {
      receive = null;
    },
    inject(packet: Uint8Array) {
      if (!receive) throw new Error('probe link not attached');
      receive(packet);
    },
  };
}
