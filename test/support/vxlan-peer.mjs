// A tcpip-ts process on a VXLAN link, run by test/vxlan.test.ts inside a
// namespace of its own.
//   node vxlan-peer.mjs LOCAL REMOTE ADDRESS/LEN MAC serve
//       serves TCP echo on port 7; prints "ready"
//   node vxlan-peer.mjs LOCAL REMOTE ADDRESS/LEN MAC connect TARGET BYTES
//       pings TARGET, echoes BYTES through its port 7, prints one JSON line
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createStack, openVxlan } from '../../dist/index.js';

const [local, remote, address, mac, mode, target, bytes] = process.argv.slice(2);
const link = await openVxlan({ vni: 42, local, remotes: [remote] });
const stack = createStack();
stack.addInterface({ link, ipv4: address, mac });
if (mode === 'serve') {
  stack.createServer({ allowHalfOpen: true }, (s) => s.pipe(s)).listen(7);
  console.log('ready');
  process.on('SIGTERM', () => process.exit(0));
} else {
  let rtt;
  for (let i = 0; ; i++) {
    try {
      rtt = await stack.ping(target, { timeout: 500 });
      break;
    } catch (err) {
      if (i === 20) throw err;
    }
  }
  const data = randomBytes(Number(bytes));
  const sock = stack.connect({ port: 7, host: target, allowHalfOpen: true });
  await once(sock, 'connect');
  const got = createHash('sha256');
  let received = 0;
  sock.on('data', (d) => { got.update(d); received += d.length; });
  const ended = once(sock, 'end');
  sock.end(data);
  await ended;
  console.log(JSON.stringify({
    rtt, sent: data.length, received,
    sentSha256: createHash('sha256').update(data).digest('hex'), receivedSha256: got.digest('hex'),
    fdb: link.fdb.list(), neighbors: stack.neighbors.list(),
  }));
  process.exit(0);
}
