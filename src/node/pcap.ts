/** pcap capture of any link into a file. */
import { closeSync, openSync, writeSync } from 'node:fs';
import { capture } from '../core/capture.js';
import type { Link } from '../core/link.js';
import { invalidOption } from '../core/errors.js';

const FLUSH_BYTES = 1 << 20;

/**
 * Wraps link so that every frame it carries is written to a pcap file at
 * path (Ethernet or raw-IP link type to match the medium). Records are
 * buffered and written after each burst the stack sends, at 1 MiB, and on
 * close.
 */
export function pcapFile(link: Link, path: string): Link {
  if (typeof path !== 'string' || path === '') throw invalidOption('path', 'a file path', path);
  const fd = openSync(path, 'w');
  let pending: Uint8Array[] = [];
  let pendingBytes = 0;
  const flush = () => {
    if (pendingBytes === 0) return;
    writeSync(fd, Buffer.concat(pending, pendingBytes));
    pending = [];
    pendingBytes = 0;
  };
  return capture(link, (bytes) => {
    pending.push(bytes);
    pendingBytes += bytes.length;
    if (pendingBytes >= FLUSH_BYTES) flush();
  }, {
    onFlush: flush,
    onClose: () => {
      flush();
      closeSync(fd);
    },
  });
}
