// A stack on a TAP device inside a network namespace, serving HTTP to curl
// running in that namespace. Needs root and /dev/net/tun (Linux).
//   node examples/tap-namespace-http.js
import { execFile, execFileSync } from 'node:child_process';
import http from 'node:http';
import { promisify } from 'node:util';
import { createStack, openTap } from '../dist/index.js';

const ns = `tcpipts-demo-${process.pid}`;
execFileSync('ip', ['netns', 'add', ns]);
const stack = createStack();
try {
  // The device is created inside the namespace; we keep using it from here.
  const tap = openTap({ name: 'demo0', netns: `/run/netns/${ns}`, mtu: 1500 });
  execFileSync('ip', ['-n', ns, 'addr', 'add', '10.99.0.1/24', 'dev', 'demo0']);
  stack.addInterface({ link: tap, ipv4: '10.99.0.2/24' });

  const app = http.createServer((req, res) => res.end(`hello from tcpip-ts, you asked for ${req.url}\n`));
  stack.createServer((socket) => app.emit('connection', socket)).listen(80);

  // execFile, not execFileSync: the stack answers on this thread.
  const { stdout } = await promisify(execFile)('ip', ['netns', 'exec', ns, 'curl', '-sS', 'http://10.99.0.2/demo']);
  process.stdout.write(`curl in ${ns}: ${stdout}`);
} finally {
  stack.close();
  execFileSync('ip', ['netns', 'delete', ns]);
}
