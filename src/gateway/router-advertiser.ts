/**
 * Router advertisements for the sandbox's IPv6 (RFC 4861 section 6.2), so a
 * guest configures itself by SLAAC (RFC 4862): an on-link, autonomous /64
 * prefix, the gateway's link-local address as default router, the MTU and
 * the DNS server (RFC 8106 RDNSS).
 *
 * Sent to all-nodes (ff02::1) from the interface's link-local address with
 * hop limit 255 (section 6.1.2): a few at start (at most
 * MAX_INITIAL_RTR_ADVERTISEMENTS, MAX_INITIAL_RTR_ADVERT_INTERVAL apart,
 * section 6.2.4), then every MinRtrAdvInterval..MaxRtrAdvInterval, and in
 * answer to a router solicitation after a random delay up to
 * MAX_RA_DELAY_TIME, never closer than MIN_DELAY_BETWEEN_RAS to the last
 * one (section 6.2.6). stop() sends one more with router lifetime 0 so
 * hosts drop the default route at once (section 6.2.5).
 *
 * Timers run on the stack's Clock.
 */
import type { Clock } from '../core/clock.js';
import type { Interface } from '../core/interface.js';
import type { Stack } from '../core/stack.js';
import { parseIp, parseMac, type IpAddress, type IpPrefix } from '../wire/address.js';
import { IpProtocol } from '../wire/ipv4.js';
import { buildRouterAdvertisement, type RouterAdvertisement } from '../wire/ndp.js';

/** RFC 4861 section 6.2.1 defaults and section 10 constants, in ms. */
const MAX_RTR_ADV_INTERVAL = 600_000;
const MIN_RTR_ADV_INTERVAL = 200_000;
const MAX_INITIAL_RTR_ADVERT_INTERVAL = 16_000;
const MAX_INITIAL_RTR_ADVERTISEMENTS = 3;
const MAX_RA_DELAY_TIME = 500;
const MIN_DELAY_BETWEEN_RAS = 3_000;
/** Seconds: 3 × MaxRtrAdvInterval (section 6.2.1); RDNSS the same (RFC 8106 section 5.1). */
const ROUTER_LIFETIME = 1800;
/** Seconds, radvd's defaults (AdvValidLifetime, AdvPreferredLifetime). */
const VALID_LIFETIME = 86_400;
const PREFERRED_LIFETIME = 14_400;
const ALL_NODES = parseIp('ff02::1')!;

export interface RouterAdvertiserOptions {
  /** The on-link, autonomous prefix (a /64 for SLAAC on Ethernet). */
  prefix: IpPrefix;
  /** Recursive DNS servers to advertise. */
  dns: IpAddress[];
  mtu: number;
  /** Draws the random parts of the schedule; default Math.random. */
  random?: () => number;
}

export interface RouterAdvertiserCounters {
  /** Advertisements sent (periodic, solicited and the final one). */
  sent: number;
  /** Router solicitations answered (several may share one advertisement). */
  solicitations: number;
}

export class RouterAdvertiser {
  readonly counters: RouterAdvertiserCounters = { sent: 0, solicitations: 0 };
  readonly #stack: Stack;
  readonly #iface: Interface;
  readonly #clock: Clock;
  readonly #options: RouterAdvertiserOptions;
  readonly #random: () => number;
  readonly #mac: Uint8Array;
  #timer: unknown = null;
  /** When the next advertisement is due (clock ms). */
  #due = Infinity;
  #lastSent = -Infinity;
  #initialLeft = MAX_INITIAL_RTR_ADVERTISEMENTS;
  #running = false;

  constructor(stack: Stack, iface: Interface, options: RouterAdvertiserOptions) {
    const mac = iface.mac === null ? null : parseMac(iface.mac);
    if (!mac) throw new TypeError('router advertisements need an Ethernet interface');
    this.#stack = stack;
    this.#iface = iface;
    this.#clock = stack.clock;
    this.#options = options;
    this.#random = options.random ?? Math.random;
    this.#mac = mac;
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#schedule(0);
  }

  /** A valid router solicitation arrived: advertise soon (section 6.2.6). */
  solicited(): void {
    if (!this.#running) return;
    this.counters.solicitations++;
    this.advertiseSoon();
  }

  /**
   * Advertise soon, as for a solicitation: after the link's other end was
   * configured to listen, say (its hosts need not solicit again).
   */
  advertiseSoon(): void {
    if (!this.#running) return;
    const now = this.#clock.now();
    const at = Math.max(now + this.#random() * MAX_RA_DELAY_TIME, this.#lastSent + MIN_DELAY_BETWEEN_RAS);
    if (at < this.#due) this.#schedule(at - now);
  }

  /**
   * The link's other end has just begun to listen (a TAP whose namespace
   * was configured after the stack started, a guest that booted): what was
   * sent before went unheard, so advertising starts over as on a new
   * advertising interface (section 6.2.4), with the first one at once
   * rather than up to MIN_DELAY_BETWEEN_RAS after the unheard one. A host
   * then has its SLAAC address within one exchange instead of seconds.
   */
  linkUp(): void {
    if (!this.#running) return;
    this.#initialLeft = MAX_INITIAL_RTR_ADVERTISEMENTS;
    this.#lastSent = -Infinity;
    this.#schedule(0);
  }

  /** Stops advertising, with a last advertisement that withdraws the default route. */
  stop(): void {
    if (!this.#running) return;
    this.#running = false;
    if (this.#timer !== null) this.#clock.cancelTimer(this.#timer);
    this.#timer = null;
    this.#send(0);
  }

  #schedule(delay: number): void {
    if (this.#timer !== null) this.#clock.cancelTimer(this.#timer);
    this.#due = this.#clock.now() + delay;
    this.#timer = this.#clock.setTimer(() => this.#fire(), delay);
  }

  #fire(): void {
    this.#timer = null;
    if (!this.#running) return;
    this.#send(ROUTER_LIFETIME);
    let next = MIN_RTR_ADV_INTERVAL + this.#random() * (MAX_RTR_ADV_INTERVAL - MIN_RTR_ADV_INTERVAL);
    if (this.#initialLeft > 0) {
      this.#initialLeft--;
      if (this.#initialLeft > 0) next = Math.min(next, MAX_INITIAL_RTR_ADVERT_INTERVAL);
    }
    this.#schedule(next);
  }

  /** The advertisement this router sends, with `routerLifetime` seconds. */
  advertisement(routerLifetime = ROUTER_LIFETIME): RouterAdvertisement {
    const { prefix, dns, mtu } = this.#options;
    return {
      curHopLimit: 64,
      managed: false,
      other: false,
      routerLifetime,
      reachableTime: 0,
      retransTimer: 0,
      sourceLinkLayerAddress: this.#mac,
      mtu,
      prefixes: [{
        prefix: prefix.address, prefixLength: prefix.prefixLength, onLink: true, autonomous: true,
        validLifetime: VALID_LIFETIME, preferredLifetime: PREFERRED_LIFETIME,
      }],
      ...(dns.length > 0 ? { dnsServers: { lifetime: ROUTER_LIFETIME, servers: dns } } : {}),
    };
  }

  #send(routerLifetime: number): void {
    if (this.#iface.removed) return;
    const linkLocal = this.#iface.ipv6.find((a) => a.address.startsWith('fe80:') && a.state !== 'invalid' && a.state !== 'duplicated');
    const parsed = linkLocal ? parseIp(linkLocal.address) : null;
    if (!parsed) return; // not yet (or no longer) an address to advertise from
    const src: IpAddress = { ...parsed, zone: this.#iface.index };
    const dst: IpAddress = { ...ALL_NODES, zone: this.#iface.index };
    const message = buildRouterAdvertisement(this.advertisement(routerLifetime), { src, dst });
    try {
      if (this.#stack.gatewayIpSend(this.#iface, message, src, dst, IpProtocol.ICMPv6, 255) === 0) {
        this.counters.sent++;
        this.#lastSent = this.#clock.now();
      }
    } catch {
      // The stack closed under us: nothing to advertise any more.
    }
  }
}
