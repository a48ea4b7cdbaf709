/**
 * 802.1Q tags on Ethernet frames, as a switch adds and removes them at its
 * access ports: pure byte operations, each returning a new frame (the input
 * is a view the caller does not own).
 */
import { ETHERNET, EtherType } from './ethernet.js';

export const VLAN_TAG_LEN = 4;
/** VIDs 0 (priority tag: no VLAN) and 4095 are reserved (IEEE 802.1Q 9.6). */
export const MIN_VID = 1;
export const MAX_VID = 4094;

/** The tag control information of a tagged frame, or -1 when untagged (or too short). */
export function vlanTci(frame: Uint8Array): number {
  if (frame.length < ETHERNET.VLAN_HEADER_LEN) return -1;
  if (((frame[ETHERNET.ETHERTYPE]! << 8) | frame[ETHERNET.ETHERTYPE + 1]!) !== EtherType.VLAN) return -1;
  return (frame[ETHERNET.VLAN_TCI]! << 8) | frame[ETHERNET.VLAN_TCI + 1]!;
}

/** A copy of an untagged frame with a tag (TPID 0x8100, `tci`) after the MAC addresses. */
export function addVlanTag(frame: Uint8Array, tci: number): Uint8Array {
  const out = new Uint8Array(frame.length + VLAN_TAG_LEN);
  out.set(frame.subarray(0, ETHERNET.ETHERTYPE), 0);
  out[ETHERNET.ETHERTYPE] = EtherType.VLAN >> 8;
  out[ETHERNET.ETHERTYPE + 1] = EtherType.VLAN & 0xff;
  out[ETHERNET.VLAN_TCI] = (tci >> 8) & 0xff;
  out[ETHERNET.VLAN_TCI + 1] = tci & 0xff;
  out.set(frame.subarray(ETHERNET.ETHERTYPE), ETHERNET.VLAN_ETHERTYPE);
  return out;
}

/** A copy of a tagged frame without its (outer) tag. */
export function removeVlanTag(frame: Uint8Array): Uint8Array {
  const out = new Uint8Array(frame.length - VLAN_TAG_LEN);
  out.set(frame.subarray(0, ETHERNET.ETHERTYPE), 0);
  out.set(frame.subarray(ETHERNET.VLAN_ETHERTYPE), ETHERNET.ETHERTYPE);
  return out;
}
