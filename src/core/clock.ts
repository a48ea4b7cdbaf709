/**
 * Time, injected. The stack reads the time and sets its one timer only
 * through a Clock, so tests can drive lwIP's timers (ARP ageing, TCP
 * retransmissions) with a ManualClock instead of waiting.
 */

export interface Clock {
  /** Milliseconds on a monotonic scale. */
  now(): number;
  /**
   * Calls fn once after ms milliseconds; returns a handle for cancelTimer.
   * keepAlive: the timer stands for an operation someone awaits (a ping), so
   * it keeps a Node process alive; the stack's own timers do not.
   */
  setTimer(fn: () => void, ms: number, keepAlive?: boolean): unknown;
  cancelTimer(handle: unknown): void;
}

/** The real clock: performance.now() and setTimeout. The stack's timers are
 * unref'd so that an idle stack does not keep a Node process alive. */
export const realClock: Clock = {
  now: () => performance.now(),
  setTimer(fn, ms, keepAlive = false) {
    const t = setTimeout(fn, ms) as unknown as { unref?: () => void };
    if (!keepAlive) t.unref?.();
    return t;
  },
  cancelTimer(handle) {
    clearTimeout(handle as ReturnType<typeof setTimeout>);
  },
};

interface ManualTimer {
  at: number;
  seq: number;
  fn: () => void;
}

/** Runs queued I/O (frame deliveries) before the next timer fires. */
const yieldToIo = (): Promise<void> =>
  new Promise((resolve) => (typeof setImmediate === 'function' ? setImmediate(resolve) : setTimeout(resolve, 0)));

/** A clock that moves only when told to. */
export class ManualClock implements Clock {
  #now: number;
  #seq = 0;
  #timers = new Set<ManualTimer>();

  constructor(start = 0) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  setTimer(fn: () => void, ms: number): unknown {
    const t: ManualTimer = { at: this.#now + Math.max(0, ms), seq: this.#seq++, fn };
    this.#timers.add(t);
    return t;
  }

  cancelTimer(handle: unknown): void {
    this.#timers.delete(handle as ManualTimer);
  }

  /** Moves time forward by ms, firing due timers in order and letting queued
   * frames flow between them. */
  async advance(ms: number): Promise<void> {
    const end = this.#now + ms;
    await yieldToIo();
    for (;;) {
      let next: ManualTimer | undefined;
      for (const t of this.#timers) {
        if (t.at <= end && (!next || t.at < next.at || (t.at === next.at && t.seq < next.seq))) next = t;
      }
      if (!next) break;
      this.#timers.delete(next);
      this.#now = Math.max(this.#now, next.at);
      next.fn();
      await yieldToIo();
    }
    this.#now = end;
    await yieldToIo();
  }
}
