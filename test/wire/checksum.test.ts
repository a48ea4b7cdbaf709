import { describe, expect, it } from 'vitest';
import { parseIp, type IpAddress } from '../../src/wire/address.js';
import { foldSum, internetChecksum, onesComplementSum, pseudoHeaderSum } from '../../src/wire/checksum.js';
import { hex, Rng } from '../support/frames.js';

const ip = (s: string): IpAddress => parseIp(s)!;

/** A straightforward byte-pair reference, to check the unrolled 32-bit loop against. */
function referenceSum(data: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < data.length; i += 2) {
    sum += (data[i]! << 8) | (i + 1 < data.length ? data[i + 1]! : 0);
    sum = (sum & 0xffff) + (sum >>> 16);
  }
  return sum;
}

describe('internetChecksum', () => {
  it('matches the RFC 1071 section 3 numerical example', () => {
    // 0001 + f203 + f4f5 + f6f7 = 2ddf0, folded ddf2.
    const data = hex('00 01 f2 03 f4 f5 f6 f7');
    expect(onesComplementSum(data)).toBe(0xddf2);
    expect(internetChecksum(data)).toBe(0x220d);
  });

  it('computes a known IPv4 header checksum and verifies to zero with it in place', () => {
    // 192.168.0.1 -> 192.168.0.199, UDP, total length 115, DF: checksum b861.
    const header = hex('4500 0073 0000 4000 4011 0000 c0a8 0001 c0a8 00c7');
    expect(internetChecksum(header)).toBe(0xb861);
    header[10] = 0xb8;
    header[11] = 0x61;
    expect(internetChecksum(header)).toBe(0);
  });

  it('pads an odd final byte with zero on the right (RFC 1071 section 4.1)', () => {
    expect(onesComplementSum(hex('ab'))).toBe(0xab00);
    expect(onesComplementSum(hex('0102 03'))).toBe(0x0102 + 0x0300);
  });

  it('sums nothing to zero and checksums nothing to ffff', () => {
    expect(onesComplementSum(new Uint8Array(0))).toBe(0);
    expect(internetChecksum(new Uint8Array(0))).toBe(0xffff);
  });

  it('agrees with a byte-wise reference for every length and alignment', () => {
    const rng = new Rng(1071);
    const backing = rng.bytes(400);
    for (let offset = 0; offset < 4; offset++) {
      for (let len = 0; len <= 300; len++) {
        const view = backing.subarray(offset, offset + len);
        expect(onesComplementSum(view)).toBe(referenceSum(view));
      }
    }
  });

  it('stays exact over buffers larger than one fold block', () => {
    const rng = new Rng(7);
    const big = rng.bytes((1 << 20) + 3);
    expect(onesComplementSum(big)).toBe(referenceSum(big));
    // All-ones words sum to ffff (negative zero), whose checksum is 0.
    expect(internetChecksum(new Uint8Array(1 << 20).fill(0xff))).toBe(0);
  });

  it('chains sums: initial carries an earlier even-length part', () => {
    const a = hex('4500 0073 0000 4000');
    const b = hex('4011 0000 c0a8 0001 c0a8 00c7 99');
    const whole = new Uint8Array([...a, ...b]);
    expect(onesComplementSum(b, onesComplementSum(a))).toBe(onesComplementSum(whole));
    expect(internetChecksum(b, onesComplementSum(a))).toBe(internetChecksum(whole));
  });

  it('folds sums above 32 bits', () => {
    expect(foldSum(0x1_0000_0000)).toBe(1); // 2^32 ≡ 1 (mod ffff)
    expect(foldSum(0x1fffe)).toBe(0xffff);
    expect(foldSum(0xffff)).toBe(0xffff);
  });
});

describe('pseudoHeaderSum', () => {
  // Linux leaves exactly this sum in the checksum field for loopback TCP
  // (CHECKSUM_PARTIAL): 0xfe30 and 0x0030 in the SYNs captured in tcp.test.ts.
  it('sums the IPv4 pseudo header (RFC 9293 section 3.1)', () => {
    expect(pseudoHeaderSum(ip('127.0.0.1'), ip('127.0.0.1'), 6, 40)).toBe(0xfe30);
    // 0a00+0001 + c0a8+0102 + 0011 + 0010
    expect(pseudoHeaderSum(ip('10.0.0.1'), ip('192.168.1.2'), 17, 16)).toBe(0x0a00 + 0x0001 + 0xc0a8 + 0x0102 + 0x11 + 0x10);
  });

  it('sums the IPv6 pseudo header with a 32-bit length (RFC 8200 section 8.1)', () => {
    expect(pseudoHeaderSum(ip('::1'), ip('::1'), 6, 40)).toBe(0x0030);
    // The upper 16 bits of a jumbo length count too.
    expect(pseudoHeaderSum(ip('::'), ip('::'), 17, 0x1_0002)).toBe(1 + 2 + 17);
  });

  it('rejects mixed families', () => {
    expect(() => pseudoHeaderSum(ip('127.0.0.1'), ip('::1'), 17, 8)).toThrow(RangeError);
  });
});
