// The gateway as a sandbox runtime uses it: a network namespace gets a TAP
// whose far end is a tcpip-ts gateway in this process (createGateway), curl
// inside the namespace downloads from an HTTP server on this host's
// loopback through it, and the transfer rate is printed. The namespace and
// the TAP are removed at the end, also on failure or Ctrl-C.
//
// Needs root, /dev/net/tun, ip and curl. Traffic goes only to 127.0.0.1
// (the gateway address 10.0.2.2 maps to it with hostLoopback).
//   node examples/gateway-namespace-curl.js    (MTU=65520 SIZE_MIB=512 to change;
//   OFFLOAD=0 for a TAP without checksum offload and TSO/GSO)
import { execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { bulkHttpServer } from './bulk-http-server.js';
import { createGateway, openTap } from '../dist/index.js';

const MTU = Number(process.env.MTU ?? 1500);
const SIZE = Number(process.env.SIZE_MIB ?? 256) * 1024 * 1024;
const ns = `tcpip-ts-demo-${randomBytes(3).toString('hex')}`;
const inNs = (...args) => execFileSync('ip', ['netns', 'exec', ns, ...args], { encoding: 'utf8' });

const app = bulkHttpServer(SIZE);

let gateway = null;
function cleanup() {
  gateway?.close();
  gateway = null;
  app.close();
  try {
    execFileSync('ip', ['netns', 'delete', ns], { stdio: 'ignore' });
  } catch {
    /* not made yet, or gone */
  }
}
process.once('SIGINT', () => {
  cleanup();
  process.exit(130);
});

try {
  await new Promise((resolve) => app.listen(0, '127.0.0.1', resolve));
  const port = app.address().port;
  execFileSync('ip', ['netns', 'add', ns]);
  const tap = openTap({ name: 'tap0', netns: `/run/netns/${ns}`, mtu: MTU, offload: process.env.OFFLOAD !== '0' });
  gateway = createGateway({ link: tap, hostLoopback: true });
  await gateway.ready;
  inNs('ip', 'link', 'set', 'lo', 'up');
  inNs('ip', 'addr', 'add', `${gateway.guestAddress}/24`, 'dev', 'tap0');
  inNs('ip', 'link', 'set', 'tap0', 'up');
  inNs('ip', 'route', 'add', 'default', 'via', gateway.gatewayAddress);

  // curl runs while this process serves both the gateway and the HTTP
  // server, so it must not block the event loop: run it asynchronously.
  const out = await new Promise((resolve, reject) =>
    execFile('ip', ['netns', 'exec', ns, 'curl', '-sS', '-o', '/dev/null', '-w', '%{http_code} %{size_download} %{time_total}',
      `http://${gateway.gatewayAddress}:${port}/`], (err, stdout, stderr) => (err ? reject(new Error(stderr || err.message)) : resolve(stdout))),
  );
  const [code, bytes, seconds] = out.trim().split(' ').map(Number);
  const m = gateway.metrics();
  console.log(`HTTP ${code}: curl in namespace ${ns} fetched ${(bytes / 2 ** 20).toFixed(0)} MiB from 127.0.0.1:${port} ` +
    `through the gateway (TAP, MTU ${MTU}) in ${seconds.toFixed(2)} s: ${((bytes * 8) / seconds / 1e9).toFixed(2)} Gbit/s ` +
    `(${m.tcpOpened} TCP flow, ${(m.bytesIn / 2 ** 20).toFixed(0)} MiB in)`);
} catch (err) {
  console.error(`gateway demo failed: ${err.message}`);
  process.exitCode = 1;
} finally {
  cleanup();
}
