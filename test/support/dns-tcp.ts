/** One DNS query over TCP from a stack (RFC 1035 section 4.2.2 framing), read to the server's FIN. */
import { once } from 'node:events';
import type { Stack } from '../../src/index.js';
import { decodeDnsMessage, encodeDnsQuery, type DnsMessage } from '../../src/wire/dns.js';

export async function queryOverTcp(stack: Stack, server: string, name: string, type: number): Promise<DnsMessage | null> {
  const query = encodeDnsQuery({ id: 7, name, type });
  const sock = stack.connect({ port: 53, host: server, allowHalfOpen: true });
  const framed = Buffer.alloc(2 + query.length);
  framed.writeUInt16BE(query.length, 0);
  framed.set(query, 2);
  const chunks: Buffer[] = [];
  sock.on('data', (d: Buffer) => chunks.push(d));
  const ended = once(sock, 'end');
  sock.end(framed);
  await ended;
  const reply = Buffer.concat(chunks);
  return decodeDnsMessage(reply.subarray(2, 2 + reply.readUInt16BE(0)));
}
