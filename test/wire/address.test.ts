import { describe, expect, it } from 'vitest';
import { formatIp, formatIPv6, isIP, parseIp, parseIPv6 } from '../../src/wire/address.js';

/** Parse then format: the RFC 5952 canonical text of any accepted spelling. */
const canonical = (text: string) => formatIPv6(parseIPv6(text)!.bytes);

describe('IPv6 text (RFC 5952)', () => {
  it('omits leading zeros in each group (section 4.1)', () => {
    expect(canonical('2001:0db8:0000:0000:0000:0000:0000:0001')).toBe('2001:db8::1');
    expect(canonical('2001:db8:0:0:0:0:2:1')).toBe('2001:db8::2:1'); // section 4.2.1
  });

  it('does not compress a single zero group (section 4.2.2)', () => {
    expect(canonical('2001:db8:0:1:1:1:1:1')).toBe('2001:db8:0:1:1:1:1:1');
    expect(canonical('2001:db8::1:1:1:1:1')).toBe('2001:db8:0:1:1:1:1:1');
  });

  it('compresses the longest run, the first when tied (section 4.2.3)', () => {
    expect(canonical('2001:0:0:1:0:0:0:1')).toBe('2001:0:0:1::1');
    expect(canonical('2001:db8:0:0:1:0:0:1')).toBe('2001:db8::1:0:0:1');
  });

  it('writes lowercase hex (section 4.3)', () => {
    expect(canonical('2001:DB8::AbCd')).toBe('2001:db8::abcd');
  });

  it('shows IPv4-mapped addresses dotted (section 5)', () => {
    expect(canonical('::ffff:192.0.2.1')).toBe('::ffff:192.0.2.1');
    expect(canonical('0:0:0:0:0:ffff:c000:0201')).toBe('::ffff:192.0.2.1');
  });

  it('handles the all-zero, loopback and edge-run addresses', () => {
    expect(canonical('0:0:0:0:0:0:0:0')).toBe('::');
    expect(canonical('0:0:0:0:0:0:0:1')).toBe('::1');
    expect(canonical('1:0:0:0:0:0:0:0')).toBe('1::');
    expect(canonical('fe80:0:0:0:0:0:0:1')).toBe('fe80::1');
  });

  it('keeps a numeric zone', () => {
    expect(formatIp(parseIp('fe80::1%2')!)).toBe('fe80::1%2');
    expect(parseIp('fe80::1%')).toBeNull();
  });

  it('rejects malformed text', () => {
    for (const bad of [':::', '1::2::3', '12345::', '1:2:3:4:5:6:7:8:9', '1:2:3:4:5:6:7', 'g::1', '::1.2.3', '1:2:3:4:5:6:7::8']) {
      expect(parseIPv6(bad), bad).toBeNull();
    }
  });
});

describe('IPv4 text', () => {
  it('parses dotted quads and rejects octal-looking or out-of-range parts', () => {
    expect(formatIp(parseIp('192.0.2.1')!)).toBe('192.0.2.1');
    expect(isIP('192.0.2.1')).toBe(4);
    expect(isIP('::1')).toBe(6);
    expect(parseIp('192.0.2.01')).toBeNull();
    expect(parseIp('256.0.0.1')).toBeNull();
    expect(isIP('1.2.3')).toBe(0);
  });
});
