/**
 * The gateway's DNS server: answers the sandbox's queries on a stack address
 * (UDP and TCP port 53) through a resolver on the host, by default node:dns
 * (`dns.promises.Resolver`, which asks the servers in the host's
 * /etc/resolv.conf).
 *
 * - A and AAAA are answered; a CNAME chain in front of the addresses is
 *   passed on (found with resolveCname, asked alongside the addresses so it
 *   costs no extra round trip), and CNAME queries are answered too. Other
 *   types get NOTIMP; so do opcodes other than QUERY and classes other than IN.
 * - NXDOMAIN upstream → rcode 3; a name with no records of the type → NOERROR
 *   with no answers; any other failure or a timeout → SERVFAIL.
 * - Static `hosts` records answer first, authoritatively.
 * - A cache keyed by (type, name) keeps answers for their TTL (negative
 *   answers for `negativeTtl`) and serves them with the TTL counted down;
 *   concurrent identical questions share one upstream lookup.
 * - Every answer with addresses is reported to the egress policy
 *   (`policy.learn(name, addresses, ttl, now)`) for the question's name and
 *   each CNAME target, so name rules admit what the sandbox was told.
 * - Malformed queries (undecodable, a response, not exactly one question)
 *   are counted and dropped.
 * - UDP replies fit 512 bytes, or the EDNS(0) payload size the client
 *   offers up to 1232 (RFC 6891 section 6.2.5; the DNS flag day 2020 value);
 *   larger ones are sent empty with TC set so the client retries over TCP
 *   (RFC 1035 section 4.2.1, RFC 7766 section 5). TCP messages carry the
 *   2-byte length prefix of RFC 1035 section 4.2.2; a connection may pipeline
 *   queries and is closed after `tcpIdleTimeout` ms without one (RFC 7766
 *   section 6.2.3).
 *
 * Time for the cache and the policy comes from `clock` (injectable).
 */

import { EventEmitter } from 'node:events';
import { promises as dnsPromises } from 'node:dns';
import { invalidOption } from '../core/errors.js';
import type { Stack } from '../node/stack.js';
import type { TcpServer } from '../node/server.js';
import type { TcpSocket } from '../node/socket.js';
import type { RemoteInfo, UdpSocket } from '../node/dgram.js';
import { isIP, parseIp, formatIp } from '../wire/address.js';
import {
  DnsClass, DnsRcode, DnsType, decodeDnsMessage, encodeDnsResponse,
  type DnsMessage, type DnsRecordInit,
} from '../wire/dns.js';

/** What the forwarder needs of a resolver: node:dns's `promises.Resolver` fits. */
export interface UpstreamResolver {
  resolve4(name: string, options: { ttl: true }): Promise<Array<{ address: string; ttl: number }>>;
  resolve6(name: string, options: { ttl: true }): Promise<Array<{ address: string; ttl: number }>>;
  /** Optional: without it CNAMEs are not passed on and CNAME queries get NOTIMP. */
  resolveCname?(name: string): Promise<string[]>;
  /** Called on close() for a resolver the forwarder made itself. */
  cancel?(): void;
}

/** The part of the egress policy the DNS server feeds. */
export interface LearningPolicy {
  learn(name: string, addresses: string[], ttlSeconds: number, now: number): void;
}

export interface DnsForwarderOptions {
  /** The stack to serve on. */
  stack: Stack;
  /** Address(es) of the stack to serve on. Default: every address (IPv4 and IPv6). */
  address?: string | string[];
  /** Default 53. */
  port?: number;
  /**
   * The upstream: a resolver, or a function that makes one for each upstream
   * lookup (each its own sockets, so concurrent lookups do not share a
   * source port). Default: a new `dns.promises.Resolver({ timeout: 2000,
   * tries: 2 })` per lookup, the host's servers.
   */
  resolver?: UpstreamResolver | (() => UpstreamResolver);
  /** Told the addresses of every answer (an EgressPolicy). */
  policy?: LearningPolicy;
  /** Static records: name → addresses (IPv4 for A, IPv6 for AAAA), answered with TTL `hostsTtl`. */
  hosts?: Record<string, string[]>;
  /** TTL in seconds of `hosts` answers. Default 60. */
  hostsTtl?: number;
  /** Names answered NXDOMAIN here, never asked upstream (the gateway's host names while host loopback is off). */
  absent?: string[];
  /** Time for the cache and the policy, ms. Default performance.now(). */
  clock?: { now(): number };
  /** Answers kept, least recently used dropped first; 0 turns the cache off. Default 1000. */
  cacheSize?: number;
  /** Seconds an NXDOMAIN or empty answer is cached (node:dns does not give the SOA minimum). Default 30. */
  negativeTtl?: number;
  /** Seconds at most an answer is cached, whatever its TTL. Default 3600. */
  maxCacheTtl?: number;
  /** Upstream lookups slower than this (ms) are answered SERVFAIL. Default 5000. */
  timeout?: number;
  /** Upstream lookups in flight at most; more get SERVFAIL at once. Default 256. */
  maxPending?: number;
  /** Pass CNAME chains on (one resolveCname per hop, alongside the lookup). Default true. */
  cnames?: boolean;
  /** Serve TCP too. Default true. */
  tcp?: boolean;
  /** ms a TCP connection may sit without a query. Default 10000. */
  tcpIdleTimeout?: number;
}

export interface DnsForwarderCounters {
  /** Well-formed queries, by transport. */
  udp: number;
  tcp: number;
  /** Responses by rcode. */
  noerror: number;
  nxdomain: number;
  servfail: number;
  notimp: number;
  /** Dropped: undecodable, a response, not exactly one question, or over UDP from port 0 (nobody to answer); TCP framing errors. */
  malformed: number;
  /** Answered from the cache, from `hosts`, or by an upstream lookup. */
  cacheHits: number;
  hostsHits: number;
  upstreamLookups: number;
  /** UDP replies sent empty with TC set. */
  truncated: number;
}

/** One 'answer' event per response. */
export interface DnsAnswerEvent {
  name: string;
  type: number;
  rcode: number;
  addresses: string[];
  source: 'cache' | 'hosts' | 'upstream' | 'none';
  transport: 'udp' | 'tcp' | 'direct';
}

/** A resolved question, cacheable: owners null stand for the question's name. */
interface Lookup {
  rcode: number;
  answers: Array<{ name: string | null; type: number; value: string; ttl: number }>;
  /** Names the addresses belong to: the question's, then each CNAME target. */
  names: string[];
  addresses: string[];
  authoritative: boolean;
}

interface CacheEntry {
  lookup: Lookup;
  storedAt: number;
  expires: number;
}

const UDP_BASE = 512;
/** The EDNS(0) payload we offer and accept at most: no IP fragmentation on common paths. */
const EDNS_PAYLOAD = 1232;
const MAX_CNAME_HOPS = 8;
/** Pipelined queries answered at once per TCP connection, and connections at once (RFC 7766 section 6.2.2). */
const TCP_MAX_PENDING = 16;
const TCP_MAX_CONNECTIONS = 128;

/** node:dns's error codes for "no such name" and "no records of that type". */
const NXDOMAIN_CODES: ReadonlySet<string> = new Set(['ENOTFOUND', 'NXDOMAIN']);
const NODATA_CODES: ReadonlySet<string> = new Set(['ENODATA']);

function nonNegative(name: string, value: unknown, fallback: number, integer = false): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !(value >= 0) || !Number.isFinite(value) || (integer && !Number.isInteger(value))) {
    throw invalidOption(name, integer ? 'an integer >= 0' : 'a number >= 0', value);
  }
  return value;
}

function canonicalName(name: string): string {
  const n = name.toLowerCase();
  return n.length > 1 && n.endsWith('.') ? n.slice(0, -1) : n;
}

export class DnsForwarder extends EventEmitter {
  readonly stack: Stack;
  readonly port: number;
  readonly addresses: readonly string[];
  /** Gives the resolver for one upstream lookup. */
  #resolverFor: () => UpstreamResolver;
  /** Resolvers made for lookups still in flight (cancelled on close). */
  #madeResolvers = new Set<UpstreamResolver>();
  #canCname: boolean;
  #policy: LearningPolicy | undefined;
  #hosts = new Map<string, { v4: string[]; v6: string[] }>();
  #absent = new Set<string>();
  #hostsTtl: number;
  #clock: { now(): number };
  #cacheSize: number;
  #negativeTtl: number;
  #maxCacheTtl: number;
  #timeout: number;
  #maxPending: number;
  #cnames: boolean;
  #tcp: boolean;
  #tcpIdle: number;
  #cache = new Map<string, CacheEntry>();
  #inflight = new Map<string, Promise<Lookup>>();
  #udp: UdpSocket[] = [];
  #servers: TcpServer[] = [];
  #conns = new Set<TcpSocket>();
  #closed = false;
  #listening = false;
  #counters: DnsForwarderCounters = {
    udp: 0, tcp: 0, noerror: 0, nxdomain: 0, servfail: 0, notimp: 0,
    malformed: 0, cacheHits: 0, hostsHits: 0, upstreamLookups: 0, truncated: 0,
  };

  constructor(options: DnsForwarderOptions) {
    super();
    if (options === null || typeof options !== 'object') throw invalidOption('options', 'an object', options);
    const { stack } = options;
    if (!stack || typeof stack.createSocket !== 'function' || typeof stack.createServer !== 'function') {
      throw invalidOption('stack', 'a Stack', stack);
    }
    this.stack = stack;
    const addrs = options.address === undefined ? [] : Array.isArray(options.address) ? options.address : [options.address];
    this.addresses = Object.freeze(addrs.map((a, i) => {
      const ip = typeof a === 'string' ? parseIp(a) : null;
      if (!ip) throw invalidOption(Array.isArray(options.address) ? `address[${i}]` : 'address', 'an IP address of the stack', a);
      return formatIp(ip);
    }));
    const port = options.port ?? 53;
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw invalidOption('port', 'an integer from 1 to 65535', options.port);
    this.port = port;
    // c-ares sends the queries of one Resolver that are in flight together
    // from one socket: a sandbox that has the forwarder ask its own name
    // server learns the port a concurrent lookup of another name uses, and
    // a forged answer then needs only the 16-bit ID (RFC 5452 section 9.2).
    // A Resolver per lookup (about 50 us to make) gives each its own
    // socket, on a port the kernel picks at random.
    const given = options.resolver ?? (() => new dnsPromises.Resolver({ timeout: 2000, tries: 2 }));
    const isResolver = (r: unknown): r is UpstreamResolver =>
      r !== null && typeof r === 'object' && typeof (r as UpstreamResolver).resolve4 === 'function' && typeof (r as UpstreamResolver).resolve6 === 'function';
    if (typeof given === 'function') {
      const sample = given();
      if (!isResolver(sample)) throw invalidOption('resolver', 'a function returning an object with resolve4 and resolve6', given);
      this.#canCname = typeof sample.resolveCname === 'function';
      sample.cancel?.();
      this.#resolverFor = () => {
        const r = given();
        this.#madeResolvers.add(r);
        return r;
      };
    } else {
      if (!isResolver(given)) {
        throw invalidOption('resolver', 'an object with resolve4 and resolve6 (a dns.promises.Resolver), or a function returning one', given);
      }
      this.#canCname = typeof given.resolveCname === 'function';
      this.#resolverFor = () => given;
    }
    if (options.policy !== undefined && (options.policy === null || typeof options.policy.learn !== 'function')) {
      throw invalidOption('policy', 'an object with learn() (an EgressPolicy)', options.policy);
    }
    this.#policy = options.policy;
    if (options.hosts !== undefined) {
      if (options.hosts === null || typeof options.hosts !== 'object' || Array.isArray(options.hosts)) {
        throw invalidOption('hosts', "an object of name → addresses ({ 'host.test': ['10.0.2.2'] })", options.hosts);
      }
      for (const [name, list] of Object.entries(options.hosts)) {
        const key = canonicalName(name);
        if (!/^[a-z0-9_.-]+$/.test(key) || key.startsWith('.') || key.includes('..')) {
          throw invalidOption(`hosts['${name}']`, 'keyed by a DNS name', name);
        }
        if (!Array.isArray(list)) throw invalidOption(`hosts['${name}']`, 'an array of addresses', list);
        const entry = this.#hosts.get(key) ?? { v4: [], v6: [] };
        list.forEach((a, i) => {
          const ip = typeof a === 'string' ? parseIp(a) : null;
          if (!ip || ip.zone !== 0) throw invalidOption(`hosts['${name}'][${i}]`, 'an IP address', a);
          (ip.family === 4 ? entry.v4 : entry.v6).push(formatIp(ip));
        });
        this.#hosts.set(key, entry);
      }
    }
    if (options.absent !== undefined) {
      if (!Array.isArray(options.absent) || options.absent.some((n) => typeof n !== 'string')) throw invalidOption('absent', 'an array of DNS names', options.absent);
      for (const name of options.absent) this.#absent.add(canonicalName(name));
    }
    this.#hostsTtl = nonNegative('hostsTtl', options.hostsTtl, 60, true);
    const clock = options.clock ?? { now: () => performance.now() };
    if (clock === null || typeof clock !== 'object' || typeof clock.now !== 'function') throw invalidOption('clock', 'an object with now()', clock);
    this.#clock = clock;
    this.#cacheSize = nonNegative('cacheSize', options.cacheSize, 1000, true);
    this.#negativeTtl = nonNegative('negativeTtl', options.negativeTtl, 30);
    this.#maxCacheTtl = nonNegative('maxCacheTtl', options.maxCacheTtl, 3600);
    this.#timeout = nonNegative('timeout', options.timeout, 5000);
    if (this.#timeout === 0) throw invalidOption('timeout', 'a number of ms > 0', options.timeout);
    this.#maxPending = nonNegative('maxPending', options.maxPending, 256, true);
    if (this.#maxPending === 0) throw invalidOption('maxPending', 'an integer >= 1', options.maxPending);
    for (const flag of ['cnames', 'tcp'] as const) {
      if (options[flag] !== undefined && typeof options[flag] !== 'boolean') throw invalidOption(flag, 'a boolean', options[flag]);
    }
    this.#cnames = options.cnames ?? true;
    this.#tcp = options.tcp ?? true;
    this.#tcpIdle = nonNegative('tcpIdleTimeout', options.tcpIdleTimeout, 10_000);
  }

  get counters(): DnsForwarderCounters {
    return { ...this.#counters };
  }

  /** Binds UDP (and listens on TCP) on each address; rejects if a port is taken. */
  async listen(): Promise<void> {
    if (this.#closed) throw Object.assign(new Error('DnsForwarder is closed'), { code: 'ERR_SERVER_NOT_RUNNING' });
    if (this.#listening) throw Object.assign(new Error('DnsForwarder is already listening'), { code: 'ERR_SERVER_ALREADY_LISTEN' });
    this.#listening = true;
    const udpTargets: Array<{ type: 'udp4' | 'udp6'; address?: string }> = this.addresses.length === 0
      ? [{ type: 'udp4', address: '0.0.0.0' }, { type: 'udp6', address: '::' }] // typed wildcards: lwIP's untyped one would take both families
      : this.addresses.map((address) => ({ type: isIP(address) === 6 ? 'udp6' : 'udp4', address }));
    const tcpTargets: Array<string | undefined> = this.addresses.length === 0 ? [undefined] : [...this.addresses];
    try {
      for (const t of udpTargets) {
        const sock = this.stack.createSocket(t.type);
        this.#udp.push(sock);
        sock.on('message', (msg: Buffer, rinfo: RemoteInfo) => this.#onUdp(sock, msg, rinfo));
        await new Promise<void>((resolve, reject) => {
          sock.once('error', reject);
          sock.bind(this.port, t.address, () => {
            sock.off('error', reject);
            resolve();
          });
        });
        sock.on('error', () => undefined); // send failures reach the callbacks; nothing else to report
      }
      if (this.#tcp) {
        for (const host of tcpTargets) {
          // Half-open: a client may send its queries and FIN before the answers are ready.
          const server = this.stack.createServer({ allowHalfOpen: true }, (socket) => this.#onTcp(socket));
          this.#servers.push(server);
          await new Promise<void>((resolve, reject) => {
            server.once('error', reject);
            server.listen({ port: this.port, host }, () => {
              server.off('error', reject);
              resolve();
            });
          });
        }
      }
    } catch (err) {
      await this.close();
      throw err;
    }
  }

  /** Stops serving, resets open TCP connections, forgets the cache. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const c of this.#conns) c.destroy();
    this.#conns.clear();
    const closing: Array<Promise<void>> = [];
    for (const s of this.#udp.splice(0)) closing.push(new Promise((r) => s.close(() => r())));
    for (const s of this.#servers.splice(0)) {
      if (s.listening) closing.push(new Promise((r) => s.close(() => r())));
    }
    this.#cache.clear();
    for (const r of this.#madeResolvers) r.cancel?.();
    this.#madeResolvers.clear();
    await Promise.all(closing);
  }

  /**
   * Answers one query message (no transport framing); null when it is
   * dropped. `maxSize` caps the reply (default 512 for UDP, else 65535;
   * raised to the client's EDNS payload size up to 1232); over it the reply
   * is sent empty with TC set. The sockets call this; a gateway may too.
   */
  async respond(query: Uint8Array, options: { maxSize?: number; transport?: 'udp' | 'tcp' | 'direct' } = {}): Promise<Uint8Array | null> {
    const transport = options.transport ?? 'direct';
    if (!(query instanceof Uint8Array)) throw invalidOption('query', 'a Uint8Array', query);
    if (options.maxSize !== undefined && !(Number.isInteger(options.maxSize) && options.maxSize >= UDP_BASE && options.maxSize <= 0xffff)) {
      throw invalidOption('maxSize', 'an integer from 512 to 65535', options.maxSize);
    }
    const msg = decodeDnsMessage(query);
    if (!msg || msg.qr || msg.questions.length !== 1) {
      this.#counters.malformed++;
      return null;
    }
    if (transport === 'udp') this.#counters.udp++;
    else if (transport === 'tcp') this.#counters.tcp++;
    const q = msg.questions[0]!;
    const opt = msg.additionals.find((r) => r.type === DnsType.OPT);
    let maxSize = options.maxSize ?? (transport === 'udp' ? UDP_BASE : 0xffff);
    // The requestor's payload size is the OPT record's class (RFC 6891 section 6.2.3).
    if (opt && maxSize < EDNS_PAYLOAD) maxSize = Math.max(maxSize, Math.min(opt.class, EDNS_PAYLOAD));
    const additionals: DnsRecordInit[] = opt ? [{ name: '.', type: DnsType.OPT, class: EDNS_PAYLOAD, ttl: 0, data: new Uint8Array(0) }] : [];

    let lookup: Lookup;
    let source: DnsAnswerEvent['source'] = 'none';
    const supported = q.type === DnsType.A || q.type === DnsType.AAAA || (q.type === DnsType.CNAME && this.#cnames && this.#canCname);
    if (msg.opcode !== 0 || q.class !== DnsClass.IN || !supported) {
      lookup = { rcode: DnsRcode.NotImp, answers: [], names: [], addresses: [], authoritative: false };
    } else {
      const r = await this.#lookup(q.name, q.type);
      lookup = r.lookup;
      source = r.source;
    }
    if (this.#closed) return null;

    let reply = this.#encode(msg, lookup, additionals);
    if (reply.length > maxSize) {
      this.#counters.truncated++;
      reply = encodeDnsResponse(msg, [], { rcode: lookup.rcode, authoritative: lookup.authoritative, additionals });
      reply[2]! |= 0x02; // TC (RFC 1035 section 4.1.1)
    }
    const rcodeName = ({ [DnsRcode.NoError]: 'noerror', [DnsRcode.NXDomain]: 'nxdomain', [DnsRcode.ServFail]: 'servfail', [DnsRcode.NotImp]: 'notimp' } as const)[lookup.rcode];
    if (rcodeName) this.#counters[rcodeName]++;
    if (this.listenerCount('answer') > 0) {
      const event: DnsAnswerEvent = { name: q.name, type: q.type, rcode: lookup.rcode, addresses: lookup.addresses, source, transport };
      this.emit('answer', event);
    }
    return reply;
  }

  #encode(msg: DnsMessage, lookup: Lookup, additionals: DnsRecordInit[]): Uint8Array {
    try {
      return encodeDnsResponse(
        msg,
        lookup.answers.map((a) => ({ ...(a.name === null ? {} : { name: a.name }), type: a.type, value: a.value, ttl: a.ttl })),
        { rcode: lookup.rcode, authoritative: lookup.authoritative, additionals },
      );
    } catch {
      // An upstream value we cannot encode (a name over 255 bytes, too many records).
      return encodeDnsResponse(msg, [], { rcode: DnsRcode.ServFail, additionals });
    }
  }

  /** Hosts, then the cache, then one shared upstream lookup. TTLs are counted down. */
  async #lookup(name: string, type: number): Promise<{ lookup: Lookup; source: DnsAnswerEvent['source'] }> {
    const key = `${type}/${canonicalName(name)}`;
    const now = this.#clock.now();
    const host = this.#hosts.get(canonicalName(name));
    if (host) {
      this.#counters.hostsHits++;
      const list = type === DnsType.A ? host.v4 : type === DnsType.AAAA ? host.v6 : [];
      const lookup: Lookup = {
        rcode: DnsRcode.NoError,
        answers: list.map((value) => ({ name: null, type, value, ttl: this.#hostsTtl })),
        names: [canonicalName(name)],
        addresses: list,
        authoritative: true,
      };
      this.#learn(lookup, this.#hostsTtl, now);
      return { lookup, source: 'hosts' };
    }
    if (this.#absent.has(canonicalName(name))) {
      this.#counters.hostsHits++;
      return { lookup: { rcode: DnsRcode.NXDomain, answers: [], names: [], addresses: [], authoritative: true }, source: 'hosts' };
    }
    const cached = this.#cache.get(key);
    if (cached && cached.expires > now) {
      this.#counters.cacheHits++;
      this.#cache.delete(key); // most recently used last
      this.#cache.set(key, cached);
      const elapsed = Math.floor((now - cached.storedAt) / 1000);
      const lookup: Lookup = { ...cached.lookup, answers: cached.lookup.answers.map((a) => ({ ...a, ttl: Math.max(0, a.ttl - elapsed) })) };
      this.#learn(lookup, minTtl(lookup), now);
      return { lookup, source: 'cache' };
    }
    if (cached) this.#cache.delete(key);

    let pending = this.#inflight.get(key);
    if (!pending) {
      if (this.#inflight.size >= this.#maxPending) {
        return { lookup: { rcode: DnsRcode.ServFail, answers: [], names: [], addresses: [], authoritative: false }, source: 'none' };
      }
      this.#counters.upstreamLookups++;
      pending = this.#upstream(name, type).finally(() => this.#inflight.delete(key));
      this.#inflight.set(key, pending);
      pending.then((lookup) => this.#store(key, lookup), () => undefined);
    }
    const lookup = await pending;
    this.#learn(lookup, minTtl(lookup), this.#clock.now());
    return { lookup, source: 'upstream' };
  }

  #learn(lookup: Lookup, ttl: number, now: number): void {
    if (!this.#policy || lookup.addresses.length === 0) return;
    for (const name of lookup.names) this.#policy.learn(name, lookup.addresses, ttl, now);
  }

  #store(key: string, lookup: Lookup): void {
    if (this.#cacheSize === 0 || this.#closed) return;
    let ttl: number;
    if (lookup.rcode === DnsRcode.NXDomain || (lookup.rcode === DnsRcode.NoError && lookup.answers.length === 0)) ttl = this.#negativeTtl;
    else if (lookup.rcode === DnsRcode.NoError) ttl = Math.min(minTtl(lookup), this.#maxCacheTtl);
    else return; // failures are asked again
    if (ttl <= 0) return;
    const now = this.#clock.now();
    this.#cache.delete(key);
    this.#cache.set(key, { lookup, storedAt: now, expires: now + ttl * 1000 });
    while (this.#cache.size > this.#cacheSize) this.#cache.delete(this.#cache.keys().next().value!);
  }

  /** Asks the resolver, within `timeout`; maps its errors to rcodes. */
  async #upstream(name: string, type: number): Promise<Lookup> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(Object.assign(new Error('upstream timeout'), { code: 'ETIMEOUT' })), this.#timeout);
    });
    const resolver = this.#resolverFor();
    try {
      return await Promise.race([this.#ask(resolver, name, type), deadline]);
    } catch (err) {
      const code = (err as { code?: unknown } | null)?.code;
      const base = { answers: [], names: [], addresses: [], authoritative: false };
      if (typeof code === 'string' && NXDOMAIN_CODES.has(code)) return { rcode: DnsRcode.NXDomain, ...base };
      if (typeof code === 'string' && NODATA_CODES.has(code)) return { rcode: DnsRcode.NoError, ...base };
      return { rcode: DnsRcode.ServFail, ...base };
    } finally {
      clearTimeout(timer);
      if (this.#madeResolvers.delete(resolver)) resolver.cancel?.();
    }
  }

  async #ask(r: UpstreamResolver, name: string, type: number): Promise<Lookup> {
    if (type === DnsType.CNAME) {
      const targets = await r.resolveCname!(name);
      // node:dns gives no TTL for CNAMEs; the negative TTL keeps them short-lived.
      return {
        rcode: DnsRcode.NoError,
        answers: targets.map((value) => ({ name: null, type, value, ttl: this.#negativeTtl })),
        names: [],
        addresses: [],
        authoritative: false,
      };
    }
    const records = type === DnsType.A ? r.resolve4(name, { ttl: true }) : r.resolve6(name, { ttl: true });
    const chain = this.#cnames && r.resolveCname ? this.#chain(r, name) : Promise.resolve([]);
    const [found, targets] = await Promise.all([records, chain]);
    const ttl = found.reduce((m, a) => Math.min(m, a.ttl), Infinity);
    const answers: Lookup['answers'] = [];
    let owner: string | null = null;
    for (const target of targets) {
      answers.push({ name: owner, type: DnsType.CNAME, value: target, ttl: Number.isFinite(ttl) ? ttl : this.#negativeTtl });
      owner = target;
    }
    for (const a of found) answers.push({ name: owner, type, value: a.address, ttl: a.ttl });
    return {
      rcode: DnsRcode.NoError,
      answers,
      names: [canonicalName(name), ...targets.map(canonicalName)],
      addresses: found.map((a) => a.address),
      authoritative: false,
    };
  }

  /** The CNAME chain from `name`; empty when there is none or it cannot be read. */
  async #chain(r: UpstreamResolver, name: string): Promise<string[]> {
    const out: string[] = [];
    const seen = new Set([canonicalName(name)]);
    let current = name;
    for (let hop = 0; hop < MAX_CNAME_HOPS; hop++) {
      let targets: string[];
      try {
        targets = await r.resolveCname!(current);
      } catch (err) {
        const code = (err as { code?: unknown } | null)?.code;
        // The end of the chain; anything else makes the chain untrustworthy.
        return typeof code === 'string' && (NODATA_CODES.has(code) || NXDOMAIN_CODES.has(code)) ? out : [];
      }
      const next = targets[0];
      if (next === undefined) return out;
      if (seen.has(canonicalName(next))) return []; // a loop
      seen.add(canonicalName(next));
      out.push(next);
      current = next;
    }
    return [];
  }

  // ---------------------------------------------------------------- transports

  #onUdp(sock: UdpSocket, msg: Buffer, rinfo: RemoteInfo): void {
    if (this.#closed) return;
    // Source port 0 means "no reply" (RFC 768), and send() throws for it: the
    // fuzzer's query from port 0 became an unhandled rejection. Not a query
    // anyone can be answered for, so it counts as malformed.
    if (rinfo.port === 0) {
      this.#counters.malformed++;
      return;
    }
    // Copy: the message may be a view that is reused once this call returns.
    const query = Uint8Array.from(msg);
    void this.respond(query, { transport: 'udp' }).then((reply) => {
      if (reply && !this.#closed) sock.send(reply, rinfo.port, rinfo.address, () => undefined);
    });
  }

  #onTcp(socket: TcpSocket): void {
    if (this.#closed || this.#conns.size >= TCP_MAX_CONNECTIONS) {
      socket.destroy();
      return;
    }
    this.#conns.add(socket);
    let buffered = Buffer.alloc(0);
    let pending = 0;
    let ended = false;
    /** Starts the framed queries buffered, at most TCP_MAX_PENDING at once; a full pipeline pauses reading (the TCP window closes). */
    const pump = () => {
      if (socket.destroyed) return;
      while (buffered.length >= 2 && pending < TCP_MAX_PENDING) {
        const len = buffered.readUInt16BE(0);
        if (len < 12) {
          // Not even a header: the stream cannot be resynchronised.
          this.#counters.malformed++;
          socket.destroy();
          return;
        }
        if (buffered.length < 2 + len) break;
        const query = buffered.subarray(2, 2 + len);
        buffered = buffered.subarray(2 + len);
        pending++;
        void this.respond(query, { transport: 'tcp' }).then((reply) => {
          pending--;
          if (reply && !socket.destroyed && !this.#closed) {
            const framed = Buffer.allocUnsafe(2 + reply.length);
            framed.writeUInt16BE(reply.length, 0);
            framed.set(reply, 2);
            socket.write(framed);
          }
          pump();
        });
      }
      if (pending >= TCP_MAX_PENDING) socket.pause();
      else if (socket.isPaused() && !ended) socket.resume();
      // After the client's FIN: answer what was asked, then close our side.
      if (ended && pending === 0 && !socket.destroyed) socket.end();
    };
    if (this.#tcpIdle > 0) {
      socket.setTimeout(this.#tcpIdle);
      socket.on('timeout', () => {
        if (pending === 0) socket.destroy();
      });
    }
    socket.on('error', () => undefined);
    socket.on('close', () => this.#conns.delete(socket));
    socket.on('end', () => {
      ended = true;
      pump();
    });
    socket.on('data', (chunk: Buffer) => {
      buffered = buffered.length === 0 ? Buffer.from(chunk) : Buffer.concat([buffered, chunk]);
      pump();
    });
  }
}

function minTtl(lookup: Lookup): number {
  let ttl = Infinity;
  for (const a of lookup.answers) ttl = Math.min(ttl, a.ttl);
  return Number.isFinite(ttl) ? ttl : 0;
}
