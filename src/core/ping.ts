/** ICMP echo framing for Stack.ping, over the wire formats. */
import { buildEchoRequest as buildEcho, parseEcho } from '../wire/icmp.js';
import { parseIPv4Packet } from '../wire/ipv4.js';
import { parseIPv6Packet } from '../wire/ipv6.js';
import type { Family } from '../wire/address.js';

const ICMP = 1;
const ICMPV6 = 58;

/** An echo request body for a raw ICMP socket (ICMPv6's checksum is lwIP's). */
export function buildEchoRequest(family: Family, id: number, seq: number, payload: Uint8Array): Uint8Array {
  return buildEcho({ family, id, seq, payload });
}

/** The id and sequence of an echo reply inside an IP packet, or null. */
export function parseEchoReply(packet: Uint8Array, family: Family): { id: number; seq: number } | null {
  let icmp: Uint8Array;
  if (family === 4) {
    const ip = parseIPv4Packet(packet);
    if (!ip || ip.protocol !== ICMP || ip.fragmentOffset !== 0) return null;
    icmp = ip.payload;
  } else {
    const ip = parseIPv6Packet(packet);
    if (!ip || ip.upperProtocol !== ICMPV6 || ip.fragment) return null;
    icmp = ip.upperPayload;
  }
  const echo = parseEcho(icmp, { family });
  return echo && echo.kind === 'reply' ? { id: echo.id, seq: echo.seq } : null;
}
