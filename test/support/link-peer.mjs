// A second process with its own stack, reached over a StreamLink (QEMU
// `-netdev stream` framing on a unix socket) or a unix datagram link, serving
// TCP echo on 10.88.0.1:7. Prints "ready" once it can take traffic.
//   node link-peer.mjs stream SOCKET_PATH
//   node link-peer.mjs dgram OUR_PATH    (answers whoever sends first, as
//                                         gvproxy does for vfkit)
import net from 'node:net';
import { createStack } from '../../dist/index.js';
import { StreamLink } from '../../dist/node/stream-link.js';
import { openUnixDgram } from '../../dist/node/links.js';

const [mode, a, b] = process.argv.slice(2);
const stack = createStack();
const start = (link) => {
  stack.addInterface({ link, ipv4: '10.88.0.1/24', mac: '02:00:00:00:88:01' });
  stack.createServer({ allowHalfOpen: true }, (s) => s.pipe(s)).listen(7);
  console.log('ready');
};
if (mode === 'stream') {
  const server = net.createServer((socket) => {
    server.close();
    start(new StreamLink(socket));
  });
  server.listen(a, () => console.log('listening'));
} else {
  const link = openUnixDgram({ path: a });
  start(link);
}
process.on('SIGTERM', () => process.exit(0));
