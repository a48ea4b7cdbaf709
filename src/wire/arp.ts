/**
 * ARP for IPv4 over Ethernet (RFC 826). Other hardware or protocol types are
 * not ours to answer and parse as null.
 */

import type { IpAddress } from './address.js';

/** Field offsets for Ethernet/IPv4 (RFC 826, "Packet format"). */
export const ARP = {
  HTYPE: 0,
  PTYPE: 2,
  HLEN: 4,
  PLEN: 5,
  OPER: 6,
  SHA: 8,
  SPA: 14,
  THA: 18,
  TPA: 24,
  PACKET_LEN: 28,
  HTYPE_ETHERNET: 1,
  PTYPE_IPV4: 0x0800,
} as const;

export const ArpOperation = {
  Request: 1,
  Reply: 2,
} as const;

export interface ArpPacket {
  operation: 1 | 2;
  senderMac: Uint8Array;
  senderIp: IpAddress;
  targetMac: Uint8Array;
  targetIp: IpAddress;
}

/**
 * Parses an Ethernet/IPv4 ARP request or reply. Returns null when shorter than
 * 28 bytes, for other hardware or protocol types or lengths, and for other
 * operations (RARP and friends). Trailing bytes (Ethernet padding) are
 * ignored. Addresses are copies.
 */
export function parseArpPacket(bytes: Uint8Array): ArpPacket | null {
  if (bytes.length < ARP.PACKET_LEN) return null;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint16(ARP.HTYPE) !== ARP.HTYPE_ETHERNET) return null;
  if (view.getUint16(ARP.PTYPE) !== ARP.PTYPE_IPV4) return null;
  if (bytes[ARP.HLEN] !== 6 || bytes[ARP.PLEN] !== 4) return null;
  const operation = view.getUint16(ARP.OPER);
  if (operation !== ArpOperation.Request && operation !== ArpOperation.Reply) return null;
  return {
    operation,
    senderMac: bytes.slice(ARP.SHA, ARP.SHA + 6),
    senderIp: { family: 4, bytes: bytes.slice(ARP.SPA, ARP.SPA + 4), zone: 0 },
    targetMac: bytes.slice(ARP.THA, ARP.THA + 6),
    targetIp: { family: 4, bytes: bytes.slice(ARP.TPA, ARP.TPA + 4), zone: 0 },
  };
}

/** Writes the 28-byte packet at `offset`; returns 28. */
export function emitArpPacket(packet: ArpPacket, buf: Uint8Array, offset = 0): number {
  if (packet.senderMac.length !== 6 || packet.targetMac.length !== 6) throw new RangeError('MAC addresses must be 6 bytes');
  if (packet.senderIp.family !== 4 || packet.targetIp.family !== 4) throw new RangeError('ARP carries IPv4 addresses');
  if (offset < 0 || buf.length - offset < ARP.PACKET_LEN) throw new RangeError('buffer too small for an ARP packet');
  const view = new DataView(buf.buffer, buf.byteOffset + offset, ARP.PACKET_LEN);
  view.setUint16(ARP.HTYPE, ARP.HTYPE_ETHERNET);
  view.setUint16(ARP.PTYPE, ARP.PTYPE_IPV4);
  view.setUint8(ARP.HLEN, 6);
  view.setUint8(ARP.PLEN, 4);
  view.setUint16(ARP.OPER, packet.operation);
  buf.set(packet.senderMac, offset + ARP.SHA);
  buf.set(packet.senderIp.bytes, offset + ARP.SPA);
  buf.set(packet.targetMac, offset + ARP.THA);
  buf.set(packet.targetIp.bytes, offset + ARP.TPA);
  return ARP.PACKET_LEN;
}

export function buildArpPacket(packet: ArpPacket): Uint8Array {
  const out = new Uint8Array(ARP.PACKET_LEN);
  emitArpPacket(packet, out, 0);
  return out;
}
