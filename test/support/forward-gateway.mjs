// A gateway and an in-process sandbox stack for test/forwards.test.ts, run
// by the test inside its "host" namespace:
//   node forward-gateway.mjs DIST HOST4 HOST6 PRESERVE(1|0)
// The sandbox (10.0.2.100, fd00::100) serves, on 8080 (TCP) and 5353
// (UDP), "REMOTEADDR REMOTEPORT" of whoever connects, and on 9000 the byte
// count and sha256 of what it is sent. The gateway forwards HOST4:18080,
// HOST4:19000 and HOST4:15353/udp to the v4 address, the same ports on
// [HOST6] to the v6 one. Prints one JSON line when ready; runs until killed.
import { createHash } from 'node:crypto';

const [dist, host4, host6, preserve] = process.argv.slice(2);
const { createCable, createGateway, createStack } = await import(dist);

const [gwLink, sandboxLink] = createCable({ mtu: 1500 });
const gw = createGateway({ link: gwLink, ipv6: true, preserveSource: preserve === '1' });
const sandbox = createStack();
const iface = sandbox.addInterface({ link: sandboxLink, ipv4: '10.0.2.100/24', gateway: '10.0.2.2', ipv6: 'fd00::100/64' });
sandbox.routes.add({ prefix: '::/0', gateway: 'fd00::2', interface: iface });

sandbox.createServer((s) => s.end(`${s.remoteAddress} ${s.remotePort}`)).listen(8080);
sandbox.createServer((s) => {
  const h = createHash('sha256');
  let n = 0;
  s.on('data', (d) => {
    h.update(d);
    n += d.length;
  });
  s.on('end', () => s.end(`${n} ${h.digest('hex')} ${s.remoteAddress} ${s.remotePort}`));
}).listen(9000);
for (const type of ['udp4', 'udp6']) {
  const u = sandbox.createSocket(type);
  u.on('message', (m, r) => u.send(`${r.address} ${r.port}`, r.port, r.address));
  u.bind(5353);
}

await gw.ready;
for (const [hostAddress, guestAddress] of [[host4, '10.0.2.100'], [host6, 'fd00::100']]) {
  await gw.addForward({ hostAddress, hostPort: 18080, guestPort: 8080, guestAddress });
  await gw.addForward({ hostAddress, hostPort: 19000, guestPort: 9000, guestAddress });
  await gw.addForward({ protocol: 'udp', hostAddress, hostPort: 15353, guestPort: 5353, guestAddress });
}
console.log(JSON.stringify({ ready: true, forwards: gw.forwards.length }));
