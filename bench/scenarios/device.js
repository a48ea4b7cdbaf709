// Kernel <-> stack over a TAP device inside a network namespace this
// scenario creates and removes: 1 GiB (256 MiB with --quick) each way, one
// direction at a time, at MTU 1500 and 65520, with a kernel TCP peer (a node
// process in the namespace), each without and with the TAP's offloads
// (openTap's `offload`: checksum offload and TSO/GSO); and the kernel's ping
// RTT to the stack.
// Needs root and /dev/net/tun; otherwise it reports why and records nothing.
import { execFile, execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { promisify } from 'node:util';
import { createStack, openTap } from '../../dist/index.js';

const run = promisify(execFile);

const PEER = `
const net = require('net');
const [mode, bytes] = [process.argv[1], Number(process.argv[2])];
const block = Buffer.alloc(1 << 20, 7);
const server = net.createServer((c) => {
  server.close();
  if (mode === 'send') {
    let sent = 0;
    const pump = () => { while (sent < bytes) { sent += block.length; if (!c.write(block)) return c.once('drain', pump); } c.end(); };
    pump();
    c.resume();
  } else {
    c.resume();
    c.on('end', () => c.end());
  }
});
server.listen(9000, () => console.log('listening'));
`;

async function oneWay(stack, ns, mode, bytes) {
  const peer = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', PEER, mode, String(bytes)], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    await new Promise((resolve, reject) => {
      peer.stdout.once('data', resolve);
      peer.once('exit', (code) => reject(new Error(`peer exited ${code}`)));
    });
    const sock = stack.connect(9000, '10.77.0.1');
    await once(sock, 'connect');
    const started = performance.now();
    let moved = 0;
    if (mode === 'send') {
      sock.on('data', (d) => (moved += d.length));
      await once(sock, 'end');
    } else {
      sock.resume();
      const block = Buffer.alloc(1 << 20, 9);
      for (; moved < bytes; moved += block.length) if (!sock.write(block)) await once(sock, 'drain');
      sock.end();
      await once(sock, 'close');
    }
    return (moved * 8) / ((performance.now() - started) / 1000) / 1e9;
  } finally {
    peer.kill();
  }
}

export default {
  name: 'device',
  title: 'kernel ↔ stack over TAP',
  description: 'A TAP device inside a network namespace made for the run: bulk TCP each way (one at a time) against a kernel peer at MTU 1500 and 65520, without and with offloads (checksum, TSO/GSO), and ping RTT from the kernel. Needs root.',
  async run(ctx) {
    if (process.getuid?.() !== 0) {
      ctx.log('skipped: needs root (a TAP device in a network namespace)');
      return;
    }
    const bytes = (ctx.quick ? 256 : 1024) * 1024 * 1024;
    for (const [mtu, offload] of [[1500, false], [1500, true], [65520, false], [65520, true]]) {
      const ns = `tt-bench-${process.pid}-${mtu}${offload ? '-o' : ''}`;
      execFileSync('ip', ['netns', 'add', ns]);
      const stack = createStack();
      try {
        const tap = openTap({ name: 'tt0', netns: `/run/netns/${ns}`, mtu, offload });
        execFileSync('ip', ['-n', ns, 'addr', 'add', '10.77.0.1/24', 'dev', 'tt0']);
        stack.addInterface({ link: tap, ipv4: '10.77.0.2/24' });
        const m = `MTU ${mtu}${offload ? ', offload' : ''}`;
        const id = `${mtu}${offload ? '-offload' : ''}`;
        for (const [mode, label] of [['send', `kernel → stack, ${m}`], ['receive', `stack → kernel, ${m}`]]) {
          await ctx.measure({ label: `TCP bulk ${label}`, doing: `${bytes / 2 ** 20} MiB`, group: 'TCP bulk over TAP', unit: 'Gbit/s' }, async () => ({
            id: `tap-${mode}-${id}`, label: `TCP bulk ${label}`, chartLabel: label, unit: 'Gbit/s', value: await oneWay(stack, ns, mode, bytes),
          }));
        }
        await ctx.measure({ label: `ping kernel → stack, ${m}`, doing: '50 echoes, 10 ms apart', group: 'ping RTT over TAP', unit: 'ms' }, async () => {
          const { stdout } = await run('ip', ['netns', 'exec', ns, 'ping', '-c', '50', '-i', '0.01', '-q', '10.77.0.2']);
          const avg = Number(/= [\d.]+\/([\d.]+)\//.exec(stdout)?.[1]);
          return { id: `tap-ping-${id}`, label: `ping kernel → stack avg, ${m}`, chartLabel: `avg, ${m}`, unit: 'ms', value: avg };
        });
        if (offload) ctx.log(`${m}: ${JSON.stringify(tap.counters)}`);
      } finally {
        stack.close();
        execFileSync('ip', ['netns', 'delete', ns]);
      }
    }
  },
};
