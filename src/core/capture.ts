/**
 * Capture as a link wrapper: forwards every frame unchanged and hands a pcap
 * record of it, in either direction, to a sink (a file in Node, anything
 * else elsewhere).
 */
import type { FrameReceiver, Link, LinkCapabilities, LinkEvents, Medium } from './link.js';
import { LINKTYPE, pcapGlobalHeader, pcapRecord } from '../wire/pcap.js';

export type PcapSink = (bytes: Uint8Array) => void;

export interface CaptureOptions {
  /** Milliseconds since the Unix epoch for record timestamps. Default Date.now. */
  wallClock?: () => number;
  /** Called after each burst of frames (e.g. to write buffered records). */
  onFlush?: () => void;
  /** Called once when the wrapped link closes (e.g. to close the file). */
  onClose?: () => void;
}

class CapturingLink implements Link {
  readonly medium: Medium;
  readonly mtu: number;
  readonly capabilities: LinkCapabilities | undefined;
  #closed = false;

  constructor(readonly inner: Link, readonly sink: PcapSink, readonly options: CaptureOptions) {
    this.medium = inner.medium;
    this.mtu = inner.mtu;
    // The stack must see the device's offloads through the wrapper (its
    // frames may carry partial checksums). Records show frames as the stack
    // has them: TCP checksums not yet filled in, GSO frames whole.
    this.capabilities = inner.capabilities;
    sink(pcapGlobalHeader(inner.medium === 'ethernet' ? LINKTYPE.ethernet : LINKTYPE.raw));
  }

  #record(frame: Uint8Array): void {
    if (!this.#closed) this.sink(pcapRecord(frame, (this.options.wallClock ?? Date.now)()));
  }

  attach(receive: FrameReceiver): void {
    this.inner.attach((frame) => {
      this.#record(frame);
      receive(frame);
    });
  }

  send(frame: Uint8Array): void {
    this.#record(frame);
    this.inner.send(frame);
  }

  flush(): void {
    this.inner.flush?.();
    this.options.onFlush?.();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.inner.close();
    this.options.onClose?.();
  }

  // The lifecycle is the wrapped link's own.
  on<K extends keyof LinkEvents>(event: K, fn: LinkEvents[K]): this {
    this.inner.on?.(event, fn);
    return this;
  }

  off<K extends keyof LinkEvents>(event: K, fn: LinkEvents[K]): this {
    this.inner.off?.(event, fn);
    return this;
  }
}

/** Wraps a link so that everything it sends and receives is also written as pcap to sink. */
export function capture(link: Link, sink: PcapSink, options: CaptureOptions = {}): Link {
  return new CapturingLink(link, sink, options);
}
