/**
 * The one link interface every device implements: a cable between two
 * in-process stacks, a loopback, TAP/TUN, unix datagram and stream sockets
 * (VMs), vmnet.
 */
import { Emitter } from './emitter.js';

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
  /**
   * The link's lifecycle (LinkEvents). Optional, so that a hand-written link
   * of just attach/send/close still is one; every link of this package has it.
   */
  on?<K extends keyof LinkEvents>(event: K, fn: LinkEvents[K]): unknown;
  off?<K extends keyof LinkEvents>(event: K, fn: LinkEvents[K]): unknown;
}

/**
 * Why a link closed: `'local'` its close() was called (by its user, or by the
 * stack removing the interface); `'peer'` the far end went away and this kind
 * of link cannot wait for another (a stream's EOF, the other end of a cable,
 * a TAP whose device was deleted); `'error'` a fatal error, also emitted as
 * `'error'` just before.
 */
export type LinkCloseReason = 'local' | 'peer' | 'error';

/**
 * A link's events. `'close'` comes once, when the link stops for good.
 * Links that outlive their peer (a listening StreamLink, a unix datagram
 * socket waiting at its path) emit `'down'` when the peer goes (the VM
 * exited; a peer that broke the framing is dropped with reason `'error'`)
 * and `'up'` when a peer (the same VM restarted, or another) is there again.
 * `'error'` reports every error, fatal or not; unlike Node's EventEmitter an
 * `'error'` without a listener is not thrown (a link's failure must not end
 * the process that serves other sandboxes: the stack hears of it anyway,
 * through `'close'` and `'down'`).
 */
export interface LinkEvents {
  close: (reason: LinkCloseReason, error?: Error) => void;
  error: (error: Error) => void;
  down: (reason: 'peer' | 'error', error?: Error) => void;
  up: () => void;
}

/** Lifecycle plumbing shared by the links of this package. */
export class LinkEmitter extends Emitter<LinkEvents> {
  #ended = false;

  /** True once 'close' was emitted. */
  protected get ended(): boolean {
    return this.#ended;
  }

  /** Emits 'error' (when there is one) then 'close', once. */
  protected finish(reason: LinkCloseReason, error?: Error): void {
    if (this.#ended) return;
    this.#ended = true;
    if (error) this.emit('error', error);
    this.emit('close', reason, error);
  }
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

class CableEnd extends LinkEmitter implements Link {
  peer!: CableEnd;
  receive: FrameReceiver | null = null;
  closed = false;
  readonly counters: LinkCounters = { framesSent: 0, bytesSent: 0, framesDropped: 0, framesOversize: 0 };
  readonly #maxFrame: number;

  constructor(readonly medium: Medium, readonly mtu: number) {
    super();
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
    this.#end('local');
  }

  /** A cable has two ends: closing one ends the other, whose peer is gone. */
  #end(reason: LinkCloseReason): void {
    if (this.closed) return;
    this.closed = true;
    this.receive = null;
    this.finish(reason);
    if (this.peer !== this) this.peer.#end('peer');
  }
}

export interface CableOptions {
  medium?: Medium;
  mtu?: number;
}

/** A link of this package: its lifecycle events are always there. */
export type EventedLink = Link & Pick<LinkEmitter, 'on' | 'off' | 'once'>;

/** Two links joined back to back: what one end sends, the other receives. */
export function createCable(options: CableOptions = {}): [EventedLink & { counters: LinkCounters }, EventedLink & { counters: LinkCounters }] {
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
export function createLoopback(options: CableOptions = {}): EventedLink & { counters: LinkCounters } {
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
