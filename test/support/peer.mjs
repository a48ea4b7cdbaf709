// A TCP peer for device tests, run by the test inside its network namespace
// (the kernel's TCP on the far side of a TAP/TUN link).
//   node peer.mjs serve PORT BYTES   accept one connection
//   node peer.mjs connect HOST PORT BYTES
// On the connection it sends BYTES of pseudo-random data and reads until the
// other side ends; then prints one JSON line: bytes and sha256 each way and
// the seconds each direction took.
import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';

const [mode, ...rest] = process.argv.slice(2);
const bytes = Number(mode === 'serve' ? rest[1] : rest[2]);

function run(socket) {
  const started = performance.now();
  const sent = createHash('sha256');
  const got = createHash('sha256');
  let received = 0;
  let sendSeconds = 0;
  let recvSeconds = 0;
  socket.on('data', (d) => {
    got.update(d);
    received += d.length;
  });
  socket.on('end', () => {
    recvSeconds = (performance.now() - started) / 1000;
  });
  socket.on('close', () => {
    console.log(JSON.stringify({ sent: bytes, sentSha256: sent.digest('hex'), received, receivedSha256: got.digest('hex'), sendSeconds, recvSeconds }));
    process.exit(0);
  });
  socket.on('error', (e) => {
    console.error(e.message);
    process.exit(1);
  });
  const block = randomBytes(1 << 20);
  let off = 0;
  const pump = () => {
    while (off < bytes) {
      const n = Math.min(block.length, bytes - off);
      block[0] = off >>> 20;
      const chunk = Buffer.from(block.subarray(0, n));
      sent.update(chunk);
      off += n;
      if (!socket.write(chunk)) return socket.once('drain', pump);
    }
    socket.end(() => {
      sendSeconds = (performance.now() - started) / 1000;
    });
  };
  pump();
}

if (mode === 'serve') {
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    server.close();
    run(s);
  });
  server.listen(Number(rest[0]), () => console.log('listening'));
} else {
  const s = net.connect({ host: rest[0], port: Number(rest[1]), allowHalfOpen: true });
  s.on('connect', () => run(s));
}
