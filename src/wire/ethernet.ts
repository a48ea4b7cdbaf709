/**
 * Ethernet II frames (IEEE 802.3 with an EtherType), optionally with one
 * 802.1Q VLAN tag. The FCS is not present: devices strip it.
 */

export const EtherType = {
  IPv4: 0x0800,
  ARP: 0x0806,
  VLAN: 0x8100,
  IPv6: 0x86dd,
} as const;

/** Field offsets of the untagged header. */
export const ETHERNET = {
  DST: 0,
  SRC: 6,
  ETHERTYPE: 12,
  HEADER_LEN: 14,
  /** With an 802.1Q tag: TPID at 12, TCI at 14, the inner EtherType at 16. */
  VLAN_TCI: 14,
  VLAN_ETHERTYPE: 16,
  VLAN_HEADER_LEN: 18,
  MAC_LEN: 6,
} as const;

export const BROADCAST_MAC: Uint8Array = new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);

export interface EthernetFrame {
  dst: Uint8Array;
  src: Uint8Array;
  /** The EtherType of the payload (the inner one when tagged). */
  etherType: number;
  /** 802.1Q tag control information (PCP, DEI, VLAN id), when tagged. */
  vlanTci?: number;
  headerLength: number;
  /** A view into the parsed bytes, including any padding up to 60 bytes. */
  payload: Uint8Array;
}

export interface EthernetHeaderInit {
  dst: Uint8Array;
  src: Uint8Array;
  etherType: number;
  vlanTci?: number;
}

/**
 * Parses an Ethernet II header. Returns null when too short or when the
 * type field is an 802.3 length (< 0x0600), which we do not carry.
 * MAC addresses are copies (they outlive the frame, e.g. in ARP caches);
 * the payload is a view.
 */
export function parseEthernetFrame(bytes: Uint8Array): EthernetFrame | null {
  if (bytes.length < ETHERNET.HEADER_LEN) return null;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let etherType = view.getUint16(ETHERNET.ETHERTYPE);
  let headerLength: number = ETHERNET.HEADER_LEN;
  let vlanTci: number | undefined;
  if (etherType === EtherType.VLAN) {
    if (bytes.length < ETHERNET.VLAN_HEADER_LEN) return null;
    vlanTci = view.getUint16(ETHERNET.VLAN_TCI);
    etherType = view.getUint16(ETHERNET.VLAN_ETHERTYPE);
    headerLength = ETHERNET.VLAN_HEADER_LEN;
  }
  if (etherType < 0x0600) return null; // IEEE 802.3 length field, not an EtherType
  const frame: EthernetFrame = {
    dst: bytes.slice(ETHERNET.DST, ETHERNET.DST + ETHERNET.MAC_LEN),
    src: bytes.slice(ETHERNET.SRC, ETHERNET.SRC + ETHERNET.MAC_LEN),
    etherType,
    headerLength,
    payload: bytes.subarray(headerLength),
  };
  if (vlanTci !== undefined) frame.vlanTci = vlanTci;
  return frame;
}

export function ethernetHeaderLength(init: { vlanTci?: number }): number {
  return init.vlanTci === undefined ? ETHERNET.HEADER_LEN : ETHERNET.VLAN_HEADER_LEN;
}

/** Writes the header at `offset`; returns its length. */
export function emitEthernetHeader(init: EthernetHeaderInit, buf: Uint8Array, offset = 0): number {
  if (init.dst.length !== 6 || init.src.length !== 6) throw new RangeError('MAC addresses must be 6 bytes');
  const hlen = ethernetHeaderLength(init);
  if (offset < 0 || buf.length - offset < hlen) throw new RangeError('buffer too small for the Ethernet header');
  const view = new DataView(buf.buffer, buf.byteOffset + offset, hlen);
  buf.set(init.dst, offset + ETHERNET.DST);
  buf.set(init.src, offset + ETHERNET.SRC);
  if (init.vlanTci === undefined) {
    view.setUint16(ETHERNET.ETHERTYPE, init.etherType);
  } else {
    view.setUint16(ETHERNET.ETHERTYPE, EtherType.VLAN);
    view.setUint16(ETHERNET.VLAN_TCI, init.vlanTci);
    view.setUint16(ETHERNET.VLAN_ETHERTYPE, init.etherType);
  }
  return hlen;
}

/** A new frame: header then payload. No padding to 60 bytes: the device adds it. */
export function buildEthernetFrame(init: EthernetHeaderInit, payload: Uint8Array): Uint8Array {
  const hlen = ethernetHeaderLength(init);
  const out = new Uint8Array(hlen + payload.length);
  emitEthernetHeader(init, out, 0);
  out.set(payload, hlen);
  return out;
}
