/** Two stacks joined by an in-memory cable, the usual test bench. */
import { once } from 'node:events';
import { createCable, createStack, type Stack, type StackOptions, type TcpServer } from '../../src/index.js';

export interface Pair {
  a: Stack;
  b: Stack;
  close(): void;
}

export const A4 = '10.0.0.1';
export const B4 = '10.0.0.2';
export const A6 = 'fd00::1';
export const B6 = 'fd00::2';

export function pair(options: { mtu?: number; stack?: StackOptions } = {}): Pair {
  const a = createStack(options.stack);
  const b = createStack(options.stack);
  const [la, lb] = createCable({ mtu: options.mtu ?? 1500 });
  a.addInterface({ link: la, ipv4: `${A4}/24`, ipv6: `${A6}/64`, mac: '02:00:00:00:00:01' });
  b.addInterface({ link: lb, ipv4: `${B4}/24`, ipv6: `${B6}/64`, mac: '02:00:00:00:00:02' });
  return {
    a,
    b,
    close() {
      a.close();
      b.close();
    },
  };
}

export async function listen(server: TcpServer, port = 0, host?: string): Promise<number> {
  server.listen(port, host);
  await once(server, 'listening');
  return server.address()!.port;
}
