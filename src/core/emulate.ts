/**
 * Link emulation: a wrapper for any link that impairs the frames crossing
 * it, each direction on its own, as Linux's netem (and, for the rate, tbf)
 * does: delay with jitter drawn from a distribution, loss (random, or in
 * Gilbert–Elliott bursts), duplication, bit corruption, reordering, and a
 * rate limit in front of a bounded queue that drops at its tail.
 *
 * A state machine over frames and time: every random draw comes from a
 * seeded generator (xoshiro128**), one per direction, and every time from
 * the injected Clock, so the same seed and a ManualClock give the same
 * schedule of frames exactly. Frames that leave at once (nothing configured
 * that holds them) are passed on as the views they came as, without a
 * copy; held frames are copied, as the Link contract requires.
 *
 * Where this differs from netem: probabilities are fractions (0.05), not
 * percentages; delay and jitter are milliseconds with sub-millisecond
 * resolution as far as the clock has it (a real clock's timers fire in
 * whole milliseconds, so held frames leave in bursts at most 1 ms apart);
 * there is no correlation parameter for delay, loss, duplication or
 * corruption (netem's are known to be broken, and were removed from its
 * documentation); the rate counts the frame's bytes as given (no Ethernet
 * preamble or FCS, like netem without `overhead`); `queueLimit` counts
 * frames (netem's `limit`, default 1000), held for delay or rate alike.
 */
import { type Clock, realClock } from './clock.js';
import { invalidOption } from './errors.js';
import type { FrameReceiver, Link, LinkCapabilities, Medium } from './link.js';

/** netem's `loss gemodel p r 1-h 1-k`. */
export interface GilbertElliott {
  /** Probability of moving from the good state to the bad one, per frame. */
  p: number;
  /** Probability of moving from the bad state back to the good one, per frame. Default 1 − p. */
  r?: number;
  /** Probability a frame is lost in the bad state (netem's 1 − h). Default 1. */
  lossBad?: number;
  /** Probability a frame is lost in the good state (netem's 1 − k). Default 0. */
  lossGood?: number;
}

export type DelayDistribution = 'uniform' | 'normal' | 'pareto' | 'paretonormal';

/** What one direction does to its frames. Every field defaults to off. */
export interface Impairment {
  /** Milliseconds each frame is held. */
  delay?: number;
  /** Milliseconds of spread around `delay`: ± jitter for 'uniform', the standard deviation otherwise. */
  jitter?: number;
  /** How the jitter is drawn. Default 'uniform' (netem without a table). */
  distribution?: DelayDistribution;
  /** Fraction of frames lost at random (0.05 = 5 %), or a Gilbert–Elliott burst model. */
  loss?: number | GilbertElliott;
  /** Fraction of frames sent twice (the copy goes through loss, corruption and delay on its own). */
  duplicate?: number;
  /** Fraction of frames sent at once, ahead of the delayed ones (needs `delay`; netem's `reorder`). */
  reorder?: number;
  /** With reorder: at most every `reorderGap`-th frame jumps ahead (netem's `gap`). Default 1. */
  reorderGap?: number;
  /** Fraction of frames with one bit flipped at a random position. */
  corrupt?: number;
  /** Bits per second the direction carries; frames queue behind one another. 0: no limit. */
  rate?: number;
  /** Most frames held at once; a frame arriving to a full queue is dropped. Default 1000. */
  queueLimit?: number;
}

export interface EmulateOptions extends Impairment {
  /** Seed for the random draws (an integer). Default: drawn at random; see `link.seed`. */
  seed?: number;
  /** Time source; a ManualClock makes the schedule exactly repeatable. Default the real clock. */
  clock?: Clock;
  /** Frames the wrapped side sends (the stack's output): these fields replace the shared ones. */
  egress?: Impairment;
  /** Frames the wrapped side receives (the link's input to the stack): these fields replace the shared ones. */
  ingress?: Impairment;
}

export interface EmulationCounters {
  /** Frames that came in. */
  frames: number;
  /** Frames passed on (duplicates included). */
  delivered: number;
  lost: number;
  duplicated: number;
  corrupted: number;
  /** Frames sent ahead of the queue by `reorder`. */
  reordered: number;
  /** Frames dropped because the queue held `queueLimit` frames. */
  queueDropped: number;
  /** Frames held now. */
  queued: number;
}

export type Direction = 'egress' | 'ingress';

interface Settings {
  delay: number;
  jitter: number;
  distribution: DelayDistribution;
  loss: number;
  ge: Required<GilbertElliott> | null;
  duplicate: number;
  reorder: number;
  reorderGap: number;
  corrupt: number;
  /** Milliseconds per byte; 0 without a rate. */
  msPerByte: number;
  rate: number;
  queueLimit: number;
  /** Nothing set: frames pass straight through. */
  idle: boolean;
}

function checkFraction(v: unknown, name: string): number {
  if (v === undefined) return 0;
  if (typeof v !== 'number' || !(v >= 0 && v <= 1)) throw invalidOption(name, 'a fraction from 0 to 1', v);
  return v;
}

function checkMs(v: unknown, name: string): number {
  if (v === undefined) return 0;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw invalidOption(name, 'a number of milliseconds, 0 or more', v);
  return v;
}

function settingsOf(i: Impairment, where: string): Settings {
  if (i === null || typeof i !== 'object') throw invalidOption(where || 'options', 'an object', i);
  const n = (f: string) => (where ? `${where}.${f}` : f);
  const distribution = i.distribution ?? 'uniform';
  if (!['uniform', 'normal', 'pareto', 'paretonormal'].includes(distribution)) {
    throw invalidOption(n('distribution'), "'uniform', 'normal', 'pareto' or 'paretonormal'", distribution);
  }
  let loss = 0;
  let ge: Required<GilbertElliott> | null = null;
  if (typeof i.loss === 'object' && i.loss !== null) {
    const p = checkFraction(i.loss.p, n('loss.p'));
    ge = {
      p,
      r: i.loss.r === undefined ? 1 - p : checkFraction(i.loss.r, n('loss.r')),
      lossBad: i.loss.lossBad === undefined ? 1 : checkFraction(i.loss.lossBad, n('loss.lossBad')),
      lossGood: checkFraction(i.loss.lossGood, n('loss.lossGood')),
    };
  } else {
    loss = checkFraction(i.loss, n('loss'));
  }
  const rate = i.rate ?? 0;
  if (typeof rate !== 'number' || !Number.isFinite(rate) || rate < 0) throw invalidOption(n('rate'), 'bits per second, 0 (no limit) or more', rate);
  const queueLimit = i.queueLimit ?? 1000;
  if (!Number.isInteger(queueLimit) || queueLimit < 1) throw invalidOption(n('queueLimit'), 'a positive integer (frames)', queueLimit);
  const reorderGap = i.reorderGap ?? 1;
  if (!Number.isInteger(reorderGap) || reorderGap < 1) throw invalidOption(n('reorderGap'), 'a positive integer', reorderGap);
  const delay = checkMs(i.delay, n('delay'));
  const reorder = checkFraction(i.reorder, n('reorder'));
  if (reorder > 0 && delay === 0) throw invalidOption(n('reorder'), 'used with a delay (frames jump ahead of delayed ones, as in netem)', reorder);
  const jitter = checkMs(i.jitter, n('jitter'));
  const duplicate = checkFraction(i.duplicate, n('duplicate'));
  const corrupt = checkFraction(i.corrupt, n('corrupt'));
  return {
    idle: delay === 0 && jitter === 0 && loss === 0 && ge === null && duplicate === 0 && reorder === 0 && corrupt === 0 && rate === 0,
    delay,
    jitter,
    distribution,
    loss,
    ge,
    duplicate,
    reorder,
    reorderGap,
    corrupt,
    msPerByte: rate > 0 ? 8000 / rate : 0,
    rate,
    queueLimit,
  };
}

/** xoshiro128** (Blackman and Vigna), seeded through splitmix32: small, fast, and the same everywhere. */
class Random {
  #s = new Uint32Array(4);
  #spare: number | null = null;

  constructor(seed: number) {
    let x = seed >>> 0;
    for (let i = 0; i < 4; i++) {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      this.#s[i] = (z ^ (z >>> 16)) >>> 0;
    }
  }

  /** A uniform 32-bit integer. */
  u32(): number {
    const s = this.#s;
    const result = Math.imul(rotl(Math.imul(s[1]!, 5), 7), 9) >>> 0;
    const t = s[1]! << 9;
    s[2]! ^= s[0]!;
    s[3]! ^= s[1]!;
    s[1]! ^= s[2]!;
    s[0]! ^= s[3]!;
    s[2]! ^= t;
    s[3] = rotl(s[3]!, 11);
    return result;
  }

  /** Uniform in [0, 1). */
  next(): number {
    return this.u32() / 0x1_0000_0000;
  }

  /** A standard normal variate (Marsaglia's polar method, the spare kept). */
  normal(): number {
    if (this.#spare !== null) {
      const v = this.#spare;
      this.#spare = null;
      return v;
    }
    for (;;) {
      const u = 2 * this.next() - 1;
      const v = 2 * this.next() - 1;
      const s = u * u + v * v;
      if (s > 0 && s < 1) {
        const m = Math.sqrt((-2 * Math.log(s)) / s);
        this.#spare = v * m;
        return u * m;
      }
    }
  }

  /** Pareto with shape 3 (netem's table), shifted and scaled to mean 0 and deviation 1. */
  pareto(): number {
    const x = Math.pow(1 - this.next(), -1 / 3); // minimum 1, mean 1.5, deviation √3/2
    return (x - 1.5) / 0.8660254037844386;
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

interface Held {
  at: number;
  seq: number;
  frame: Uint8Array;
}

/** One direction: its settings, generator, queue (netem's tfifo: ordered by departure time) and timer. */
class Lane {
  readonly counters: EmulationCounters = { frames: 0, delivered: 0, lost: 0, duplicated: 0, corrupted: 0, reordered: 0, queueDropped: 0, queued: 0 };
  settings: Settings;
  readonly #rng: Random;
  readonly #queue: Held[] = [];
  #seq = 0;
  #gapCounter = 0;
  #bad = false;
  #timer: unknown = null;
  #timerAt = Infinity;
  closed = false;

  constructor(readonly clock: Clock, settings: Settings, seed: number, readonly out: (frame: Uint8Array) => void, readonly afterBurst: () => void) {
    this.settings = settings;
    this.#rng = new Random(seed);
  }

  set(settings: Settings): void {
    if (settings.ge === null || this.settings.ge === null) this.#bad = false;
    this.settings = settings;
  }

  #lost(): boolean {
    const s = this.settings;
    const ge = s.ge;
    if (ge) {
      // As netem's loss_gilb_ell: the state moves first, then the loss is
      // drawn with the probability of the state the frame found.
      if (!this.#bad) {
        if (this.#rng.next() < ge.p) this.#bad = true;
        return ge.lossGood > 0 && this.#rng.next() < ge.lossGood;
      }
      if (this.#rng.next() < ge.r) this.#bad = false;
      return ge.lossBad > 0 && this.#rng.next() < ge.lossBad;
    }
    return s.loss > 0 && this.#rng.next() < s.loss;
  }

  input(frame: Uint8Array): void {
    if (this.closed) return;
    const s = this.settings;
    this.counters.frames++;
    if (s.idle) {
      // Nothing set: the wrapper costs a counter and a call.
      this.counters.delivered++;
      this.out(frame);
      return;
    }
    let count = 1;
    if (s.duplicate > 0 && this.#rng.next() < s.duplicate) count++;
    if (this.#lost()) count--;
    if (count === 0) {
      this.counters.lost++;
      return;
    }
    if (count === 2) {
      // netem sends the copy through the whole qdisc again, duplication off.
      this.counters.duplicated++;
      if (this.#lost()) this.counters.lost++;
      else this.#enqueue(frame);
    }
    this.#enqueue(frame);
  }

  #enqueue(frame: Uint8Array): void {
    const s = this.settings;
    const c = this.counters;
    let f = frame;
    if (s.corrupt > 0 && this.#rng.next() < s.corrupt && f.length > 0) {
      f = frame.slice();
      const bit = this.#rng.u32() % (f.length * 8);
      f[bit >>> 3]! ^= 1 << (bit & 7);
      c.corrupted++;
    }
    const q = this.#queue;
    if (q.length >= s.queueLimit) {
      c.queueDropped++;
      return;
    }
    if (s.delay === 0 && s.jitter === 0 && s.msPerByte === 0 && q.length === 0) {
      this.#send(f);
      return;
    }
    let now = this.clock.now();
    if (s.reorder > 0 && this.#gapCounter >= s.reorderGap - 1 && this.#rng.next() < s.reorder) {
      // Out of turn: at the head of the queue, leaving now (netem
      // __qdisc_enqueue_head with time_to_send = now).
      this.#gapCounter = 0;
      c.reordered++;
      this.#send(f);
      return;
    }
    let delay = s.delay;
    if (s.jitter > 0) delay += s.jitter * this.#spread(s.distribution);
    if (s.msPerByte > 0) {
      // netem with rate: a frame starts after the last one queued has left,
      // and takes its length's serialisation time.
      const last = q.length > 0 ? q[q.length - 1]!.at : -Infinity;
      if (last > now) {
        delay = Math.max(0, delay - (last - now));
        now = last;
      }
      delay += f.length * s.msPerByte;
    }
    this.#gapCounter++;
    const at = now + Math.max(0, delay);
    if (at <= this.clock.now() && (q.length === 0 || q[0]!.at > at)) {
      this.#send(f);
      return;
    }
    const held: Held = { at, seq: this.#seq++, frame: f === frame ? frame.slice() : f };
    // Ordered by departure, ties in arrival order; most frames go at the end.
    let i = q.length;
    while (i > 0 && q[i - 1]!.at > at) i--;
    q.splice(i, 0, held);
    c.queued = q.length;
    this.#arm();
  }

  #spread(d: DelayDistribution): number {
    const r = this.#rng;
    switch (d) {
      case 'uniform': return 2 * r.next() - 1;
      case 'normal': return r.normal();
      case 'pareto': return r.pareto();
      case 'paretonormal': return 0.25 * r.normal() + 0.75 * r.pareto();
    }
  }

  #send(frame: Uint8Array): void {
    this.counters.delivered++;
    this.out(frame);
  }

  #arm(): void {
    const head = this.#queue[0];
    if (!head || head.at >= this.#timerAt) return;
    if (this.#timer !== null) this.clock.cancelTimer(this.#timer);
    this.#timerAt = head.at;
    this.#timer = this.clock.setTimer(() => this.#due(), head.at - this.clock.now());
  }

  #due(): void {
    this.#timer = null;
    this.#timerAt = Infinity;
    if (this.closed) return;
    const now = this.clock.now();
    const q = this.#queue;
    let n = 0;
    while (n < q.length && q[n]!.at <= now) n++;
    const due = q.splice(0, n);
    this.counters.queued = q.length;
    for (const h of due) this.#send(h.frame);
    if (n > 0) this.afterBurst();
    this.#arm();
  }

  close(): void {
    this.closed = true;
    if (this.#timer !== null) this.clock.cancelTimer(this.#timer);
    this.#timer = null;
    this.#queue.length = 0;
    this.counters.queued = 0;
  }
}

/** A link wrapped by emulate(): a Link, plus its settings and counters per direction. */
export class EmulatedLink implements Link {
  readonly medium: Medium;
  readonly mtu: number;
  readonly capabilities: LinkCapabilities | undefined;
  /** The seed the draws come from (given, or the one drawn). */
  readonly seed: number;
  readonly #lanes: Record<Direction, Lane>;
  #receive: FrameReceiver | null = null;

  constructor(readonly inner: Link, options: EmulateOptions) {
    if (options === null || typeof options !== 'object') throw invalidOption('options', 'an object', options);
    const { seed, clock = realClock, egress = {}, ingress = {}, ...shared } = options;
    if (seed !== undefined && (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff)) throw invalidOption('seed', 'an integer from 0 to 2^32 − 1', seed);
    if (typeof clock?.now !== 'function' || typeof clock.setTimer !== 'function') throw invalidOption('clock', 'a Clock', clock);
    this.seed = seed ?? Math.floor(Math.random() * 0x1_0000_0000);
    this.medium = inner.medium;
    this.mtu = inner.mtu;
    this.capabilities = inner.capabilities;
    const eg = settingsOf({ ...shared, ...egress }, options.egress ? 'egress' : '');
    const ig = settingsOf({ ...shared, ...ingress }, options.ingress ? 'ingress' : '');
    this.#lanes = {
      egress: new Lane(clock, eg, this.seed, (f) => inner.send(f), () => inner.flush?.()),
      // Another stream for the other direction, so that one direction's
      // traffic does not change the other's draws.
      ingress: new Lane(clock, ig, (this.seed ^ 0x5bd1e995) >>> 0, (f) => this.#receive?.(f), () => undefined),
    };
  }

  attach(receive: FrameReceiver): void {
    this.#receive = receive;
    this.inner.attach((frame) => this.#lanes.ingress.input(frame));
  }

  send(frame: Uint8Array): void {
    this.#lanes.egress.input(frame);
  }

  flush(): void {
    this.inner.flush?.();
  }

  /**
   * Replaces the settings of one direction or both at run time (as `tc
   * qdisc change`: fields not given go back to off). Frames already held
   * keep their departure times.
   */
  set(impairment: Impairment, direction: Direction | 'both' = 'both'): void {
    if (direction !== 'egress' && direction !== 'ingress' && direction !== 'both') throw invalidOption('direction', "'egress', 'ingress' or 'both'", direction);
    const s = settingsOf(impairment, '');
    if (direction !== 'ingress') this.#lanes.egress.set(s);
    if (direction !== 'egress') this.#lanes.ingress.set({ ...s });
  }

  /** The settings one direction runs with now. */
  settings(direction: Direction): Required<Impairment> {
    const s = this.#lanes[direction].settings;
    return {
      delay: s.delay, jitter: s.jitter, distribution: s.distribution, loss: s.ge ? { ...s.ge } : s.loss, duplicate: s.duplicate,
      reorder: s.reorder, reorderGap: s.reorderGap, corrupt: s.corrupt, rate: s.rate, queueLimit: s.queueLimit,
    };
  }

  /** What each direction did to its frames. */
  get counters(): Record<Direction, Readonly<EmulationCounters>> {
    return { egress: this.#lanes.egress.counters, ingress: this.#lanes.ingress.counters };
  }

  close(): void {
    this.#lanes.egress.close();
    this.#lanes.ingress.close();
    this.#receive = null;
    this.inner.close();
  }
}

/**
 * Wraps a link in an emulated network: delay, jitter, loss, duplication,
 * reordering, corruption and a rate limit, for frames sent (`egress`) and
 * received (`ingress`), each with its own queue.
 *
 * @example
 * const [a, b] = createCable();
 * stackA.addInterface({ link: emulate(a, { delay: 20, jitter: 5, loss: 0.01, rate: 10e6 }), ipv4: '10.0.0.1/24' });
 */
export function emulate(link: Link, options: EmulateOptions = {}): EmulatedLink {
  if (!link || typeof link.send !== 'function' || typeof link.attach !== 'function') throw invalidOption('link', 'a Link', link);
  return new EmulatedLink(link, options);
}
