// Legitimate clients during a SYN flood (run inside the test's namespace
// with the kernel's own TCP): WORKERS workers each connect to HOST:PORT,
// make ROUNDS request/response exchanges of 64 bytes, close, and start
// over, until SECONDS have passed. Every connection must succeed and every
// reply match. Prints {"connections","roundTrips","failures","errors","p50","p99","max"}
// (latencies in ms) on stdout.
//
//   node echo-clients.mjs HOST PORT WORKERS ROUNDS SECONDS
import net from 'node:net';

const [host, port, workers, rounds, seconds] = process.argv.slice(2);
const deadline = performance.now() + Number(seconds) * 1000;
const latencies = [];
let connections = 0;
let failures = 0;
const errors = [];

function session() {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port: Number(port) });
    // A connection the flood delays gets the kernel's own SYN retries
    // (1, 3, 7 s); one that does not connect in 15 s counts as failed.
    socket.setTimeout(15_000, () => socket.destroy(new Error('timed out')));
    let left = Number(rounds);
    let expect = null;
    let got = '';
    let sentAt = 0;
    const ask = () => {
      expect = `${connections}:${left}:`.padEnd(64, 'x');
      got = '';
      sentAt = performance.now();
      socket.write(expect);
    };
    socket.on('connect', () => {
      connections++;
      ask();
    });
    socket.on('data', (d) => {
      got += d;
      if (got.length < 64) return;
      if (got !== expect) {
        socket.destroy(new Error(`reply mismatch: ${got.slice(0, 20)}`));
        return;
      }
      latencies.push(performance.now() - sentAt);
      if (--left > 0) ask();
      else socket.end();
    });
    socket.on('error', (err) => {
      failures++;
      if (errors.length < 5) errors.push(err.message);
    });
    socket.on('close', resolve);
  });
}

async function worker() {
  while (performance.now() < deadline) await session();
}

await Promise.all(Array.from({ length: Number(workers) }, worker));
latencies.sort((a, b) => a - b);
const at = (q) => (latencies.length ? latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] : null);
console.log(JSON.stringify({ connections, roundTrips: latencies.length, failures, errors, p50: at(0.5), p99: at(0.99), max: at(1) }));
