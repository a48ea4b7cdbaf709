// The client side of the gateway scenario, run inside the test namespace
// (`ip netns exec NS node gateway-client.js MODE HOST PORT SECONDS MAX PARALLEL`).
// Prints one JSON line on stdout and exits. Everything is bounded: the first
// connect is retried for at most 5 s (the peer may still be coming up), the
// measurement stops after SECONDS or MAX operations, whichever comes first,
// and connections still open 2 s after that are reported as stuck.
//
//   rr   one connection, setNoDelay: write 1 byte, wait for the echo, repeat;
//        p50/p99 of the round trips in µs (the first 100 are warm-up)
//   cps  PARALLEL connections at a time: connect, read the server's 1 byte,
//        end (FIN from the client, as a kernel client closing first), wait
//        for close; the rate is taken after the first tenth (warm-up)
import net from 'node:net';

const [mode, host, portText, secondsText, maxText, parallelText] = process.argv.slice(2);
const port = Number(portText);
const seconds = Number(secondsText);
const max = Number(maxText);
const parallel = Number(parallelText) || 1;
const now = () => Number(process.hrtime.bigint()) / 1e6;
const CONNECT_RETRY_MS = 5000;
const STUCK_GRACE_MS = 2000;

function done(result) {
  process.stdout.write(`${JSON.stringify(result)}\n`);
  process.exit(0);
}

/** Connects, retrying while the namespace's route or the peer is not up yet. */
function connectRetrying() {
  const deadline = now() + CONNECT_RETRY_MS;
  return new Promise((resolve, reject) => {
    const attempt = () => {
      const sock = net.connect({ host, port, noDelay: true });
      const timer = setTimeout(() => sock.destroy(new Error(`connect to ${host}:${port}: no answer after ${CONNECT_RETRY_MS / 1000} s`)), Math.max(1, deadline - now()));
      sock.once('connect', () => {
        clearTimeout(timer);
        sock.removeAllListeners('error');
        resolve(sock);
      });
      sock.once('error', (err) => {
        clearTimeout(timer);
        sock.destroy();
        if (now() + 50 < deadline && ['ENETUNREACH', 'EHOSTUNREACH', 'ECONNREFUSED', 'ECONNRESET'].includes(err.code)) setTimeout(attempt, 50);
        else reject(err);
      });
    };
    attempt();
  });
}

async function requestResponse() {
  const sock = await connectRetrying();
  sock.on('error', (err) => done({ error: `${err.code ?? ''} ${err.message}`.trim() }));
  const WARM = 100;
  const samples = new Float64Array(max);
  const one = Buffer.from([1]);
  let n = 0;
  let warm = 0;
  let start = now();
  const deadline = start + seconds * 1000;
  const finish = () => {
    const sorted = samples.subarray(0, n).sort();
    const q = (p) => sorted[Math.min(n - 1, Math.floor((n - 1) * p))] * 1000;
    done(n === 0 ? { error: 'no round trip completed' } : { roundTrips: n, p50: q(0.5), p99: q(0.99), max: sorted[n - 1] * 1000 });
  };
  // A reply that never comes: report what was measured instead of waiting.
  setTimeout(() => done({ error: `stalled: ${n + warm} round trips, then no reply for ${STUCK_GRACE_MS / 1000} s` }), seconds * 1000 + STUCK_GRACE_MS).unref();
  sock.on('data', (d) => {
    const t = now();
    // One byte is outstanding at a time, so each reply is one byte.
    for (let i = 0; i < d.length; i++) {
      if (warm < WARM) warm++;
      else samples[n++] = t - start;
    }
    if (n >= max || t >= deadline) {
      finish();
      return;
    }
    start = now();
    sock.write(one);
  });
  start = now();
  sock.write(one);
}

async function connectionsPerSecond() {
  // The first connection also waits for the peer to be ready.
  (await connectRetrying()).destroy();
  const warm = Math.max(1, Math.floor(max / 10));
  const begin = now();
  const deadline = begin + seconds * 1000;
  let started = 0;
  let completed = 0;
  let failed = 0;
  let open = 0;
  let warmAt = null;
  let lastAt = begin;
  let lastError = null;
  const result = (extra) => {
    const counted = completed - warm;
    const rate = warmAt !== null && counted > 0 && lastAt > warmAt ? counted / ((lastAt - warmAt) / 1000) : null;
    return { connections: completed, failed, stuck: open, rate, seconds: (lastAt - begin) / 1000, lastError, ...extra };
  };
  const next = () => {
    if (started >= max || now() >= deadline) {
      if (open === 0) done(result());
      return;
    }
    started++;
    open++;
    const sock = net.connect({ host, port });
    let ok = false;
    sock.once('data', () => {
      ok = true;
      sock.end();
    });
    sock.on('error', (err) => (lastError = err.code ?? err.message));
    sock.once('close', () => {
      open--;
      if (ok) {
        completed++;
        lastAt = now();
        if (completed === warm) warmAt = lastAt;
      } else {
        failed++;
      }
      next();
    });
  };
  setTimeout(() => done(result({ error: `${open} connection(s) still open ${STUCK_GRACE_MS / 1000} s after the end` })), seconds * 1000 + STUCK_GRACE_MS).unref();
  for (let i = 0; i < parallel; i++) next();
}

try {
  if (mode === 'rr') await requestResponse();
  else if (mode === 'cps') await connectionsPerSecond();
  else done({ error: `unknown mode ${mode}` });
} catch (err) {
  done({ error: `${err.code ?? ''} ${err.message}`.trim() });
}
