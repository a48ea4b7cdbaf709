/**
 * The classic pcap file format (what tcpdump -r and Wireshark read):
 * a 24-byte global header, then a 16-byte record header before each packet.
 * Little-endian, microsecond timestamps.
 */

export const PCAP_MAGIC_US = 0xa1b2c3d4;
/** LINKTYPE_ETHERNET and LINKTYPE_RAW (bare IPv4/IPv6 packets). */
export const LINKTYPE = { ethernet: 1, raw: 101 } as const;
export const PCAP_GLOBAL_HEADER = 24;
export const PCAP_RECORD_HEADER = 16;

export function pcapGlobalHeader(linktype: number, snaplen = 262144): Uint8Array {
  const out = new Uint8Array(PCAP_GLOBAL_HEADER);
  const v = new DataView(out.buffer);
  v.setUint32(0, PCAP_MAGIC_US, true);
  v.setUint16(4, 2, true); // version 2.4
  v.setUint16(6, 4, true);
  v.setInt32(8, 0, true); // thiszone
  v.setUint32(12, 0, true); // sigfigs
  v.setUint32(16, snaplen, true);
  v.setUint32(20, linktype, true);
  return out;
}

/** One record: header plus the packet (truncated to snaplen). */
export function pcapRecord(packet: Uint8Array, timestampMs: number, snaplen = 262144): Uint8Array {
  const incl = Math.min(packet.length, snaplen);
  const out = new Uint8Array(PCAP_RECORD_HEADER + incl);
  const v = new DataView(out.buffer);
  const us = Math.max(0, Math.round(timestampMs * 1000));
  v.setUint32(0, Math.floor(us / 1e6), true);
  v.setUint32(4, us % 1e6, true);
  v.setUint32(8, incl, true);
  v.setUint32(12, packet.length, true);
  out.set(packet.subarray(0, incl), PCAP_RECORD_HEADER);
  return out;
}

export interface PcapFile {
  linktype: number;
  records: { timestampMs: number; packet: Uint8Array }[];
}

/**
 * Reads a classic pcap file (either byte order, microsecond or nanosecond
 * timestamps). Throws RangeError on a bad magic or a record running past
 * the end; packets are views into `bytes`.
 */
export function readPcap(bytes: Uint8Array): PcapFile {
  if (bytes.length < PCAP_GLOBAL_HEADER) throw new RangeError('pcap: shorter than the global header');
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magicLe = v.getUint32(0, true);
  let le: boolean;
  let nano = false;
  if (magicLe === PCAP_MAGIC_US || magicLe === 0xa1b23c4d) le = true;
  else if (v.getUint32(0, false) === PCAP_MAGIC_US || v.getUint32(0, false) === 0xa1b23c4d) le = false;
  else throw new RangeError('pcap: bad magic number');
  nano = v.getUint32(0, le) === 0xa1b23c4d;
  const linktype = v.getUint32(20, le);
  const records: PcapFile['records'] = [];
  let at = PCAP_GLOBAL_HEADER;
  while (at < bytes.length) {
    if (at + PCAP_RECORD_HEADER > bytes.length) throw new RangeError(`pcap: truncated record header at byte ${at}`);
    const sec = v.getUint32(at, le);
    const frac = v.getUint32(at + 4, le);
    const incl = v.getUint32(at + 8, le);
    const start = at + PCAP_RECORD_HEADER;
    if (start + incl > bytes.length) throw new RangeError(`pcap: record at byte ${at} runs past the end`);
    records.push({ timestampMs: sec * 1000 + (nano ? frac / 1e6 : frac / 1e3), packet: bytes.subarray(start, start + incl) });
    at = start + incl;
  }
  return { linktype, records };
}
