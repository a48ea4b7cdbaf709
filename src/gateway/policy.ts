/**
 * The gateway's egress policy: which flows a sandbox may open to the outside.
 * Pure logic (no I/O, time passed in), so the gateway asks it once per new
 * flow and tests ask it with literal cases.
 *
 * Rules are tried in order and the first that matches decides. A flow no rule
 * matches is allowed (or denied with `defaultAction: 'deny'`), except for the
 * protected addresses, which are denied unless a rule allows them explicitly:
 * - the link-local block, where cloud metadata services live: 169.254.0.0/16,
 *   fe80::/10, and fd00:ec2::254 (AWS's IPv6 metadata endpoint);
 * - the host's own addresses: `hostAddresses` from the caller (for example
 *   `hostAddressesOf(os.networkInterfaces())`), plus 127.0.0.0/8, ::1, and
 *   0.0.0.0/8 and :: (a connect to 0.0.0.0 reaches the host's loopback on
 *   Linux).
 * "Explicitly" means an allow rule whose CIDR lies inside the protected block
 * (`allow 169.254.169.254`, `allow 127.0.0.1`): broad rules (`allow *`,
 * `allow 0.0.0.0/0`, port-only rules) and name rules skip protected
 * addresses, so a name that resolves to 169.254.169.254 (DNS rebinding) does
 * not open the metadata service. Deny rules match protected addresses as any
 * other. IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) are judged as the IPv4
 * address they reach.
 *
 * Name rules admit the addresses a name resolved to through the gateway's own
 * DNS: the DNS server calls `learn(name, addresses, ttl, now)` for each
 * answer, and the addresses stay admitted for the TTL (at least `minTtl`).
 *
 * ## Rule text (the command's --allow RULE / --deny RULE)
 *
 *     RULE    = [PROTO ":"] TARGET [":" PORTS]
 *     PROTO   = "tcp" | "udp" | "icmp" | "any"          (default any)
 *     TARGET  = "*"                                   every address, IPv4 and IPv6
 *             | IPV4 ["/" LEN]                        10.0.0.0/8, 192.0.2.7
 *             | "[" IPV6 ["/" LEN] "]"                [fd00::/8], [2001:db8::1]
 *             | "[" IPV6 "]/" LEN                     [fd00::]/8
 *             | IPV6 ["/" LEN]                        fd00::/8 — only when no PORTS follow
 *             | "name:" PATTERN                       name:example.test, name:*.example.test
 *     PORTS   = RANGE *("," RANGE)                    443 | 8000-9000 | 80,443,8000-9000
 *     RANGE   = PORT ["-" PORT]                       0..65535, low <= high
 *     PATTERN = NAME | "*." NAME                      "*." matches every name below NAME
 *                                                      (one or more labels), not NAME itself
 *
 * Examples: `tcp:10.0.0.0/8:443`, `0.0.0.0/0`, `*`, `udp:*:53`,
 * `tcp:[2001:db8::/32]:80,443`, `name:*.example.test`, `tcp:name:api.test:443`.
 * ICMP rules take no ports. Names are case-insensitive; a trailing dot is
 * ignored. A rule object has the same parts: `{ action, protocol?, cidr?,
 * name?, ports? }` (cidr and name are exclusive; neither means every address).
 */

import { invalidOption } from '../core/errors.js';
import { formatIp, parsePrefix, prefixContains, type IpAddress, type IpPrefix } from '../wire/address.js';

export type PolicyAction = 'allow' | 'deny';
export type PolicyProtocol = 'tcp' | 'udp' | 'icmp';

export interface PolicyRuleInit {
  action: PolicyAction;
  /** Default: every protocol ('any' is accepted as the same). */
  protocol?: PolicyProtocol | 'any';
  /** An address or prefix, IPv4 or IPv6: '10.0.0.0/8', '2001:db8::/32', '192.0.2.7'. */
  cidr?: string;
  /** A DNS name or '*.'-pattern; matches the addresses learned for it. */
  name?: string;
  /** '80', '8000-9000', '80,443,8000-9000', or a number. */
  ports?: string | number;
}

/** A parsed rule, immutable. `text` is its canonical form (`allow tcp:10.0.0.0/8:443`). */
export interface PolicyRule {
  readonly action: PolicyAction;
  readonly protocol: PolicyProtocol | null;
  readonly prefix: IpPrefix | null;
  readonly name: string | null;
  readonly ports: ReadonlyArray<readonly [number, number]> | null;
  readonly text: string;
}

export interface Flow {
  protocol: PolicyProtocol;
  address: string;
  /** Destination port (TCP, UDP); absent for ICMP. */
  port?: number;
  /** Milliseconds on the policy clock's scale; default: the clock's now(). */
  now?: number;
}

/** Why a flow was decided as it was. */
export type DecisionReason = 'rule' | 'link-local' | 'host' | 'default';

export interface PolicyDecision {
  allowed: boolean;
  reason: DecisionReason;
  /** The rule that decided (canonical text), when reason is 'rule'. */
  rule?: string;
  /** Its index in the rule list. */
  index?: number;
}

export interface PolicyCounters {
  allowed: number;
  denied: number;
  deniedBy: Record<DecisionReason, number>;
  /** Flows each rule decided, by rule index. */
  ruleHits: number[];
  /** (address, name) pairs learned from DNS and not yet expired. */
  learned: number;
}

export interface EgressPolicyOptions {
  /** Rule objects, or text: 'allow tcp:10.0.0.0/8:443', 'deny *'. */
  rules?: ReadonlyArray<PolicyRuleInit | string>;
  /** For flows no rule matches. Default 'allow'. */
  defaultAction?: PolicyAction;
  /** The host's own addresses (or prefixes), denied unless allowed explicitly. */
  hostAddresses?: ReadonlyArray<string>;
  /**
   * Seconds a learned address stays admitted at least, whatever the TTL: an
   * answer with TTL 0 must still admit the connect that follows it, and
   * clients keep addresses for a while regardless (Java, browsers). Default 30.
   */
  minTtl?: number;
  /** Seconds at most. Default 86400. */
  maxTtl?: number;
  /** Bound on learned (address, name) pairs; the least recently learned go first. Default 65536. */
  maxLearned?: number;
  /** Time source for decide() and learn() without `now`. Default performance.now(). */
  clock?: { now(): number };
}

const PROTOCOLS: ReadonlySet<string> = new Set(['tcp', 'udp', 'icmp']);

function prefix(text: string): IpPrefix {
  const p = parsePrefix(text);
  if (!p) throw new Error(`bad built-in prefix ${text}`);
  return p;
}

/** Blocks denied unless allowed explicitly (see the file comment). */
const LINK_LOCAL: readonly IpPrefix[] = [prefix('169.254.0.0/16'), prefix('fe80::/10'), prefix('fd00:ec2::254/128')];
const HOST_BUILTIN: readonly IpPrefix[] = [prefix('127.0.0.0/8'), prefix('0.0.0.0/8'), prefix('::1/128'), prefix('::/128')];

/** ::ffff:a.b.c.d is carried to a.b.c.d by the host's sockets, so it is judged as that. */
function unmap(a: IpAddress): IpAddress {
  if (a.family !== 6) return a;
  const b = a.bytes;
  for (let i = 0; i < 10; i++) if (b[i] !== 0) return a;
  if (b[10] !== 0xff || b[11] !== 0xff) return a;
  return { family: 4, bytes: b.slice(12, 16), zone: 0 };
}

function unmapPrefix(p: IpPrefix): IpPrefix {
  if (p.address.family !== 6 || p.prefixLength < 96) return p;
  const a = unmap(p.address);
  return a === p.address ? p : { address: a, prefixLength: p.prefixLength - 96 };
}

/** `inner` lies entirely within `outer`. */
function prefixWithin(inner: IpPrefix, outer: IpPrefix): boolean {
  return inner.prefixLength >= outer.prefixLength && prefixContains(outer, inner.address);
}

function formatPrefixText(p: IpPrefix): string {
  const max = p.address.family === 4 ? 32 : 128;
  const text = formatIp(p.address) + (p.prefixLength === max ? '' : `/${p.prefixLength}`);
  return p.address.family === 6 ? `[${text}]` : text;
}

const LABEL_RE = /^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$/;

/** Lowercases and checks a DNS name (a trailing dot is dropped); null when invalid. */
export function normalizeName(name: string): string | null {
  let n = name.toLowerCase();
  if (n.endsWith('.')) n = n.slice(0, -1);
  if (n === '' || n.length > 253) return null;
  for (const label of n.split('.')) if (!LABEL_RE.test(label)) return null;
  return n;
}

function normalizePattern(pattern: string): string | null {
  if (pattern.startsWith('*.')) {
    const rest = normalizeName(pattern.slice(2));
    return rest === null ? null : `*.${rest}`;
  }
  return normalizeName(pattern);
}

/** Whether a normalized name matches a normalized pattern. */
export function nameMatches(pattern: string, name: string): boolean {
  if (pattern.startsWith('*.')) return name.endsWith(pattern.slice(1)) && name.length > pattern.length - 1;
  return name === pattern;
}

function parsePorts(text: string, option: string): Array<[number, number]> {
  const ranges: Array<[number, number]> = [];
  for (const part of text.split(',')) {
    const m = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(part.trim());
    const lo = m ? Number(m[1]) : NaN;
    const hi = m ? Number(m[2] ?? m[1]) : NaN;
    if (!(lo <= hi && hi <= 65535)) {
      throw invalidOption(option, "a port or range from 0 to 65535 ('443', '8000-9000', '80,443')", text);
    }
    ranges.push([lo, hi]);
  }
  return ranges;
}

function formatPorts(ports: ReadonlyArray<readonly [number, number]>): string {
  return ports.map(([lo, hi]) => (lo === hi ? String(lo) : `${lo}-${hi}`)).join(',');
}

/** Validates a rule object; `option` names it in errors ('rules[2]'). */
export function compileRule(init: PolicyRuleInit, option = 'rule'): PolicyRule {
  if (init === null || typeof init !== 'object') throw invalidOption(option, 'a rule object or rule text', init);
  const { action } = init;
  if (action !== 'allow' && action !== 'deny') throw invalidOption(`${option}.action`, "'allow' or 'deny'", action);
  let protocol: PolicyProtocol | null = null;
  if (init.protocol !== undefined && init.protocol !== 'any') {
    if (typeof init.protocol !== 'string' || !PROTOCOLS.has(init.protocol)) {
      throw invalidOption(`${option}.protocol`, "'tcp', 'udp', 'icmp' or 'any'", init.protocol);
    }
    protocol = init.protocol as PolicyProtocol;
  }
  if (init.cidr !== undefined && init.name !== undefined) {
    throw invalidOption(`${option}.name`, 'absent when cidr is given (a rule matches by address or by name)', init.name);
  }
  let pfx: IpPrefix | null = null;
  if (init.cidr !== undefined) {
    const p = typeof init.cidr === 'string' ? parsePrefix(init.cidr) : null;
    if (!p || p.address.zone !== 0) throw invalidOption(`${option}.cidr`, "an IPv4 or IPv6 address or prefix ('10.0.0.0/8')", init.cidr);
    pfx = unmapPrefix(p);
  }
  let name: string | null = null;
  if (init.name !== undefined) {
    name = typeof init.name === 'string' ? normalizePattern(init.name) : null;
    if (name === null) throw invalidOption(`${option}.name`, "a DNS name or '*.'-pattern ('*.example.test')", init.name);
  }
  let ports: Array<[number, number]> | null = null;
  if (init.ports !== undefined) {
    if (typeof init.ports === 'number') {
      if (!Number.isInteger(init.ports) || init.ports < 0 || init.ports > 65535) {
        throw invalidOption(`${option}.ports`, 'an integer from 0 to 65535', init.ports);
      }
      ports = [[init.ports, init.ports]];
    } else if (typeof init.ports === 'string') {
      ports = parsePorts(init.ports, `${option}.ports`);
    } else {
      throw invalidOption(`${option}.ports`, "a port or range ('443', '8000-9000')", init.ports);
    }
    if (protocol === 'icmp') throw invalidOption(`${option}.ports`, 'absent for ICMP rules', init.ports);
  }
  const target = pfx ? formatPrefixText(pfx) : name ? `name:${name}` : '*';
  const text = `${action} ${protocol ? `${protocol}:` : ''}${target}${ports ? `:${formatPorts(ports)}` : ''}`;
  return Object.freeze({ action, protocol, prefix: pfx, name, ports: ports && Object.freeze(ports), text });
}

/**
 * Parses rule text (the grammar in the file comment). With `action`, `text`
 * is the RULE alone (`--allow RULE`); without, it starts with 'allow ' or
 * 'deny '. Throws a TypeError naming `option` and saying what is wrong.
 */
export function parseRule(text: string, action?: PolicyAction, option = 'rule'): PolicyRule {
  if (typeof text !== 'string') throw invalidOption(option, 'rule text', text);
  let rest = text.trim();
  if (action === undefined) {
    const m = /^(allow|deny)\s+(.*)$/i.exec(rest);
    if (!m) throw invalidOption(option, "'allow RULE' or 'deny RULE'", text);
    action = m[1]!.toLowerCase() as PolicyAction;
    rest = m[2]!.trim();
  }
  const bad = (why: string): never => {
    throw invalidOption(option, `a rule [tcp|udp|icmp|any:]TARGET[:PORTS] (${why})`, text);
  };
  const init: PolicyRuleInit = { action };
  const proto = /^(tcp|udp|icmp|any):/i.exec(rest);
  if (proto) {
    init.protocol = proto[1]!.toLowerCase() as PolicyProtocol | 'any';
    rest = rest.slice(proto[0].length);
  }
  let portsText: string | undefined;
  if (/^name:/i.test(rest)) {
    // DNS names hold no colons, so the pattern ends at the next one.
    const body = rest.slice(5);
    const colon = body.indexOf(':');
    init.name = colon < 0 ? body : body.slice(0, colon);
    if (colon >= 0) portsText = body.slice(colon + 1);
    if (init.name === '') bad('empty name');
  } else if (rest.startsWith('[')) {
    const close = rest.indexOf(']');
    if (close < 0) bad('unclosed [');
    let cidr = rest.slice(1, close);
    let after = rest.slice(close + 1);
    const len = /^\/\d{1,3}/.exec(after);
    if (len) {
      if (cidr.includes('/')) bad('two prefix lengths');
      cidr += len[0];
      after = after.slice(len[0].length);
    }
    if (!cidr.includes(':')) bad('brackets are for IPv6');
    init.cidr = cidr;
    if (after !== '') {
      if (!after.startsWith(':')) bad(`unexpected ${JSON.stringify(after)}`);
      portsText = after.slice(1);
    }
  } else if (rest === '*' || rest.startsWith('*:')) {
    if (rest.length > 1) portsText = rest.slice(2);
  } else if (parsePrefix(rest)?.address.family === 6) {
    init.cidr = rest; // a bare IPv6 prefix takes the whole rest: ports need brackets
  } else {
    const colon = rest.indexOf(':');
    init.cidr = colon < 0 ? rest : rest.slice(0, colon);
    if (colon >= 0) portsText = rest.slice(colon + 1);
    if (!parsePrefix(init.cidr)) {
      bad(
        rest.includes('::') || colon !== rest.lastIndexOf(':') ? 'write IPv6 with ports as [addr/len]:PORTS'
          : /^[a-z]+$/i.test(init.cidr) ? `unknown protocol or target ${JSON.stringify(init.cidr)}`
            : `bad address ${JSON.stringify(init.cidr)}`,
      );
    }
  }
  if (portsText !== undefined) {
    if (portsText === '') bad('empty port list');
    init.ports = portsText;
  }
  // Re-raise object-level errors under the text's option name.
  try {
    return compileRule(init, option);
  } catch (err) {
    const m = err instanceof TypeError ? /^The "[^"]*?\.?(\w*)" option must be (.*)\. Received /s.exec(err.message) : null;
    if (m) bad(`${m[1] || 'rule'} must be ${m[2]}`);
    throw err;
  }
}

/** The addresses in an os.networkInterfaces() result (pure: pass the result in). */
export function hostAddressesOf(interfaces: Record<string, ReadonlyArray<{ address: string }> | undefined>): string[] {
  const out: string[] = [];
  for (const list of Object.values(interfaces)) for (const i of list ?? []) out.push(i.address);
  return out;
}

interface Learned {
  /** name → expiry (ms on the clock's scale). */
  names: Map<string, number>;
}

export class EgressPolicy {
  readonly rules: readonly PolicyRule[];
  readonly defaultAction: PolicyAction;
  readonly hostPrefixes: readonly IpPrefix[];
  #clock: { now(): number };
  #minTtl: number;
  #maxTtl: number;
  #maxLearned: number;
  /** Name patterns of the name rules: learn() keeps only names some rule can use. */
  #patterns: string[];
  /** address text → the names it was learned for; Map order is least recently learned first. */
  #learned = new Map<string, Learned>();
  #learnedPairs = 0;
  #counters = { allowed: 0, denied: 0, deniedBy: { rule: 0, 'link-local': 0, host: 0, default: 0 } as Record<DecisionReason, number> };
  #ruleHits: number[];

  constructor(options: EgressPolicyOptions = {}) {
    if (options === null || typeof options !== 'object') throw invalidOption('options', 'an object', options);
    const { rules = [], defaultAction = 'allow', hostAddresses = [], minTtl = 30, maxTtl = 86400, maxLearned = 65536 } = options;
    if (!Array.isArray(rules)) throw invalidOption('rules', 'an array of rules', rules);
    this.rules = Object.freeze(rules.map((r, i) => (typeof r === 'string' ? parseRule(r, undefined, `rules[${i}]`) : compileRule(r, `rules[${i}]`))));
    if (defaultAction !== 'allow' && defaultAction !== 'deny') throw invalidOption('defaultAction', "'allow' or 'deny'", defaultAction);
    this.defaultAction = defaultAction;
    if (!Array.isArray(hostAddresses)) throw invalidOption('hostAddresses', 'an array of addresses', hostAddresses);
    const host = hostAddresses.map((a, i) => {
      // os.networkInterfaces() gives link-local IPv6 with a zone; the zone does not matter here.
      const p = typeof a === 'string' ? parsePrefix(a.replace(/%[^/]*/, '')) : null;
      if (!p) throw invalidOption(`hostAddresses[${i}]`, 'an IP address or prefix', a);
      return unmapPrefix({ address: { ...p.address, zone: 0 }, prefixLength: p.prefixLength });
    });
    this.hostPrefixes = Object.freeze([...HOST_BUILTIN, ...host]);
    if (typeof minTtl !== 'number' || !(minTtl >= 0)) throw invalidOption('minTtl', 'a number of seconds >= 0', minTtl);
    if (typeof maxTtl !== 'number' || !(maxTtl >= minTtl)) throw invalidOption('maxTtl', 'a number of seconds >= minTtl', maxTtl);
    if (!Number.isInteger(maxLearned) || maxLearned < 1) throw invalidOption('maxLearned', 'a positive integer', maxLearned);
    this.#minTtl = minTtl;
    this.#maxTtl = maxTtl;
    this.#maxLearned = maxLearned;
    const clock = options.clock ?? { now: () => performance.now() };
    if (typeof clock !== 'object' || typeof clock.now !== 'function') throw invalidOption('clock', 'an object with now()', clock);
    this.#clock = clock;
    this.#patterns = this.rules.flatMap((r) => (r.name ? [r.name] : []));
    this.#ruleHits = this.rules.map(() => 0);
  }

  /**
   * Decides a new flow: the first matching rule, else the protected blocks,
   * else the default. Each call is counted.
   */
  decide(flow: Flow): PolicyDecision {
    if (flow === null || typeof flow !== 'object') throw invalidOption('flow', 'an object', flow);
    const { protocol, port } = flow;
    if (typeof protocol !== 'string' || !PROTOCOLS.has(protocol)) throw invalidOption('protocol', "'tcp', 'udp' or 'icmp'", protocol);
    const parsed = typeof flow.address === 'string' ? parsePrefix(flow.address.replace(/%.*$/, '')) : null;
    if (!parsed || parsed.prefixLength !== (parsed.address.family === 4 ? 32 : 128)) throw invalidOption('address', 'an IP address', flow.address);
    if (port !== undefined && (!Number.isInteger(port) || port < 0 || port > 65535)) throw invalidOption('port', 'an integer from 0 to 65535', port);
    const now = flow.now ?? this.#clock.now();
    if (typeof now !== 'number' || Number.isNaN(now)) throw invalidOption('now', 'a number', flow.now);
    const address = unmap(parsed.address);
    const guard = this.#protectedBlock(address);

    for (let i = 0; i < this.rules.length; i++) {
      const rule = this.rules[i]!;
      if (!this.#matches(rule, protocol as PolicyProtocol, address, port, now)) continue;
      // A protected address is opened only by an allow rule aimed inside its block.
      if (rule.action === 'allow' && guard && !(rule.prefix && prefixWithin(rule.prefix, guard.block))) continue;
      this.#ruleHits[i]!++;
      return this.#count({ allowed: rule.action === 'allow', reason: 'rule', rule: rule.text, index: i });
    }
    if (guard) return this.#count({ allowed: false, reason: guard.reason });
    return this.#count({ allowed: this.defaultAction === 'allow', reason: 'default' });
  }

  /**
   * Records that `name` resolved to `addresses` (called by the DNS server for
   * every answer). Kept for the TTL, clamped to [minTtl, maxTtl]; names no
   * name rule matches are not kept. `now` defaults to the clock.
   */
  learn(name: string, addresses: ReadonlyArray<string>, ttlSeconds: number, now: number = this.#clock.now()): void {
    if (typeof name !== 'string') throw invalidOption('name', 'a DNS name', name);
    if (!Array.isArray(addresses)) throw invalidOption('addresses', 'an array of addresses', addresses);
    if (typeof ttlSeconds !== 'number' || Number.isNaN(ttlSeconds)) throw invalidOption('ttlSeconds', 'a number', ttlSeconds);
    if (typeof now !== 'number' || Number.isNaN(now)) throw invalidOption('now', 'a number', now);
    const n = normalizeName(name);
    if (n === null || !this.#patterns.some((p) => nameMatches(p, n))) return;
    const expires = now + Math.min(this.#maxTtl, Math.max(this.#minTtl, ttlSeconds)) * 1000;
    for (const text of addresses) {
      const p = typeof text === 'string' ? parsePrefix(text) : null;
      if (!p || p.prefixLength !== (p.address.family === 4 ? 32 : 128)) continue;
      const key = formatIp(unmap({ ...p.address, zone: 0 }));
      let entry = this.#learned.get(key);
      if (entry) this.#learned.delete(key); // re-inserted below: most recently learned last
      else entry = { names: new Map() };
      if (!entry.names.has(n)) this.#learnedPairs++;
      entry.names.set(n, Math.max(expires, entry.names.get(n) ?? -Infinity));
      this.#learned.set(key, entry);
    }
    this.#evict(now);
  }

  /** The names an address is currently admitted under (for logs and flow events). */
  namesOf(address: string, now: number = this.#clock.now()): string[] {
    const p = parsePrefix(address);
    if (!p) return [];
    const entry = this.#learned.get(formatIp(unmap({ ...p.address, zone: 0 })));
    if (!entry) return [];
    return [...entry.names].filter(([, exp]) => exp > now).map(([name]) => name);
  }

  get counters(): PolicyCounters {
    const now = this.#clock.now();
    let learned = 0;
    for (const entry of this.#learned.values()) for (const exp of entry.names.values()) if (exp > now) learned++;
    return {
      allowed: this.#counters.allowed,
      denied: this.#counters.denied,
      deniedBy: { ...this.#counters.deniedBy },
      ruleHits: [...this.#ruleHits],
      learned,
    };
  }

  #count(d: PolicyDecision): PolicyDecision {
    if (d.allowed) this.#counters.allowed++;
    else {
      this.#counters.denied++;
      this.#counters.deniedBy[d.reason]++;
    }
    return d;
  }

  #protectedBlock(a: IpAddress): { block: IpPrefix; reason: DecisionReason } | null {
    for (const block of LINK_LOCAL) if (prefixContains(block, a)) return { block, reason: 'link-local' };
    for (const block of this.hostPrefixes) if (prefixContains(block, a)) return { block, reason: 'host' };
    return null;
  }

  #matches(rule: PolicyRule, protocol: PolicyProtocol, address: IpAddress, port: number | undefined, now: number): boolean {
    if (rule.protocol && rule.protocol !== protocol) return false;
    if (rule.ports) {
      if (port === undefined) return false;
      if (!rule.ports.some(([lo, hi]) => port >= lo && port <= hi)) return false;
    }
    if (rule.prefix) return prefixContains(rule.prefix, address);
    if (rule.name) {
      const entry = this.#learned.get(formatIp(address));
      if (!entry) return false;
      for (const [name, expires] of entry.names) if (expires > now && nameMatches(rule.name, name)) return true;
      return false;
    }
    return true;
  }

  /** Drops expired pairs when over the bound, then the least recently learned. */
  #evict(now: number): void {
    if (this.#learnedPairs <= this.#maxLearned) return;
    for (const [key, entry] of this.#learned) {
      for (const [name, exp] of entry.names) {
        if (exp <= now) {
          entry.names.delete(name);
          this.#learnedPairs--;
        }
      }
      if (entry.names.size === 0) this.#learned.delete(key);
    }
    for (const [key, entry] of this.#learned) {
      if (this.#learnedPairs <= this.#maxLearned) break;
      this.#learnedPairs -= entry.names.size;
      this.#learned.delete(key);
    }
  }
}
