/**
 * The one link interface every device implements: a cable between two
 * in-process stacks, a loopback, and later TAP/TUN, vmnet and VM sockets.
 */

export type Medium = 'ethernet' | 'ip';

/** Receives one frame. The bytes are only valid during the call (copy to keep). */
export type FrameReceiver = (frame: Uint8Array) => void;

export interface Link {
  /** 'ethernet' frames (with a 14-byte header) or bare 'ip' packets. */
  readonly medium: Medium;
  /** Largest IP packet the link carries (the frame adds the link header). */
  readonly mtu: number;
  /** Connects the receiving side; called once by the stack the link is added to. */
  attach(receive: FrameReceiver): void;
  /**
   * Sends one frame. The bytes are only valid during the call: a link that
   * queues must copy. Must not deliver back into the sender synchronously
   * in a way that re-enters it (delivering to a FrameReceiver is fine: stacks
   * only copy and schedule on receipt).
   */
  send(frame: Uint8Array): void;
  /** Called after a burst of send() calls, so links can batch their writes. */
  flush?(): void;
  /** Stops the link; frames sent afterwards are dropped. Idempotent. */
  close(): void;
  /**
   * Optional, instead of attach(): links that read frames themselves (a
   * device's read()) can read them straight into the stack's memory, saving
   * the copy attach() implies. The stack calls this when the link has it.
   */
  attachInPlace?(rx: InPlaceReceiver): void;
  /** What the device does for the stack; absent: nothing (a plain link). */
  readonly capabilities?: LinkCapabilities;
}

/**
 * Offloads a device link offers, as a virtio-net device negotiates them.
 * The stack adapts the interface it adds on such a link.
 */
export interface LinkCapabilities {
  /**
   * The link completes TCP checksums of frames sent and its received frames
   * are trusted (their checksums may be partial): the stack neither checks
   * checksums nor computes TCP's. IP, UDP and ICMP checksums it still writes.
   */
  checksumOffload?: boolean;
  /**
   * The link takes IPv4 TCP segments larger than its MTU and cuts them to
   * its MSS (TSO): the stack sends segments of up to 64 KiB.
   */
  tcpSegmentation?: boolean;
  /** The largest frame the link may deliver (received frames can exceed the MTU: GRO/GSO). */
  maxFrame?: number;
}

/**
 * Free frame slots inside a stack's memory. `slots()` tops the reserve up and
 * (when memory allows; it may return none)
 * returns the memory (a fresh view: it may have grown) and the byte offsets
 * of the slots, each `slotSize` bytes; after reading `count` frames into the
 * first `count` slots, the link calls `commit(count, lengths)`.
 */
export interface InPlaceReceiver {
  readonly slotSize: number;
  slots(): { memory: Uint8Array; targets: Uint32Array };
  commit(count: number, lengths: Uint32Array): void;
  /** The copying path, for frames read elsewhere (no slots could be had). */
  receive: FrameReceiver;
}

export interface LinkCounters {
  framesSent: number;
  bytesSent: number;
  /** Frames not delivered: the far end closed or not attached. */
  framesDropped: number;
  /** Frames longer than the MTU allows, dropped as a real link would. */
  framesOversize: number;
}

export const ETHERNET_HEADER = 14;
export const MIN_MTU = 576;
export const MAX_MTU = 65520;

class CableEnd implements Link {
  peer!: CableEnd;
  receive: FrameReceiver | null = null;
  closed = false;
  readonly counters: LinkCounters = { framesSent: 0, bytesSent: 0, framesDropped: 0, framesOversize: 0 };
  readonly #maxFrame: number;

  constructor(readonly medium: Medium, readonly mtu: number) {
    this.#maxFrame = mtu + (medium === 'ethernet' ? ETHERNET_HEADER : 0);
  }

  attach(receive: FrameReceiver): void {
    this.receive = receive;
  }

  send(frame: Uint8Array): void {
    const to = this.peer;
    if (this.closed || to.closed || to.receive === null) {
      this.counters.framesDropped++;
      return;
    }
    if (frame.length > this.#maxFrame) {
      this.counters.framesOversize++;
      return;
    }
    this.counters.framesSent++;
    this.counters.bytesSent += frame.length;
    to.receive(frame);
  }

  close(): void {
    this.closed = true;
    this.receive = null;
  }
}

export interface CableOptions {
  medium?: Medium;
  mtu?: number;
}

/** Two links joined back to back: what one end sends, the other receives. */
export function createCable(options: CableOptions = {}): [Link & { counters: LinkCounters }, Link & { counters: LinkCounters }] {
  const medium = options.medium ?? 'ethernet';
  const mtu = options.mtu ?? 1500;
  checkMedium(medium, 'medium');
  checkMtu(mtu, 'mtu');
  const a = new CableEnd(medium, mtu);
  const b = new CableEnd(medium, mtu);
  a.peer = b;
  b.peer = a;
  return [a, b];
}

/** A link whose frames come back to its own stack. */
export function createLoopback(options: CableOptions = {}): Link & { counters: LinkCounters } {
  const end = new CableEnd(options.medium ?? 'ethernet', options.mtu ?? 65520);
  checkMedium(end.medium, 'medium');
  checkMtu(end.mtu, 'mtu');
  end.peer = end;
  return end;
}

export function checkMtu(mtu: unknown, name: string): asserts mtu is number {
  if (typeof mtu !== 'number' || !Number.isInteger(mtu) || mtu < MIN_MTU || mtu > MAX_MTU) {
    throw new TypeError(`The "${name}" option must be an integer from ${MIN_MTU} to ${MAX_MTU}. Received ${String(mtu)}`);
  }
}

export function checkMedium(medium: unknown, name: string): asserts medium is Medium {
  if (medium !== 'ethernet' && medium !== 'ip') {
    throw new TypeError(`The "${name}" option must be 'ethernet' or 'ip'. Received ${String(medium)}`);
  }
}
