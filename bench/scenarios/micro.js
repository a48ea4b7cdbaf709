// Micro-benchmarks of the hot paths, with tinybench (see bench/README.md for
// why): the Internet checksum, frames crossing into and out of a stack's wasm
// instance, and wire parsing of a real TCP segment.
import { Bench } from 'tinybench';
import { createCable, createStack } from '../../dist/index.js';
import { internetChecksum } from '../../dist/wire/checksum.js';
import { parseEthernetFrame } from '../../dist/wire/ethernet.js';
import { parseIPv4Packet } from '../../dist/wire/ipv4.js';
import { parseTcpSegment } from '../../dist/wire/tcp.js';
import { Cleanup, nextTurn, sleep, withTimeout } from '../lib/util.js';

/** Frames fed per iteration of the receive benchmark: one batch, one flush. */
const RX_BATCH = 32;

/** A link that passes everything through and hands a copy of each sent frame to `tap`. */
function tapped(link, tap) {
  return {
    get medium() { return link.medium; },
    get mtu() { return link.mtu; },
    attach: (receive) => link.attach(receive),
    send: (frame) => {
      tap(frame.slice());
      link.send(frame);
    },
    flush: () => link.flush?.(),
    close: () => link.close(),
  };
}

const until = async (condition, what) => withTimeout((async () => {
  while (!condition()) await sleep(1);
})(), 5000, what);

/**
 * Two stacks a (10.0.0.1) → b (10.0.0.2) on a 1500-byte cable, with a's
 * transmissions recorded, used to capture real frames: UDP datagrams to a
 * bound socket of b and a full-size TCP data segment.
 */
async function captureFrames(cleanup) {
  const a = createStack();
  cleanup.add(() => a.close());
  const b = createStack();
  cleanup.add(() => b.close());
  const [la, lb] = createCable({ mtu: 1500 });
  const sent = [];
  a.addInterface({ link: tapped(la, (f) => sent.push(f)), ipv4: '10.0.0.1/24' });
  b.addInterface({ link: lb, ipv4: '10.0.0.2/24' });
  const counter = { udp: 0 };
  const rx = b.createSocket('udp4', () => counter.udp++);
  cleanup.add(() => rx.close());
  await new Promise((resolve) => rx.bind(7000, resolve));
  const tx = a.createSocket('udp4');
  cleanup.add(() => tx.close());

  const udpFrame = async (payloadSize) => {
    const before = counter.udp;
    sent.length = 0;
    tx.send(Buffer.alloc(payloadSize, 0x61), 7000, '10.0.0.2');
    await until(() => counter.udp > before, 'UDP datagram to capture');
    const frame = sent.find((f) => f.length === 14 + 20 + 8 + payloadSize && f[23] === 17);
    if (!frame) throw new Error(`no ${payloadSize}-byte UDP frame captured`);
    return frame;
  };
  const udp64 = await udpFrame(64 - 14 - 20 - 8);
  const udp1514 = await udpFrame(1500 - 20 - 8);

  // A full-size TCP data segment (MSS 1460, timestamps: 1448 bytes of data).
  const server = b.createServer((s) => s.on('data', () => {}).on('error', () => {}));
  cleanup.add(() => server.close());
  await new Promise((resolve) => server.listen(7001, resolve));
  sent.length = 0;
  const client = a.connect(7001, '10.0.0.2');
  cleanup.add(() => client.destroy());
  client.on('error', () => {});
  await new Promise((resolve) => client.once('connect', resolve));
  client.write(Buffer.alloc(64 * 1024, 0x62));
  await until(() => sent.some((f) => f.length === 1514 && f[23] === 6), 'TCP data segment to capture');
  const tcp1514 = sent.find((f) => f.length === 1514 && f[23] === 6);
  return { a, b, la, counter, udp64, udp1514, tcp1514 };
}

/**
 * A stack whose link ends in a counting sink, with a static ARP entry for the
 * destination: a UDP send runs lwIP's whole output path and hands the frame to
 * the link synchronously, with no peer stack to process it.
 */
function sendingStack(cleanup) {
  const c = createStack();
  cleanup.add(() => c.close());
  const [lc, sink] = createCable({ mtu: 1500 });
  const out = { frames: 0 };
  sink.attach(() => out.frames++);
  c.addInterface({ link: lc, ipv4: '10.0.1.1/24' });
  c.neighbors.add({ address: '10.0.1.2', mac: '02:00:00:00:01:02' });
  const socket = c.createSocket('udp4');
  cleanup.add(() => socket.close());
  socket.bind(7002);
  return { c, socket, out };
}

function randomBytes(n) {
  const bytes = new Uint8Array(n);
  for (let i = 0; i < n; i += 65536) crypto.getRandomValues(bytes.subarray(i, Math.min(n, i + 65536)));
  return bytes;
}

export default {
  name: 'micro',
  title: 'micro-benchmarks of hot paths (tinybench)',
  description: 'tinybench: Internet checksum over 64 B/1500 B/64 KiB, frames into a stack (cable send → wasm → UDP socket) and out of one (UDP send → frame), ICMP echo between two stacks, parsing a real Ethernet/IPv4/TCP segment.',
  async run(ctx) {
    const cleanup = new Cleanup();
    try {
      const bench = new Bench({
        time: ctx.quick ? 150 : 1000,
        warmupTime: ctx.quick ? 50 : 250,
        iterations: 32,
        warmupIterations: 16,
      });
      // id, label, group, unit conversion: per-iteration ns ÷ `per` (batched tasks).
      const meta = new Map();
      const add = (id, label, group, fn, extra = {}) => {
        meta.set(label, { id, label, group, per: 1, ...extra });
        bench.add(label, fn);
      };
      // A sync task that runs `fn` `per` times per sample: tinybench times each
      // sample with two clock reads (tens of ns), which would otherwise swamp
      // operations that take a few hundred nanoseconds.
      const addLoop = (id, label, group, per, fn, extra = {}) => {
        add(id, label, group, () => {
          for (let i = 0; i < per; i++) fn();
        }, { per, ...extra });
      };

      // Results go to `sink` and `keep` so that no call can be optimised away.
      let sink = 0;
      for (const [name, size] of [['64 B', 64], ['1500 B', 1500], ['64 KiB', 65536]]) {
        const data = randomBytes(size);
        addLoop(`checksum-${size}`, `internetChecksum, ${name}`, 'Internet checksum (JS, src/wire/checksum.ts)', Math.max(1, 65536 / size / 16), () => {
          sink ^= internetChecksum(data);
        }, { bytes: size });
      }

      ctx.log('capturing real frames from two stacks…');
      const cap = await captureFrames(cleanup);
      let fed = 0;
      const udpBefore = cap.counter.udp;
      for (const [name, frame] of [['64 B', cap.udp64], ['1514 B', cap.udp1514]]) {
        add(`rx-udp-${frame.length}`, `into a stack: ${name} UDP frame → socket`, 'Frames crossing the wasm boundary (per frame)', async () => {
          for (let i = 0; i < RX_BATCH; i++) cap.la.send(frame);
          fed += RX_BATCH;
          // The stack copies each frame into a pbuf on arrival and feeds the
          // batch to lwIP on the next turn of the event loop.
          await nextTurn();
        }, { per: RX_BATCH });
      }

      const out = sendingStack(cleanup);
      let sends = 0;
      for (const [name, payload] of [['64 B', 64 - 14 - 20 - 8], ['1514 B', 1500 - 20 - 8]]) {
        const data = Buffer.alloc(payload, 0x63);
        addLoop(`tx-udp-${payload + 42}`, `out of a stack: UDP send → ${name} frame`, 'Frames crossing the wasm boundary (per frame)', RX_BATCH, () => {
          out.socket.send(data, 7000, '10.0.1.2');
          sends++;
        });
      }
      add('ping', 'ICMP echo round trip, two stacks', 'ICMP echo between two stacks (request and reply: four crossings)', async () => {
        await cap.a.ping('10.0.0.2');
      });

      const frame = cap.tcp1514;
      const ip = parseIPv4Packet(frame.subarray(14));
      const tcpBytes = ip.payload;
      const pseudo = { src: ip.src, dst: ip.dst };
      if (!parseTcpSegment(tcpBytes, pseudo)?.checksumOk) throw new Error('captured TCP segment does not verify');
      let keep = null;
      addLoop('parse-ethernet', 'parseEthernetFrame, 1514 B TCP frame', 'Wire parsing of a real 1514-byte TCP frame', 64, () => {
        keep = parseEthernetFrame(frame);
      });
      addLoop('parse-ipv4', 'parseIPv4Packet (header checksum verified)', 'Wire parsing of a real 1514-byte TCP frame', 64, () => {
        keep = parseIPv4Packet(frame.subarray(14));
      });
      addLoop('parse-tcp', 'parseTcpSegment, no checksum', 'Wire parsing of a real 1514-byte TCP frame', 64, () => {
        keep = parseTcpSegment(tcpBytes);
      });
      addLoop('parse-tcp-checksum', 'parseTcpSegment + checksum (pseudo header)', 'Wire parsing of a real 1514-byte TCP frame', 64, () => {
        keep = parseTcpSegment(tcpBytes, pseudo);
      });

      bench.addEventListener('cycle', (e) => {
        const task = e.task;
        const m = meta.get(task.name);
        const r = task.result;
        ctx.log(`${task.name}: ${r.state === 'completed' ? `${((r.latency.mean * 1e6) / m.per).toFixed(0)} ns, ${task.runs} runs` : r.state}`);
      });
      ctx.log(`running ${bench.tasks.length} tinybench tasks (${bench.time} ms each after ${bench.warmupTime} ms warm-up)…`);
      await bench.run();
      // Every frame fed must have reached the socket and every send must have
      // left as a frame, or the figures measured a drop path.
      await nextTurn();
      const delivered = cap.counter.udp - udpBefore;
      if (delivered !== fed) ctx.note(`into a stack: ${fed} frames fed, ${delivered} datagrams delivered`);
      if (out.out.frames < sends) ctx.note(`out of a stack: ${sends} sends, ${out.out.frames} frames`);

      for (const task of bench.tasks) {
        const m = meta.get(task.name);
        const r = task.result;
        if (r.state !== 'completed') {
          ctx.figure({ id: m.id, label: m.label, group: m.group, unit: 'ns', value: null, error: r.error?.message ?? r.state });
          continue;
        }
        const ns = (r.latency.mean * 1e6) / m.per;
        const detail = {
          meanNs: ns,
          p50Ns: (r.latency.p50 * 1e6) / m.per,
          p99Ns: (r.latency.p99 * 1e6) / m.per,
          rmePercent: r.latency.rme,
          samples: r.latency.samplesCount,
          perIteration: m.per,
        };
        ctx.figure({ id: m.id, label: m.label, group: m.group, unit: 'ns', value: ns, detail });
        if (m.bytes) {
          ctx.figure({ id: `${m.id}-rate`, label: `${m.label}: throughput`, chartLabel: m.label, group: 'Internet checksum throughput', unit: 'GB/s', value: m.bytes / ns, detail: { bytes: m.bytes } });
        }
      }
      void sink;
      void keep;
    } finally {
      cleanup.run();
    }
  },
};
