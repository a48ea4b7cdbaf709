/**
 * The checksums the stack computes (wasm/src/checksum.c: lwIP's LWIP_CHKSUM
 * and the copy-and-sum of tcp_write, written with wasm SIMD): every TCP and
 * UDP packet a stack sends, over IPv4 and IPv6, at every payload length
 * around the vector widths and at odd and even offsets into the sender's
 * data, verifies with the TypeScript reference (src/wire/checksum.ts), and
 * the receiving stack accepts the same packets byte for byte.
 */
import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { createCable, createStack, type Stack } from '../src/index.js';
import { IpProtocol } from '../src/wire/ipv4.js';
import { parseTcpSegment } from '../src/wire/tcp.js';
import { parseUdpDatagram } from '../src/wire/udp.js';
import { tap, type TappedPacket } from './support/wiretap.js';

const stacks: Stack[] = [];
afterEach(() => {
  for (const s of stacks.splice(0)) s.close();
});

function tappedPair(mtu: number) {
  const a = createStack();
  const b = createStack();
  stacks.push(a, b);
  const [la, lb] = createCable({ medium: 'ip', mtu });
  const wire = tap(la);
  a.addInterface({ link: wire, ipv4: '10.0.0.1/24', ipv6: 'fd00::1/64' });
  b.addInterface({ link: lb, ipv4: '10.0.0.2/24', ipv6: 'fd00::2/64' });
  return { a, b, packets: wire.packets };
}

/** Payload lengths around 16, 32 and 64 bytes (the SIMD steps), odd and even, up to a full segment. */
const LENGTHS = [...Array.from({ length: 140 }, (_, i) => i + 1), 255, 256, 257, 1023, 1024, 1025, 1399, 1400, 1401];

/** Bytes whose 16-bit sums carry often (0xff runs) mixed with random ones, reproducible. */
function pattern(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    b[i] = i % 7 < 3 ? 0xff : x & 0xff;
  }
  return b;
}

function verified(p: TappedPacket): { proto: 'tcp' | 'udp'; ok: boolean | null; length: number } | null {
  const ip = p.v4 ? { src: p.v4.src, dst: p.v4.dst, proto: p.v4.protocol, payload: p.v4.payload } : p.v6 ? { src: p.v6.src, dst: p.v6.dst, proto: p.v6.upperProtocol, payload: p.v6.upperPayload } : null;
  if (!ip) return null;
  const pseudo = { src: ip.src, dst: ip.dst };
  if (ip.proto === IpProtocol.TCP) {
    const s = parseTcpSegment(ip.payload, pseudo);
    return s && { proto: 'tcp', ok: s.checksumOk, length: s.payload.length };
  }
  if (ip.proto === IpProtocol.UDP) {
    const d = parseUdpDatagram(ip.payload, pseudo);
    return d && { proto: 'udp', ok: d.checksumOk, length: d.payload.length };
  }
  return null;
}

describe('checksums the stack writes', () => {
  for (const family of [4, 6] as const) {
    const to = family === 4 ? '10.0.0.2' : 'fd00::2';

    it(`UDP over IPv${family}: every datagram verifies and arrives intact, for ${LENGTHS.length} lengths`, async () => {
      const { a, b, packets } = tappedPair(1500);
      const rx = b.createSocket(family === 4 ? 'udp4' : 'udp6');
      rx.bind(7000);
      await once(rx, 'listening');
      const got: Buffer[] = [];
      rx.on('message', (m: Buffer) => got.push(Buffer.from(m)));
      const tx = a.createSocket(family === 4 ? 'udp4' : 'udp6');
      const sent = LENGTHS.map((n, i) => pattern(n + (i % 2), i + 1).subarray(i % 2)); // odd offsets into the data too
      for (const d of sent) tx.send(d, 7000, to);
      for (let i = 0; i < 2000 && got.length < sent.length; i++) await new Promise((r) => setImmediate(r));
      expect(got.map((g) => g.toString('hex'))).toEqual(sent.map((d) => Buffer.from(d).toString('hex')));
      const udp = packets.filter((p) => p.dir === 'out').map(verified).filter((v) => v?.proto === 'udp');
      expect(udp.map((v) => v!.length)).toEqual(LENGTHS);
      expect(udp.filter((v) => v!.ok !== true)).toEqual([]);
      tx.close();
      rx.close();
    });

    it(`TCP over IPv${family}: every segment verifies, writes of every length arrive intact`, async () => {
      const { a, b, packets } = tappedPair(1500);
      const server = b.createServer();
      server.listen(7001);
      await once(server, 'listening');
      const accepted = once(server, 'connection');
      const client = a.connect(7001, to);
      client.setNoDelay(true); // no Nagle: a segment per write, most of them
      await once(client, 'connect');
      const [peer] = (await accepted) as [import('node:stream').Duplex];
      const chunks: Buffer[] = [];
      peer.on('data', (d: Buffer) => chunks.push(Buffer.from(d)));
      const ended = once(peer, 'end');
      // Each write on its own turn so that segments start at many offsets
      // into the sender's buffers (tcp_write's copy-and-sum).
      const writes = LENGTHS.map((n, i) => pattern(n + (i % 3), 100 + i).subarray(i % 3));
      for (const w of writes) {
        client.write(w);
        await new Promise((r) => setImmediate(r));
      }
      client.end();
      await ended;
      expect(Buffer.concat(chunks).equals(Buffer.concat(writes))).toBe(true);
      const tcp = packets.map(verified).filter((v) => v?.proto === 'tcp');
      expect(tcp.filter((v) => v!.length > 0).length).toBeGreaterThan(LENGTHS.length / 2);
      expect(tcp.filter((v) => v!.ok !== true)).toEqual([]);
    });
  }
});
