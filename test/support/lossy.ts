/**
 * A link that loses and reorders frames, wrapped around any other link:
 * what a lossy uplink does to TCP, reproducible from a seed. Loss and
 * reordering apply to the frames this side sends; wrap both ends of a cable
 * for loss both ways.
 */
import type { FrameReceiver, Link } from '../../src/index.js';
import type { InPlaceReceiver } from '../../src/core/link.js';

export interface LossyOptions {
  /** Fraction of sent frames dropped, 0–1. */
  loss?: number;
  /** Fraction of sent frames held back and sent after the next one, 0–1. */
  reorder?: number;
  /** Seed of the generator; the same seed drops the same frames. */
  seed?: number;
}

export interface LossyCounters {
  dropped: number;
  reordered: number;
}

/** Mulberry32: small, seeded, good enough to pick frames. */
function generator(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function lossy(inner: Link, options: LossyOptions = {}): Link & { lossCounters: LossyCounters } {
  const { loss = 0, reorder = 0, seed = 1 } = options;
  const random = generator(seed);
  const counters: LossyCounters = { dropped: 0, reordered: 0 };
  // One frame at most waits for the next, so a reordered frame is late by
  // one frame, not lost; flush() lets it go at the end of a burst.
  let held: Uint8Array | null = null;
  const release = () => {
    if (held !== null) {
      const f = held;
      held = null;
      inner.send(f);
    }
  };
  return {
    medium: inner.medium,
    mtu: inner.mtu,
    capabilities: inner.capabilities,
    lossCounters: counters,
    attach(receive: FrameReceiver) {
      inner.attach(receive);
    },
    ...(inner.attachInPlace ? { attachInPlace: (rx: InPlaceReceiver) => inner.attachInPlace!(rx) } : {}),
    send(frame: Uint8Array) {
      if (random() < loss) {
        counters.dropped++;
        return;
      }
      if (held === null && random() < reorder) {
        counters.reordered++;
        held = frame.slice();
        return;
      }
      inner.send(frame);
      release();
    },
    flush() {
      release();
      inner.flush?.();
    },
    close() {
      held = null;
      inner.close();
    },
  };
}
