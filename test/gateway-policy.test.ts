import { describe, expect, it } from 'vitest';
import { EgressPolicy, hostAddressesOf, nameMatches, parseRule, type PolicyDecision } from '../src/gateway/policy.js';

/** A clock the test moves by hand (ms). */
function manual(start = 1_000_000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => void (t += ms) };
}

const allowed = (d: PolicyDecision) => d.allowed;

describe('rule text', () => {
  it('parses every target form and prints the canonical text', () => {
    const cases: Array<[string, string]> = [
      ['tcp:10.0.0.0/8:443', 'allow tcp:10.0.0.0/8:443'],
      ['0.0.0.0/0', 'allow 0.0.0.0/0'],
      ['*', 'allow *'],
      ['any:*', 'allow *'],
      ['udp:*:53', 'allow udp:*:53'],
      ['192.0.2.7', 'allow 192.0.2.7'],
      ['192.0.2.7/32', 'allow 192.0.2.7'],
      ['tcp:192.0.2.0/24:80,443,8000-9000', 'allow tcp:192.0.2.0/24:80,443,8000-9000'],
      ['fd00::/8', 'allow [fd00::/8]'],
      ['2001:DB8::1', 'allow [2001:db8::1]'],
      ['tcp:[2001:db8::/32]:80', 'allow tcp:[2001:db8::/32]:80'],
      ['tcp:[2001:db8::]/32:80', 'allow tcp:[2001:db8::/32]:80'],
      ['[::ffff:10.0.0.0]/104', 'allow 10.0.0.0/8'], // IPv4-mapped is IPv4
      ['name:*.Example.TEST.', 'allow name:*.example.test'],
      ['tcp:name:api.test:443', 'allow tcp:name:api.test:443'],
      ['icmp:10.0.0.1', 'allow icmp:10.0.0.1'],
      ['TCP:*:1-1024', 'allow tcp:*:1-1024'],
    ];
    for (const [text, canonical] of cases) expect(parseRule(text, 'allow').text, text).toBe(canonical);
    expect(parseRule('deny  udp:*:53').text).toBe('deny udp:*:53');
    expect(parseRule('allow name:a.test').name).toBe('a.test');
  });

  it('a bare IPv6 address takes the whole rest: fd00::1:443 is an address, not a port', () => {
    expect(parseRule('fd00::1:443', 'deny').text).toBe('deny [fd00::1:443]');
    expect(parseRule('fd00::1:443', 'deny').ports).toBeNull();
  });

  it('rejects bad text with a TypeError naming the option and the mistake', () => {
    const bad: Array<[string, RegExp]> = [
      ['tcp:10.0.0.0/8:70000', /rule.*port/],
      ['tcp:10.0.0.0/8:9-8', /port/],
      ['tcp:10.0.0.0/8:', /empty port list/],
      ['10.0.0.0/33', /bad address/],
      ['300.1.1.1', /bad address/],
      ['fd00::/8:443', /\[addr\/len\]:PORTS/],
      ['[10.0.0.0/8]:80', /brackets are for IPv6/],
      ['[fd00::/8', /unclosed/],
      ['icmp:*:8', /ports must be absent for ICMP/],
      ['name:', /empty name/],
      ['name:bad_label-.test', /name/],
      ['name:*', /name/],
      ['name:a.*.test', /name/],
      ['sctp:*', /unknown protocol or target "sctp"/],
      ['', /bad address/],
    ];
    for (const [text, why] of bad) {
      expect(() => parseRule(text, 'allow', '--allow'), text).toThrow(TypeError);
      expect(() => parseRule(text, 'allow', '--allow'), text).toThrow(/"--allow"/);
      expect(() => parseRule(text, 'allow', '--allow'), text).toThrow(why);
    }
    expect(() => parseRule('permit *')).toThrow(/'allow RULE' or 'deny RULE'/);
  });

  it('rule objects are validated field by field', () => {
    expect(() => new EgressPolicy({ rules: [{ action: 'permit' as 'allow' }] })).toThrow(/"rules\[0\]\.action"/);
    expect(() => new EgressPolicy({ rules: [{ action: 'allow', protocol: 'sctp' as 'tcp' }] })).toThrow(/"rules\[0\]\.protocol"/);
    expect(() => new EgressPolicy({ rules: [{ action: 'allow' }, { action: 'deny', cidr: '10/8' }] })).toThrow(/"rules\[1\]\.cidr"/);
    expect(() => new EgressPolicy({ rules: [{ action: 'allow', ports: 65536 }] })).toThrow(/"rules\[0\]\.ports"/);
    expect(() => new EgressPolicy({ rules: [{ action: 'allow', ports: '1-2-3' }] })).toThrow(/"rules\[0\]\.ports"/);
    expect(() => new EgressPolicy({ rules: [{ action: 'allow', cidr: '10.0.0.0/8', name: 'a.test' }] })).toThrow(/"rules\[0\]\.name"/);
    expect(() => new EgressPolicy({ rules: ['allow tcp:*:x'] })).toThrow(/"rules\[0\]"/);
    expect(() => new EgressPolicy({ defaultAction: 'drop' as 'deny' })).toThrow(/"defaultAction"/);
    expect(() => new EgressPolicy({ hostAddresses: ['10.0.0.300'] })).toThrow(/"hostAddresses\[0\]"/);
    expect(() => new EgressPolicy({ minTtl: -1 })).toThrow(/"minTtl"/);
    expect(() => new EgressPolicy({ maxLearned: 0 })).toThrow(/"maxLearned"/);
    expect(() => new EgressPolicy({ rules: 'allow *' as unknown as string[] })).toThrow(/"rules"/);
    const p = new EgressPolicy();
    expect(() => p.decide({ protocol: 'sctp' as 'tcp', address: '10.0.0.1', port: 1 })).toThrow(/"protocol"/);
    expect(() => p.decide({ protocol: 'tcp', address: '10.0.0.0/8', port: 1 })).toThrow(/"address"/);
    expect(() => p.decide({ protocol: 'tcp', address: '10.0.0.1', port: 65536 })).toThrow(/"port"/);
  });

  it('wildcard patterns match names below the domain, not the domain', () => {
    expect(nameMatches('*.example.test', 'a.example.test')).toBe(true);
    expect(nameMatches('*.example.test', 'a.b.example.test')).toBe(true);
    expect(nameMatches('*.example.test', 'example.test')).toBe(false);
    expect(nameMatches('*.example.test', 'badexample.test')).toBe(false);
    expect(nameMatches('example.test', 'example.test')).toBe(true);
    expect(nameMatches('example.test', 'a.example.test')).toBe(false);
  });
});

describe('decisions', () => {
  it('first match wins, then the default; protocol and ports narrow a rule', () => {
    const p = new EgressPolicy({
      rules: [
        'allow tcp:10.1.0.0/16:443',
        'deny 10.0.0.0/8',
        'deny udp:*:53',
        'allow tcp:[2001:db8::/32]:8000-9000',
        'deny [2001:db8::/32]',
        'deny icmp:192.0.2.1',
      ],
    });
    expect(p.decide({ protocol: 'tcp', address: '10.1.2.3', port: 443 })).toEqual({ allowed: true, reason: 'rule', rule: 'allow tcp:10.1.0.0/16:443', index: 0 });
    expect(p.decide({ protocol: 'tcp', address: '10.1.2.3', port: 80 })).toEqual({ allowed: false, reason: 'rule', rule: 'deny 10.0.0.0/8', index: 1 });
    expect(p.decide({ protocol: 'udp', address: '10.1.2.3', port: 443 })).toMatchObject({ allowed: false, index: 1 });
    expect(p.decide({ protocol: 'udp', address: '198.51.100.1', port: 53 })).toMatchObject({ allowed: false, index: 2 });
    expect(p.decide({ protocol: 'tcp', address: '198.51.100.1', port: 53 })).toEqual({ allowed: true, reason: 'default' });
    expect(p.decide({ protocol: 'tcp', address: '2001:db8::5', port: 8080 })).toMatchObject({ allowed: true, index: 3 });
    expect(p.decide({ protocol: 'tcp', address: '2001:db8::5', port: 9001 })).toMatchObject({ allowed: false, index: 4 });
    expect(p.decide({ protocol: 'udp', address: '2001:db9::5', port: 9001 })).toEqual({ allowed: true, reason: 'default' });
    expect(p.decide({ protocol: 'icmp', address: '192.0.2.1' })).toMatchObject({ allowed: false, index: 5 });
    expect(p.decide({ protocol: 'tcp', address: '192.0.2.1', port: 1 })).toMatchObject({ allowed: true, reason: 'default' });
    const c = p.counters;
    expect(c.allowed).toBe(5);
    expect(c.denied).toBe(5);
    expect(c.deniedBy).toEqual({ rule: 5, 'link-local': 0, host: 0, default: 0 });
    expect(c.ruleHits).toEqual([1, 2, 1, 1, 1, 1]);
  });

  it('ICMP flows have no port, so port rules pass over them', () => {
    const p = new EgressPolicy({ rules: ['deny *:0-65535'], defaultAction: 'allow' });
    expect(p.decide({ protocol: 'icmp', address: '192.0.2.1' }).allowed).toBe(true);
    expect(p.decide({ protocol: 'udp', address: '192.0.2.1', port: 0 }).allowed).toBe(false);
  });

  it('defaultAction deny, and 0.0.0.0/0 covers IPv4 only while * covers both', () => {
    const p = new EgressPolicy({ rules: ['allow tcp:0.0.0.0/0:443'], defaultAction: 'deny' });
    expect(p.decide({ protocol: 'tcp', address: '203.0.113.9', port: 443 }).allowed).toBe(true);
    expect(p.decide({ protocol: 'tcp', address: '2001:db8::9', port: 443 })).toEqual({ allowed: false, reason: 'default' });
    const q = new EgressPolicy({ rules: ['deny 0.0.0.0/0'] });
    expect(q.decide({ protocol: 'tcp', address: '203.0.113.9', port: 1 }).allowed).toBe(false);
    expect(q.decide({ protocol: 'tcp', address: '2001:db8::9', port: 1 }).allowed).toBe(true);
    const r = new EgressPolicy({ rules: ['deny *'] });
    expect(r.decide({ protocol: 'tcp', address: '2001:db8::9', port: 1 }).allowed).toBe(false);
    expect(r.counters.deniedBy.rule).toBe(1);
  });

  it('denies the link-local block and the host by default, even under broad allows', () => {
    const p = new EgressPolicy({
      rules: ['allow *', 'allow 0.0.0.0/0', 'allow [::/0]'],
      hostAddresses: ['192.168.7.10', 'fe80::1234%eth0', '2001:db8:7::10', '10.9.0.0/16'],
    });
    const d = (address: string, protocol: 'tcp' | 'udp' | 'icmp' = 'tcp') => p.decide({ protocol, address, port: protocol === 'icmp' ? undefined : 80 });
    expect(d('169.254.169.254')).toEqual({ allowed: false, reason: 'link-local' });
    expect(d('::ffff:169.254.169.254')).toEqual({ allowed: false, reason: 'link-local' }); // mapped
    expect(d('fe80::1')).toEqual({ allowed: false, reason: 'link-local' });
    expect(d('fd00:ec2::254')).toEqual({ allowed: false, reason: 'link-local' });
    expect(d('192.168.7.10')).toEqual({ allowed: false, reason: 'host' });
    expect(d('2001:db8:7::10', 'icmp')).toEqual({ allowed: false, reason: 'host' });
    expect(d('10.9.200.1')).toEqual({ allowed: false, reason: 'host' });
    expect(d('127.0.0.1')).toEqual({ allowed: false, reason: 'host' });
    expect(d('127.53.0.1')).toEqual({ allowed: false, reason: 'host' });
    expect(d('0.0.0.0')).toEqual({ allowed: false, reason: 'host' });
    expect(d('::1')).toEqual({ allowed: false, reason: 'host' });
    expect(d('::')).toEqual({ allowed: false, reason: 'host' });
    expect(d('::ffff:127.0.0.1')).toEqual({ allowed: false, reason: 'host' });
    // Neighbours of protected addresses are ordinary.
    expect(d('192.168.7.11')).toMatchObject({ allowed: true, index: 0 });
    expect(d('169.255.0.1')).toMatchObject({ allowed: true, index: 0 });
    expect(d('fec0::1')).toMatchObject({ allowed: true, index: 0 });
    expect(d('2001:db8:7::11')).toMatchObject({ allowed: true, index: 0 });
    expect(p.counters.deniedBy).toEqual({ rule: 0, 'link-local': 4, host: 9, default: 0 });
  });

  it('opens a protected address only by an allow rule aimed inside its block', () => {
    const p = new EgressPolicy({
      rules: ['allow tcp:169.254.169.254:80', 'allow 192.168.7.0/24', 'allow 192.168.7.10', 'allow [::1]', 'deny 127.0.0.2', 'allow 127.0.0.0/8'],
      hostAddresses: ['192.168.7.10'],
    });
    expect(p.decide({ protocol: 'tcp', address: '169.254.169.254', port: 80 })).toMatchObject({ allowed: true, index: 0 });
    expect(p.decide({ protocol: 'tcp', address: '169.254.169.254', port: 81 })).toEqual({ allowed: false, reason: 'link-local' });
    expect(p.decide({ protocol: 'tcp', address: '169.254.169.253', port: 80 })).toEqual({ allowed: false, reason: 'link-local' });
    // The /24 is wider than the host's /32, so rule 2 is the one that opens it.
    expect(p.decide({ protocol: 'tcp', address: '192.168.7.10', port: 22 })).toMatchObject({ allowed: true, index: 2 });
    expect(p.decide({ protocol: 'tcp', address: '192.168.7.9', port: 22 })).toMatchObject({ allowed: true, index: 1 });
    expect(p.decide({ protocol: 'udp', address: '::1', port: 5353 })).toMatchObject({ allowed: true, index: 3 });
    expect(p.decide({ protocol: 'udp', address: '127.0.0.2', port: 5353 })).toMatchObject({ allowed: false, index: 4 });
    expect(p.decide({ protocol: 'udp', address: '127.0.0.3', port: 5353 })).toMatchObject({ allowed: true, index: 5 });
  });

  it('takes host addresses from an os.networkInterfaces() result', () => {
    const list = hostAddressesOf({
      lo: [{ address: '127.0.0.1' }, { address: '::1' }],
      eth0: [{ address: '192.168.7.10' }, { address: 'fe80::a00:27ff:fe4e:66a1' }],
      none: undefined,
    });
    expect(list).toEqual(['127.0.0.1', '::1', '192.168.7.10', 'fe80::a00:27ff:fe4e:66a1']);
  });
});

describe('name rules', () => {
  it('admit exactly the addresses the name resolved to, for the TTL', () => {
    const clock = manual();
    const p = new EgressPolicy({ rules: ['allow tcp:name:*.example.test:443', 'allow name:exact.test', 'deny *'], clock, minTtl: 0 });
    const t0 = clock.now();
    p.learn('WWW.Example.test.', ['192.0.2.10', '2001:db8::10'], 60, t0);
    p.learn('exact.test', ['198.51.100.7'], 5, t0);
    p.learn('other.test', ['203.0.113.1'], 60, t0); // no name rule wants it: not kept
    const tcp = (address: string, port = 443) => p.decide({ protocol: 'tcp', address, port });
    expect(tcp('192.0.2.10')).toEqual({ allowed: true, reason: 'rule', rule: 'allow tcp:name:*.example.test:443', index: 0 });
    expect(allowed(tcp('2001:db8::10'))).toBe(true);
    expect(allowed(tcp('::ffff:192.0.2.10'))).toBe(true);
    expect(tcp('192.0.2.10', 80)).toMatchObject({ allowed: false, index: 2 }); // port narrows
    expect(tcp('192.0.2.11')).toMatchObject({ allowed: false, index: 2 }); // a neighbour is not admitted
    expect(tcp('203.0.113.1')).toMatchObject({ allowed: false, index: 2 });
    expect(p.decide({ protocol: 'udp', address: '198.51.100.7', port: 53 })).toMatchObject({ allowed: true, index: 1 });
    expect(p.namesOf('192.0.2.10')).toEqual(['www.example.test']);
    expect(p.counters.learned).toBe(3);

    clock.advance(5_000); // exact.test's TTL is over
    expect(p.decide({ protocol: 'udp', address: '198.51.100.7', port: 53 })).toMatchObject({ allowed: false, index: 2 });
    expect(allowed(tcp('192.0.2.10'))).toBe(true);
    // A decision may carry its own time.
    expect(allowed(p.decide({ protocol: 'tcp', address: '192.0.2.10', port: 443, now: t0 + 59_999 }))).toBe(true);
    expect(allowed(p.decide({ protocol: 'tcp', address: '192.0.2.10', port: 443, now: t0 + 60_000 }))).toBe(false);
    // A fresh answer extends it.
    clock.advance(50_000);
    p.learn('www.example.test', ['192.0.2.10'], 60, clock.now());
    clock.advance(30_000);
    expect(allowed(tcp('192.0.2.10'))).toBe(true);
    expect(allowed(tcp('2001:db8::10'))).toBe(false);
    expect(p.counters.learned).toBe(1);
  });

  it('the wildcard does not cover the domain itself', () => {
    const clock = manual();
    const p = new EgressPolicy({ rules: ['allow name:*.example.test'], defaultAction: 'deny', clock });
    p.learn('example.test', ['192.0.2.1'], 60);
    p.learn('a.example.test', ['192.0.2.2'], 60);
    expect(p.decide({ protocol: 'tcp', address: '192.0.2.1', port: 80 })).toEqual({ allowed: false, reason: 'default' });
    expect(p.decide({ protocol: 'tcp', address: '192.0.2.2', port: 80 })).toMatchObject({ allowed: true, index: 0 });
  });

  it('hold addresses at least minTtl, at most maxTtl', () => {
    const clock = manual();
    const p = new EgressPolicy({ rules: ['allow name:a.test'], defaultAction: 'deny', clock, minTtl: 10, maxTtl: 100 });
    p.learn('a.test', ['192.0.2.1'], 0);
    p.learn('a.test', ['192.0.2.2'], 1_000_000);
    clock.advance(9_999);
    expect(allowed(p.decide({ protocol: 'tcp', address: '192.0.2.1', port: 1 }))).toBe(true);
    clock.advance(1);
    expect(allowed(p.decide({ protocol: 'tcp', address: '192.0.2.1', port: 1 }))).toBe(false);
    clock.advance(90_000);
    expect(allowed(p.decide({ protocol: 'tcp', address: '192.0.2.2', port: 1 }))).toBe(false);
  });

  it('never opens a protected address: DNS rebinding to the metadata service or the host', () => {
    const clock = manual();
    const p = new EgressPolicy({ rules: ['allow name:*.example.test', 'deny *'], hostAddresses: ['192.168.7.10'], clock });
    p.learn('evil.example.test', ['169.254.169.254', '127.0.0.1', '192.168.7.10', 'fe80::1', '::ffff:169.254.169.254'], 60);
    for (const address of ['169.254.169.254', '127.0.0.1', '192.168.7.10', 'fe80::1']) {
      expect(allowed(p.decide({ protocol: 'tcp', address, port: 80 })), address).toBe(false);
    }
    // The explicit deny * still matches protected addresses first.
    expect(p.decide({ protocol: 'tcp', address: '169.254.169.254', port: 80 }).reason).toBe('rule');
  });

  it('bounds what it learns, dropping the least recently learned', () => {
    const clock = manual();
    const p = new EgressPolicy({ rules: ['allow name:*.t'], defaultAction: 'deny', clock, maxLearned: 3 });
    for (let i = 1; i <= 5; i++) p.learn(`h${i}.t`, [`192.0.2.${i}`], 60);
    expect(p.counters.learned).toBe(3);
    expect([1, 2, 3, 4, 5].map((i) => allowed(p.decide({ protocol: 'tcp', address: `192.0.2.${i}`, port: 1 })))).toEqual([false, false, true, true, true]);
  });

  it('ignores names and addresses that are not valid', () => {
    const clock = manual();
    const p = new EgressPolicy({ rules: ['allow name:*.t'], defaultAction: 'deny', clock });
    p.learn('bad name.t', ['192.0.2.1'], 60);
    p.learn('a.t', ['not-an-address', '192.0.2.0/24', '192.0.2.2'], 60);
    expect(p.counters.learned).toBe(1);
    expect(() => p.learn('a.t', '192.0.2.1' as unknown as string[], 60)).toThrow(/"addresses"/);
    expect(() => p.learn('a.t', [], NaN)).toThrow(/"ttlSeconds"/);
  });
});
