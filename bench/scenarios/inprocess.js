// In-process: two stacks joined by createCable({ mtu }), everything in this
// one Node process and thread. Per MTU: TCP bulk with 1 and 8 streams, UDP
// packets/s, 1-byte request/response latency, TCP connections per second.
import { createCable, createStack } from '../../dist/index.js';
import { Cleanup, nextTurn, nowMs, quantile, sleep, withTimeout } from '../lib/util.js';

const MTUS = [1500, 65520];
const A = '10.0.0.1';
const B = '10.0.0.2';
const PORT = 5001;

/** The in-process targets (issue 5, "The targets"). */
const BULK_TARGET = { 1500: { op: '>=', value: 5 }, 65520: { op: '>=', value: 20 } };
const CONN_TARGET = { op: '>=', value: 20_000 };

/**
 * Runs a measurement `n` times (each on fresh stacks) and returns the run
 * with the median `key`, with every run's value and the range attached.
 */
async function repeated(n, key, body) {
  const runs = [];
  for (let i = 0; i < n; i++) runs.push(await body());
  const sorted = [...runs].sort((x, y) => x[key] - y[key]);
  const values = runs.map((r) => r[key]);
  return { ...sorted[Math.floor((n - 1) / 2)], runs: values, range: n > 1 ? [sorted[0][key], sorted[n - 1][key]] : undefined };
}

/** Two stacks on one cable; every stack is closed by `cleanup`. */
function pair(mtu, cleanup, options = {}) {
  const a = createStack();
  cleanup.add(() => a.close());
  const b = createStack();
  cleanup.add(() => b.close());
  const [la, lb] = createCable({ mtu });
  a.addInterface({ link: la, ipv4: `${A}/24`, checksumOffload: options.checksumOffload });
  b.addInterface({ link: lb, ipv4: `${B}/24`, checksumOffload: options.checksumOffload });
  // A stack failing (a trap) must fail the measurement, not the process.
  let failure = null;
  for (const s of [a, b]) s.on('error', (err) => (failure ??= err));
  return { a, b, failed: () => failure };
}

function listen(stack, onConnection) {
  return new Promise((resolve, reject) => {
    const server = stack.createServer(onConnection);
    server.on('error', reject);
    server.listen(PORT, () => resolve(server));
  });
}

/**
 * TCP bulk a → b over `streams` connections. Each sender keeps its socket's
 * buffer full (write until false, then 'drain'); the figure counts bytes the
 * receiving sockets delivered during `duration` after a `warmup`.
 */
export async function tcpBulk(mtu, streams, timing, options = {}) {
  const cleanup = new Cleanup();
  try {
    const { a, b, failed } = pair(mtu, cleanup, options);
    let received = 0;
    const server = await listen(b, (socket) => {
      socket.on('data', (chunk) => (received += chunk.length));
      socket.on('error', () => {});
    });
    cleanup.add(() => server.close());
    const chunk = Buffer.alloc(256 * 1024, 0x5a);
    let running = true;
    let streamError = null;
    await Promise.all(Array.from({ length: streams }, () => new Promise((resolve, reject) => {
      const socket = a.connect(PORT, B);
      cleanup.add(() => socket.destroy());
      socket.on('error', (err) => {
        if (!running) return;
        streamError ??= err;
        reject(err);
      });
      const pump = () => {
        while (running && socket.write(chunk));
      };
      socket.on('drain', pump);
      socket.once('connect', () => {
        resolve();
        pump();
      });
    })));
    await sleep(timing.warmup);
    const r0 = received;
    const t0 = nowMs();
    await sleep(timing.duration);
    const bytes = received - r0;
    const seconds = (nowMs() - t0) / 1000;
    running = false;
    if (failed()) throw failed();
    if (streamError) throw streamError;
    if (bytes === 0) throw new Error('no bytes received');
    return { gbits: (bytes * 8) / seconds / 1e9, bytes, seconds };
  } finally {
    cleanup.run();
  }
}

/**
 * UDP a → b: small datagrams sent in bursts of `burst` per event-loop turn
 * (each turn lets the receiver's batched input run), for `duration` after a
 * warm-up. Reports datagrams sent and received per second, and loss over the
 * whole run once in-flight datagrams have drained.
 */
export async function udpRate(mtu, timing, size = 64, burst = 64) {
  const cleanup = new Cleanup();
  try {
    const { a, b, failed } = pair(mtu, cleanup);
    let received = 0;
    const rx = b.createSocket('udp4', () => received++);
    cleanup.add(() => rx.close());
    await new Promise((resolve) => rx.bind(PORT, resolve));
    const tx = a.createSocket('udp4');
    cleanup.add(() => tx.close());
    let sendErrors = 0;
    tx.on('error', () => sendErrors++);
    const payload = Buffer.alloc(size, 0x75);
    // The first datagram waits for ARP; wait for it before flooding.
    tx.send(payload, PORT, B);
    await withTimeout((async () => { while (received === 0) await sleep(1); })(), 5000, 'first UDP datagram');
    let sent = 1;
    let sending = true;
    const flood = (async () => {
      while (sending) {
        for (let i = 0; i < burst; i++) tx.send(payload, PORT, B);
        sent += burst;
        await nextTurn();
      }
    })();
    flood.catch(() => {});
    await sleep(timing.warmup);
    const s0 = sent, r0 = received, t0 = nowMs();
    await sleep(timing.duration);
    const s1 = sent, r1 = received, seconds = (nowMs() - t0) / 1000;
    sending = false;
    await flood;
    for (let i = 0; i < 50 && received < sent; i++) await nextTurn();
    if (failed()) throw failed();
    return {
      sentPerSecond: (s1 - s0) / seconds,
      receivedPerSecond: (r1 - r0) / seconds,
      lossPercent: sent > 0 ? (100 * (sent - received)) / sent : 0,
      sent, received, sendErrors, size, burst,
    };
  } finally {
    cleanup.run();
  }
}

/**
 * 1-byte request/response on one connection with Nagle off at both ends:
 * the client writes one byte, the server echoes it, the client times the
 * round trip and writes the next. Samples are taken for `duration` after a
 * warm-up of the same exchange.
 */
export async function requestResponse(mtu, timing) {
  const cleanup = new Cleanup();
  try {
    const { a, b, failed } = pair(mtu, cleanup);
    const server = await listen(b, (socket) => {
      socket.setNoDelay(true);
      socket.on('data', (data) => socket.write(data));
      socket.on('error', () => {});
    });
    cleanup.add(() => server.close());
    const socket = a.connect({ port: PORT, host: B, noDelay: true });
    cleanup.add(() => socket.destroy());
    await new Promise((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const samples = [];
    const byte = Buffer.from([1]);
    let measuring = false;
    let stop = false;
    const done = new Promise((resolve, reject) => {
      let sentAt = 0;
      socket.on('error', reject);
      socket.on('data', () => {
        const now = process.hrtime.bigint();
        if (measuring) samples.push(Number(now - sentAt) / 1000);
        if (stop) return resolve();
        sentAt = process.hrtime.bigint();
        socket.write(byte);
      });
      sentAt = process.hrtime.bigint();
      socket.write(byte);
    });
    // Awaited after the measurement; an error before then must not count as unhandled.
    done.catch(() => {});
    await sleep(timing.warmup);
    measuring = true;
    await sleep(timing.duration);
    stop = true;
    await withTimeout(done, 5000, 'last round trip');
    if (failed()) throw failed();
    if (samples.length === 0) throw new Error('no round trips completed');
    samples.sort((x, y) => x - y);
    return {
      p50: quantile(samples, 0.5),
      p99: quantile(samples, 0.99),
      mean: samples.reduce((sum, v) => sum + v, 0) / samples.length,
      min: samples[0],
      max: samples[samples.length - 1],
      roundTrips: samples.length,
    };
  } finally {
    cleanup.run();
  }
}

/**
 * Connections opened and closed per second: up to `concurrency` at once,
 * each connect → the server writes one byte → the client reads it and closes
 * → both sides close. With `close: 'end'` the client ends gracefully (FIN;
 * allowHalfOpen is off, so the server's socket ends too, and TIME_WAIT stays
 * on the client, as with a kernel client); with 'destroy' it resets (RST, no
 * TIME_WAIT). A connection counts when the client's socket has closed
 * without error; a new one starts in its place.
 *
 * Counted, not timed: lwIP keeps TIME_WAIT for 2 × TCP_MSL = 120 s and has
 * 16,384 ephemeral ports, so a client stack can open only 16,384 graceful
 * connections in any two minutes (the next connect fails with ENOBUFS). The
 * rate is taken over connections `warmup`+1 … `warmup`+`count` (or `maxMs`,
 * whichever ends first), inside that budget.
 */
export async function connectionRate(mtu, { warmup = 2000, count = 10_000, maxMs = 10_000, close = 'end', concurrency = 32 } = {}) {
  const cleanup = new Cleanup();
  try {
    const { a, b, failed } = pair(mtu, cleanup);
    let serverErrors = 0;
    const server = await listen(b, (socket) => {
      socket.on('error', () => serverErrors++);
      // One byte and no FIN: the client is the one that closes.
      socket.write('x');
    });
    cleanup.add(() => server.close());
    const budget = warmup + count;
    let completed = 0;
    let errors = 0;
    let lastError = null;
    let launched = 0;
    let inFlight = 0;
    let t0 = 0;
    let t1 = 0;
    let windowStart = 0;
    let onDone;
    const done = new Promise((resolve) => (onDone = resolve));
    const finish = () => {
      if (t1 === 0) t1 = nowMs();
      if (inFlight === 0) onDone();
    };
    const open = () => {
      launched++;
      inFlight++;
      const socket = a.connect(PORT, B);
      let failedHere = false;
      socket.on('error', (err) => {
        failedHere = true;
        errors++;
        lastError = err;
      });
      socket.on('data', () => (close === 'end' ? socket.end() : socket.destroy()));
      socket.on('close', () => {
        inFlight--;
        if (!failedHere) completed++;
        if (completed === warmup && t0 === 0) {
          t0 = nowMs();
          windowStart = completed;
        }
        if (t1 === 0 && t0 !== 0 && (completed >= budget || nowMs() - t0 >= maxMs)) t1 = nowMs();
        if (t1 === 0 && launched < budget && errors === 0) open();
        else finish();
      });
    };
    for (let i = 0; i < concurrency; i++) open();
    await withTimeout(done, maxMs * 3 + 10_000, 'connections');
    if (failed()) throw failed();
    if (errors > 0) throw Object.assign(new Error(`${errors} connection(s) failed; last: ${lastError?.message}`), { code: lastError?.code });
    if (t0 === 0) throw new Error(`only ${completed} connections completed`);
    const measured = completed - windowStart;
    return {
      perSecond: measured / ((t1 - t0) / 1000),
      measured,
      warmup,
      seconds: (t1 - t0) / 1000,
      serverErrors,
      concurrency,
      close,
    };
  } finally {
    cleanup.run();
  }
}

export default {
  name: 'inprocess',
  title: 'two stacks in one process on an in-memory cable',
  description: 'TCP bulk (1 and 8 streams), UDP packets/s, 1-byte TCP request/response latency and TCP connections/s between two stacks on createCable(), at MTU 1500 and 65520.',
  async run(ctx) {
    // A full run repeats each throughput measurement (median of 3, on fresh
    // stacks each time): this machine's figures move by ±15 % run to run.
    const repeats = ctx.quick ? 1 : 3;
    const timing = ctx.quick ? { warmup: 500, duration: 1500 } : { warmup: 1000, duration: 5000 };
    const latency = ctx.quick ? { warmup: 300, duration: 1500 } : { warmup: 1000, duration: 10_000 };
    const limit = timing.warmup + timing.duration + 20_000;
    const times = repeats > 1 ? `, median of ${repeats}` : '';
    const doing = `${timing.warmup / 1000} s warm-up, ${timing.duration / 1000} s measured${times}`;
    const range = (r) => r.range;
    for (const mtu of MTUS) {
      const m = `MTU ${mtu}`;
      const bulk = [
        { streams: 1, label: `TCP bulk, 1 stream, ${m}`, chartLabel: `1 stream, ${m}`, id: `tcp-bulk-1-${mtu}`, target: BULK_TARGET[mtu] },
        { streams: 8, label: `TCP bulk, 8 streams, ${m}`, chartLabel: `8 streams, ${m}`, id: `tcp-bulk-8-${mtu}`, target: BULK_TARGET[mtu] },
        // The single stream again with checksumOffload on both interfaces:
        // how much of the cost is checksumming (an option, not the default).
        { streams: 1, label: `TCP bulk, 1 stream, ${m}, checksumOffload`, chartLabel: `1 stream, ${m}, checksumOffload`, id: `tcp-bulk-1-${mtu}-offload`, options: { checksumOffload: true } },
      ];
      for (const b of bulk) {
        await ctx.measure({ label: b.label, doing, group: 'TCP bulk throughput', unit: 'Gbit/s', id: b.id, target: b.target }, async () => {
          const r = await repeated(repeats, 'gbits', () => withTimeout(tcpBulk(mtu, b.streams, timing, b.options), limit, b.label));
          return { id: b.id, label: b.label, chartLabel: b.chartLabel, unit: 'Gbit/s', value: r.gbits, target: b.target, range: range(r), detail: r };
        });
      }
      {
        const label = `UDP 64-byte datagrams, ${m}`;
        const expect = [
          { id: `udp-sent-${mtu}`, label: `${label}: sent`, chartLabel: `sent, ${m}`, unit: 'packets/s', group: 'UDP, 64-byte datagrams' },
          { id: `udp-received-${mtu}`, label: `${label}: received`, chartLabel: `received, ${m}`, unit: 'packets/s', group: 'UDP, 64-byte datagrams' },
          { id: `udp-loss-${mtu}`, label: `${label}: loss`, chartLabel: `loss, ${m}`, unit: '%', group: 'UDP, 64-byte datagrams: loss' },
        ];
        await ctx.measure({ label, doing, expect }, async () => {
          const r = await repeated(repeats, 'receivedPerSecond', () => withTimeout(udpRate(mtu, timing), limit, label));
          return [
            { ...expect[0], value: r.sentPerSecond, detail: r },
            { ...expect[1], value: r.receivedPerSecond, range: range(r) },
            { ...expect[2], value: r.lossPercent },
          ];
        });
      }
      {
        const label = `TCP 1-byte request/response, ${m}`;
        const group = 'TCP 1-byte request/response latency';
        const expect = [
          { id: `rr-p50-${mtu}`, label: `${label}: p50`, chartLabel: `p50, ${m}`, unit: 'µs', group },
          { id: `rr-p99-${mtu}`, label: `${label}: p99`, chartLabel: `p99, ${m}`, unit: 'µs', group },
        ];
        await ctx.measure({ label, doing: `${latency.warmup / 1000} s warm-up, ${latency.duration / 1000} s of round trips`, expect }, async () => {
          const r = await withTimeout(requestResponse(mtu, latency), latency.warmup + latency.duration + 20_000, label);
          return [
            { ...expect[0], value: r.p50, detail: r },
            { ...expect[1], value: r.p99 },
          ];
        });
      }
      for (const close of ['end', 'destroy']) {
        const how = close === 'end' ? 'client ends (FIN)' : 'client resets (RST)';
        const id = `conn-rate-${close}-${mtu}`;
        const label = `TCP connections/s, ${how}, ${m}`;
        const target = close === 'end' ? CONN_TARGET : undefined;
        await ctx.measure({ label, doing: `32 at a time; 2,000 to warm up, then 10,000 counted${times}`, group: 'TCP connections opened and closed per second', unit: 'conn/s', id, target }, async () => {
          const r = await repeated(repeats, 'perSecond', () => connectionRate(mtu, { close }));
          return { id, label, chartLabel: `${how}, ${m}`, unit: 'conn/s', value: r.perSecond, target, range: range(r), detail: r };
        });
      }
    }
  },
};
