/**
 * A hand-driven TCP peer on the far end of an in-memory cable: the test
 * writes segments (Ethernet/IPv4/TCP built with src/wire) and reads the
 * stack's replies, for handshakes no well-behaved client would make (SYN
 * cookies, forged ACKs). The stack under test gets a static ARP entry for
 * the peer, so the peer never has to answer ARP.
 */
import { createCable, createStack, type Stack, type StackOptions } from '../../src/index.js';
import { parseIp, parseMac } from '../../src/wire/address.js';
import { buildEthernetFrame, EtherType, parseEthernetFrame } from '../../src/wire/ethernet.js';
import { buildIPv4Packet, IpProtocol, parseIPv4Packet } from '../../src/wire/ipv4.js';
import { buildTcpSegment, parseTcpSegment, type TcpOptionsInit, type TcpSegment } from '../../src/wire/tcp.js';

export const STACK_IP = '10.8.0.1';
export const PEER_IP = '10.8.0.2';
const STACK_MAC = '02:00:00:00:08:01';
const PEER_MAC = '02:00:00:00:08:02';

export interface RawPeer {
  stack: Stack;
  /** Segments the stack sent to the peer, oldest first (the test may splice it). */
  received: TcpSegment[];
  send(seg: { srcPort: number; dstPort: number; seq: number; ack?: number; flags: number; options?: TcpOptionsInit; payload?: Uint8Array; window?: number }): void;
  /** Resolves with the first received segment (from now on) that matches. */
  next(match: (s: TcpSegment) => boolean, ms?: number): Promise<TcpSegment>;
  close(): void;
}

export function rawPeer(options: StackOptions = {}): RawPeer {
  const stack = createStack(options);
  const [peerLink, stackLink] = createCable({ mtu: 1500 });
  stack.addInterface({ link: stackLink, ipv4: `${STACK_IP}/24`, mac: STACK_MAC });
  stack.neighbors.add({ address: PEER_IP, mac: PEER_MAC });
  const src = parseIp(PEER_IP)!;
  const dst = parseIp(STACK_IP)!;
  const received: TcpSegment[] = [];
  const waiters: Array<{ match: (s: TcpSegment) => boolean; resolve: (s: TcpSegment) => void }> = [];
  peerLink.attach((frame) => {
    const eth = parseEthernetFrame(frame);
    if (!eth || eth.etherType !== EtherType.IPv4) return;
    const ip = parseIPv4Packet(eth.payload);
    if (!ip || ip.protocol !== IpProtocol.TCP) return;
    const seg = parseTcpSegment(ip.payload.slice());
    if (!seg) return;
    received.push(seg);
    for (let i = 0; i < waiters.length; i++) {
      if (waiters[i]!.match(seg)) {
        waiters[i]!.resolve(seg);
        waiters.splice(i, 1);
        break;
      }
    }
  });
  return {
    stack,
    received,
    send(s) {
      const tcp = buildTcpSegment({
        srcPort: s.srcPort, dstPort: s.dstPort, seqNumber: s.seq >>> 0, ackNumber: (s.ack ?? 0) >>> 0, flags: s.flags,
        window: s.window ?? 65535, options: s.options, payload: s.payload, src, dst,
      });
      const ip = buildIPv4Packet({ src, dst, protocol: IpProtocol.TCP, identification: 1, payload: tcp });
      peerLink.send(buildEthernetFrame({ dst: parseMac(STACK_MAC)!, src: parseMac(PEER_MAC)!, etherType: EtherType.IPv4 }, ip));
    },
    next(match, ms = 2000) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no matching segment from the stack')), ms);
        waiters.push({ match, resolve: (seg) => { clearTimeout(timer); resolve(seg); } });
      });
    },
    close() {
      stack.close();
    },
  };
}
