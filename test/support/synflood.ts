/** SYN frames for flood tests: many half-open connections from one source address. */
import { parseIp, parseMac } from '../../src/wire/address.js';
import { buildEthernetFrame, EtherType } from '../../src/wire/ethernet.js';
import { buildIPv4Packet, IpProtocol } from '../../src/wire/ipv4.js';
import { buildTcpSegment, TcpFlags } from '../../src/wire/tcp.js';
import { mulberry32 } from './frames.js';

export interface SynTarget {
  srcMac: string;
  dstMac: string;
  srcIpv4: string;
  dstIpv4: string;
  dstPort: number;
}

/**
 * count distinct SYNs (source port and sequence number vary; the same
 * frames reused later are retransmissions of the same half-open flows).
 */
export function synFrames(t: SynTarget, count: number, seed = 1): Uint8Array[] {
  const rand = mulberry32(seed);
  const src = parseIp(t.srcIpv4)!;
  const dst = parseIp(t.dstIpv4)!;
  const srcMac = parseMac(t.srcMac)!;
  const dstMac = parseMac(t.dstMac)!;
  const frames: Uint8Array[] = [];
  for (let i = 0; i < count; i++) {
    const seg = buildTcpSegment({
      srcPort: 1024 + (i % 64000),
      dstPort: t.dstPort,
      seqNumber: rand(),
      flags: TcpFlags.SYN,
      window: 65535,
      options: { mss: 1460, windowScale: 7, sackPermitted: true },
      src,
      dst,
    });
    const ip = buildIPv4Packet({ src, dst, protocol: IpProtocol.TCP, identification: i & 0xffff, payload: seg });
    frames.push(buildEthernetFrame({ dst: dstMac, src: srcMac, etherType: EtherType.IPv4 }, ip));
  }
  return frames;
}
