/** Both directions of a bulk TCP transfer on one of our sockets, with sha256s. */
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import type { TcpSocket } from '../../src/index.js';

export interface TransferResult {
  sent: number;
  sentSha256: string;
  received: number;
  receivedSha256: string;
  seconds: number;
}

export async function transfer(socket: TcpSocket, bytes: number): Promise<TransferResult> {
  const started = performance.now();
  const got = createHash('sha256');
  let received = 0;
  socket.on('data', (d: Buffer) => {
    got.update(d);
    received += d.length;
  });
  const ended = once(socket, 'end');
  const sent = createHash('sha256');
  const block = randomBytes(1 << 20);
  for (let off = 0; off < bytes; ) {
    const n = Math.min(block.length, bytes - off);
    block[0] = off >>> 20;
    const chunk = Buffer.from(block.subarray(0, n));
    sent.update(chunk);
    off += n;
    if (!socket.write(chunk)) await once(socket, 'drain');
  }
  socket.end();
  await ended;
  return { sent: bytes, sentSha256: sent.digest('hex'), received, receivedSha256: got.digest('hex'), seconds: (performance.now() - started) / 1000 };
}

/**
 * Writes `bytes` random bytes and half-closes, then reads until the peer
 * (an echo) ends: the counts and sha256s of what went out and came back.
 */
export async function echoRoundTrip(socket: TcpSocket, bytes: number): Promise<{ sent: number; received: number; sentSha256: string; receivedSha256: string }> {
  const data = randomBytes(bytes);
  const got = createHash('sha256');
  let received = 0;
  socket.on('data', (d: Buffer) => {
    got.update(d);
    received += d.length;
  });
  const ended = once(socket, 'end');
  socket.end(data);
  await ended;
  return { sent: bytes, received, sentSha256: createHash('sha256').update(data).digest('hex'), receivedSha256: got.digest('hex') };
}
