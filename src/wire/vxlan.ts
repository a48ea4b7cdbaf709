/**
 * The VXLAN header (RFC 7348 section 5): 8 bytes in front of the inner
 * Ethernet frame, inside UDP (IANA port 4789).
 *
 *   flags (8: I = 0x08) | reserved (24) | VNI (24) | reserved (8)
 */

export const VXLAN_PORT = 4789;
export const VXLAN_HEADER = 8;
/** The I flag: the VNI is valid. */
export const VXLAN_FLAG_I = 0x08;
export const MAX_VNI = 0xffffff;
/**
 * What encapsulation adds in front of the inner frame's payload: outer IP,
 * UDP (8), VXLAN (8) and the inner Ethernet header (14). Linux takes the
 * same off the underlay MTU for the device's default.
 */
export const VXLAN_OVERHEAD_IPV4 = 20 + 8 + VXLAN_HEADER + 14;
export const VXLAN_OVERHEAD_IPV6 = 40 + 8 + VXLAN_HEADER + 14;

export interface VxlanPacket {
  vni: number;
  /** The inner Ethernet frame: a view into the parsed bytes. */
  frame: Uint8Array;
}

/**
 * Parses a VXLAN packet (the UDP payload). Null when shorter than the header
 * plus an Ethernet header, or when the I flag is clear (RFC 7348: such
 * packets carry no valid VNI). Reserved bits are ignored, as the RFC asks.
 */
export function parseVxlan(bytes: Uint8Array): VxlanPacket | null {
  if (bytes.length < VXLAN_HEADER + 14) return null;
  if ((bytes[0]! & VXLAN_FLAG_I) === 0) return null;
  return { vni: (bytes[4]! << 16) | (bytes[5]! << 8) | bytes[6]!, frame: bytes.subarray(VXLAN_HEADER) };
}

/** Writes the 8-byte header for `vni` at `offset` (reserved fields zero). */
export function emitVxlanHeader(vni: number, buf: Uint8Array, offset = 0): number {
  if (!Number.isInteger(vni) || vni < 0 || vni > MAX_VNI) throw new RangeError(`VNI must be 0 to ${MAX_VNI}`);
  if (buf.length - offset < VXLAN_HEADER) throw new RangeError('buffer too small for the VXLAN header');
  buf[offset] = VXLAN_FLAG_I;
  buf[offset + 1] = 0;
  buf[offset + 2] = 0;
  buf[offset + 3] = 0;
  buf[offset + 4] = vni >>> 16;
  buf[offset + 5] = (vni >>> 8) & 0xff;
  buf[offset + 6] = vni & 0xff;
  buf[offset + 7] = 0;
  return VXLAN_HEADER;
}

/** A new packet: header then a copy of the frame. */
export function buildVxlan(vni: number, frame: Uint8Array): Uint8Array {
  const out = new Uint8Array(VXLAN_HEADER + frame.length);
  emitVxlanHeader(vni, out, 0);
  out.set(frame, VXLAN_HEADER);
  return out;
}
