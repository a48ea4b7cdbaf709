// Link lifecycle: 'close'/'down'/'up'/'error' on every kind of link, the
// stack's interface following them, the gateway ending a gone sandbox's
// flows, and the socket protocols VM runtimes speak (QEMU stream framing,
// socket_vmnet's, vfkit's unixgram with its "VFKT" greeting) against small
// peers that write the bytes themselves. Unix sockets live in a temp
// directory this file creates and removes; TCP only on 127.0.0.1.
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync, existsSync, readFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createCable, createStack, type Stack } from '../src/index.js';
import { StreamLink } from '../src/node/stream-link.js';
import { openUnixDgram } from '../src/node/links.js';
import { createGateway } from '../src/gateway/gateway.js';
import { hex } from './support/frames.js';

const cleanup: (() => void)[] = [];
afterEach(() => {
  for (const fn of cleanup.splice(0).reverse()) fn();
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'tt-life-'));
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function waitFor(cond: () => boolean, ms: number, what: string): Promise<void> {
  const until = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const STACK_MAC = '02:00:00:00:09:01';
const PEER_MAC = '020000000999';
/** An ARP request from 10.9.0.2 (02:00:00:00:09:99) for 10.9.0.1, byte for byte. */
const ARP_REQUEST = hex(`
  ffffffffffff ${PEER_MAC} 0806
  0001 0800 06 04 0001 ${PEER_MAC} 0a090002 000000000000 0a090001`);
/** The start of the stack's reply: to the peer, from the stack, op 2, sender 10.9.0.1. */
const ARP_REPLY_START = `${PEER_MAC}020000000901 0806 0001 0800 06 04 0002 020000000901 0a090001`.replace(/\s/g, '');

function stackOn(link: Parameters<Stack['addInterface']>[0]['link']): Stack {
  const stack = createStack();
  stack.addInterface({ link, ipv4: '10.9.0.1/24', mac: STACK_MAC });
  cleanup.push(() => stack.close());
  return stack;
}

/** Frames a payload with QEMU stream's (and socket_vmnet's) 4-byte big-endian length. */
function framed(frame: Uint8Array): Buffer {
  const b = Buffer.alloc(4 + frame.length);
  b.writeUInt32BE(frame.length, 0);
  b.set(frame, 4);
  return b;
}

/** Reads length-prefixed frames from a socket. */
function frameReader(socket: net.Socket): Buffer[] {
  const frames: Buffer[] = [];
  let buf = Buffer.alloc(0);
  socket.on('data', (d: Buffer) => {
    buf = Buffer.concat([buf, d]);
    while (buf.length >= 4 && buf.length >= 4 + buf.readUInt32BE(0)) {
      const n = buf.readUInt32BE(0);
      frames.push(buf.subarray(4, 4 + n));
      buf = buf.subarray(4 + n);
    }
  });
  return frames;
}

async function connectTo(path: string): Promise<net.Socket> {
  const s = net.connect(path);
  s.on('error', () => undefined);
  await once(s, 'connect');
  cleanup.push(() => s.destroy());
  return s;
}

describe('link lifecycle', () => {
  it('a cable: close() emits close local on one end and close peer on the other, and the far interface goes down', () => {
    const [a, b] = createCable();
    const events: string[] = [];
    a.on('close', (r) => events.push(`a:${r}`));
    b.on('close', (r) => events.push(`b:${r}`));
    const stack = stackOn(b);
    const iface = stack.interfaces[0]!;
    const downs: string[] = [];
    iface.on('down', (r) => downs.push(r));
    a.close();
    a.close();
    expect(events).toEqual(['a:local', 'b:peer']);
    expect(downs).toEqual(['peer']);
    expect(iface.linkUp).toBe(false);
    expect(iface.linkOpen).toBe(false);
  });

  it('a StreamLink over one stream closes with reason peer when the stream ends', async () => {
    const [x, y] = await socketPair();
    const link = new StreamLink(x);
    const closed = new Promise<string>((r) => link.on('close', r));
    y.end();
    expect(await closed).toBe('peer');
  });
});

/** Two connected TCP sockets on loopback. */
async function socketPair(): Promise<[net.Socket, net.Socket]> {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const accepted = once(server, 'connection');
  const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  const [peer] = (await accepted) as [net.Socket];
  server.close();
  cleanup.push(() => {
    client.destroy();
    peer.destroy();
  });
  return [client, peer];
}

describe('StreamLink.listen (QEMU -netdev stream,server=off; socket_vmnet clients)', () => {
  it('answers a peer that speaks the 4-byte length framing byte for byte, then takes the next peer after the first goes', async () => {
    const path = join(tempDir(), 'vm.sock');
    const link = await StreamLink.listen({ path });
    const stack = stackOn(link);
    const iface = stack.interfaces[0]!;
    const events: string[] = [];
    link.on('up', () => events.push('up'));
    link.on('down', (r) => events.push(`down:${r}`));
    iface.on('down', () => events.push('iface-down'));
    iface.on('up', () => events.push('iface-up'));

    for (let round = 0; round < 2; round++) {
      const peer = await connectTo(path);
      const frames = frameReader(peer);
      peer.write(framed(ARP_REQUEST));
      // After the link comes up again lwIP announces itself (gratuitous ARP) too.
      await waitFor(() => frames.some((f) => f.toString('hex').startsWith(ARP_REPLY_START)), 5000, 'ARP reply');
      peer.destroy();
      await waitFor(() => events.filter((e) => e === 'down:peer').length === round + 1, 2000, 'down');
    }
    // The stack listens first (it attached first), so the interface moves before our listener hears.
    expect(events).toEqual(['up', 'iface-down', 'down:peer', 'iface-up', 'up', 'iface-down', 'down:peer']);
    expect(link.counters.peersAccepted).toBe(2);
    link.close();
    expect(existsSync(path)).toBe(false);
  });

  it('refuses a second concurrent peer with ERR_LINK_BUSY, closing it, and the first keeps working', async () => {
    const path = join(tempDir(), 'vm.sock');
    const link = await StreamLink.listen({ path });
    stackOn(link);
    const errors: (Error & { code?: string })[] = [];
    link.on('error', (e) => errors.push(e));
    const first = await connectTo(path);
    const frames = frameReader(first);
    await waitFor(() => link.connected, 2000, 'first peer');
    const second = await connectTo(path);
    const secondClosed = once(second, 'close');
    await secondClosed;
    expect(errors).toHaveLength(1);
    expect(errors[0]!.code).toBe('ERR_LINK_BUSY');
    expect(errors[0]!.message).toMatch(/refused a second connection while a peer is connected/);
    expect(link.counters.peersRefused).toBe(1);
    first.write(framed(ARP_REQUEST));
    await waitFor(() => frames.length > 0, 5000, 'ARP reply to the first peer');
  });

  it('with replace: true a new connection takes over from the current peer', async () => {
    const path = join(tempDir(), 'vm.sock');
    const link = await StreamLink.listen({ path }, { replace: true });
    stackOn(link);
    const first = await connectTo(path);
    await waitFor(() => link.connected, 2000, 'first peer');
    const firstClosed = once(first, 'close');
    const second = await connectTo(path);
    await firstClosed;
    const frames = frameReader(second);
    second.write(framed(ARP_REQUEST));
    await waitFor(() => frames.length > 0, 5000, 'ARP reply to the second peer');
  });

  it.each([
    ['larger than the MTU allows', 70_000],
    ['zero', 0],
  ])('a frame length %s drops that peer with ERR_LINK_BAD_FRAME; the link listens on and serves the next', async (_what, length) => {
    const path = join(tempDir(), 'vm.sock');
    const link = await StreamLink.listen({ path });
    stackOn(link);
    const errors: (Error & { code?: string })[] = [];
    link.on('error', (e) => errors.push(e));
    const downs: string[] = [];
    link.on('down', (r) => downs.push(r));
    const bad = await connectTo(path);
    const badClosed = once(bad, 'close');
    const prefix = Buffer.alloc(8);
    prefix.writeUInt32BE(length, 0);
    bad.write(prefix);
    await badClosed;
    expect(errors.map((e) => e.code)).toEqual(['ERR_LINK_BAD_FRAME']);
    expect(errors[0]!.message).toContain(`frame length of ${length} bytes (allowed: 1 to 1518)`);
    expect(downs).toEqual(['error']);
    expect(link.counters.rxBadLength).toBe(1);
    const good = await connectTo(path);
    const frames = frameReader(good);
    good.write(framed(ARP_REQUEST));
    await waitFor(() => frames.length > 0, 5000, 'ARP reply after the bad peer');
  });

  it('a path that cannot be bound rejects with the reason and the path; a stale socket file is replaced; a live one is refused', async () => {
    const dir = tempDir();
    await expect(StreamLink.listen({ path: join(dir, 'no', 'such', 'dir.sock') })).rejects.toMatchObject({
      code: expect.stringMatching(/^E/), message: expect.stringMatching(/^StreamLink\.listen: cannot listen at .*no\/such\/dir\.sock: /),
    });
    const path = join(dir, 'vm.sock');
    // A socket file whose listener is gone (the kernel still has the inode).
    const r = spawnSync('python3', ['-c', `import socket; s=socket.socket(socket.AF_UNIX); s.bind(${JSON.stringify(path)})`]);
    expect(r.status).toBe(0);
    expect(existsSync(path)).toBe(true);
    const link = await StreamLink.listen({ path });
    cleanup.push(() => link.close());
    await expect(StreamLink.listen({ path })).rejects.toMatchObject({
      code: 'EADDRINUSE', message: `StreamLink.listen: cannot listen at ${path}: another process listens there`,
    });
    // A regular file where the socket should go is someone's data: refused, kept.
    const notSocket = join(dir, 'notes.sock');
    writeFileSync(notSocket, 'keep me');
    await expect(StreamLink.listen({ path: notSocket })).rejects.toMatchObject({ code: 'EEXIST' });
    expect(readFileSync(notSocket, 'utf8')).toBe('keep me');
    expect(() => StreamLink.listen({ path: '' })).toThrow(TypeError);
    expect(() => StreamLink.listen({ port: 70000 })).toThrow(/"port" option/);
    await expect(StreamLink.connect({ path: join(dir, 'nobody.sock') })).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('listens on TCP (port 0 picks one) and connect() reaches it', async () => {
    const listening = await StreamLink.listen({ port: 0 });
    const server = stackOn(listening);
    const { port } = listening.address() as net.AddressInfo;
    const connecting = await StreamLink.connect({ port });
    const client = createStack();
    cleanup.push(() => client.close());
    client.addInterface({ link: connecting, ipv4: '10.9.0.2/24' });
    server.createServer((s) => s.end('hi')).listen(80);
    const socket = client.connect(80, '10.9.0.1');
    const chunks: Buffer[] = [];
    socket.on('data', (d: Buffer) => chunks.push(d));
    await once(socket, 'end');
    expect(Buffer.concat(chunks).toString()).toBe('hi');
    const closed = new Promise<string>((r) => connecting.on('close', r));
    listening.close();
    expect(await closed).toBe('peer');
  });
});

describe('unix datagram links across a peer restart (QEMU -netdev dgram, vfkit)', () => {
  /** A peer process speaking vfkit's unixgram: binds its path, optionally says VFKT, sends an ARP request, prints the reply in hex. */
  async function vfkitPeer(dir: string, mine: string, ours: string, hello: boolean): Promise<string> {
    const script = join(dir, 'peer.py');
    writeFileSync(script, [
      'import socket, sys',
      'mine, ours, hello, frame = sys.argv[1], sys.argv[2], sys.argv[3] == "1", bytes.fromhex(sys.argv[4])',
      's = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)',
      's.bind(mine)',
      'if hello: s.sendto(b"VFKT", ours)',
      's.sendto(frame, ours)',
      's.settimeout(5)',
      'while True:',
      '    d = s.recv(65536)',
      '    if d[12:14] == b"\\x08\\x06" and d[20:22] == b"\\x00\\x02": break  # the ARP reply (a gratuitous request may come first)',
      'print(d.hex())',
    ].join('\n'));
    // Not spawnSync: this process must keep running to answer.
    const p = spawn('python3', [script, mine, ours, hello ? '1' : '0', Buffer.from(ARP_REQUEST).toString('hex')], { stdio: ['ignore', 'pipe', 'pipe'] });
    cleanup.push(() => p.kill());
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (err += d));
    const [code] = await once(p, 'exit');
    if (code !== 0) throw new Error(`peer failed: ${err}`);
    return out.trim();
  }

  it('learns the sender, consumes vfkit\'s VFKT greeting, goes down when the peer is gone and learns the restarted one', async () => {
    const dir = tempDir();
    const ours = join(dir, 'net.sock');
    const link = openUnixDgram({ path: ours });
    const stack = stackOn(link);
    const events: string[] = [];
    link.on('down', (r) => events.push(`down:${r}`));
    link.on('up', () => events.push('up'));
    stack.interfaces[0]!.on('down', () => events.push('iface-down'));
    const mine = join(dir, 'vfkit.sock');
    expect(await vfkitPeer(dir, mine, ours, true)).toMatch(new RegExp(`^${ARP_REPLY_START}`));
    expect(link.counters.rxHello).toBe(1);
    expect(link.counters.rxFrames).toBe(1); // the greeting is consumed, not counted or handed over as a frame
    // The peer process has exited; its socket file stays (vfkit does not remove it either).
    // The stack's next frame to it is refused: the link goes down, not dead.
    await stack.ping('10.9.0.2', { timeout: 300 }).catch(() => undefined);
    await waitFor(() => events.includes('down:peer'), 2000, 'down');
    expect(events).toContain('iface-down');
    rmSync(mine);
    // The "restarted VM", at the same path, without the greeting (QEMU's dgram).
    expect(await vfkitPeer(dir, mine, ours, false)).toMatch(new RegExp(`^${ARP_REPLY_START}`));
    await waitFor(() => events.includes('up'), 2000, 'up');
    expect(link.counters.peersLost).toBeGreaterThanOrEqual(1); // the second peer may be gone too by now
    expect(link.counters.peersLearned).toBe(2);
    expect(link.error).toBe(null);
  });

  it('with a fixed peer path, connects to the path again once a restarted peer binds it', async () => {
    const dir = tempDir();
    const ours = join(dir, 'net.sock');
    const theirs = join(dir, 'vm.sock');
    const bindPeer = () => {
      const p = spawn('python3', ['-c', [
        'import socket, sys',
        's = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)',
        `s.bind(${JSON.stringify(theirs)})`,
        'print("ready", flush=True)',
        's.settimeout(10)',
        'd = s.recv(65536)',
        'print(d.hex(), flush=True)',
      ].join('\n')], { stdio: ['ignore', 'pipe', 'inherit'] });
      cleanup.push(() => p.kill());
      let out = '';
      p.stdout.on('data', (d) => (out += d));
      return { output: () => out, exited: once(p, 'exit') };
    };
    let peer = bindPeer();
    await waitFor(() => peer.output().includes('ready'), 5000, 'peer');
    const link = openUnixDgram({ path: ours, peer: theirs });
    const stack = stackOn(link);
    const downs: string[] = [];
    link.on('down', (r) => downs.push(r));
    await stack.ping('10.9.0.2', { timeout: 200 }).catch(() => undefined); // an ARP request reaches the peer
    await peer.exited;
    rmSync(theirs);
    await stack.ping('10.9.0.2', { timeout: 200 }).catch(() => undefined);
    await waitFor(() => downs.length === 1, 2000, 'down');
    peer = bindPeer();
    await waitFor(() => peer.output().includes('ready'), 5000, 'restarted peer');
    await stack.ping('10.9.0.2', { timeout: 200 }).catch(() => undefined);
    await waitFor(() => peer.output().split('\n').length > 2, 5000, 'a frame at the restarted peer');
    expect(peer.output()).toContain('ffffffffffff0200000009010806'); // the stack's ARP request
    expect(link.counters.peersLearned).toBe(1);
  });
});

describe('gateway across a VM restart', () => {
  it('ends the flows of a gone sandbox within a second, releases its lease, and leases the same address to the restarted VM', async () => {
    const path = join(tempDir(), 'gw.sock');
    const link = await StreamLink.listen({ path });
    const gw = createGateway({ link, hostLoopback: true });
    cleanup.push(() => gw.close());
    await gw.ready;
    // The host server streams until its client goes.
    let hostClosedAt = 0;
    const server = net.createServer((s) => {
      s.on('error', () => undefined);
      s.on('close', () => (hostClosedAt = Date.now()));
      const chunk = Buffer.alloc(65536);
      const pump = () => {
        while (!s.destroyed && s.write(chunk));
      };
      s.on('drain', pump);
      pump();
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    cleanup.push(() => server.close());
    const port = (server.address() as net.AddressInfo).port;

    const boot = async () => {
      const vm = createStack();
      const vmLink = await StreamLink.connect({ path });
      const iface = vm.addInterface({ link: vmLink, dhcp: true, mac: '02:00:00:00:0a:01' });
      await waitFor(() => iface.ipv4 !== null, 20_000, 'DHCP lease');
      return { vm, address: iface.ipv4!.address };
    };
    const first = await boot();
    expect(first.address).toBe('10.0.2.100');
    expect(gw.dhcp.leases().map((l) => l.address)).toEqual(['10.0.2.100']);
    const socket = first.vm.connect(port, '10.0.2.2');
    socket.on('error', () => undefined);
    let received = 0;
    socket.on('data', (d: Buffer) => (received += d.length));
    await waitFor(() => received > 1 << 20, 20_000, 'data flowing');
    expect(gw.metrics().tcpOpen).toBe(1);
    const linkDown = once(gw, 'link-down');
    const killedAt = Date.now();
    first.vm.close(); // the VM is gone: its end of the stream closes
    expect((await linkDown)[0]).toBe('peer');
    await waitFor(() => gw.metrics().tcpOpen === 0 && hostClosedAt > 0, 1000, 'flows closed');
    expect(hostClosedAt - killedAt).toBeLessThan(1000);
    expect(gw.dhcp.leases()).toEqual([]);

    const second = await boot();
    cleanup.push(() => second.vm.close());
    expect(second.address).toBe('10.0.2.100');
    const again = second.vm.connect(port, '10.0.2.2');
    again.on('error', () => undefined);
    let more = 0;
    again.on('data', (d: Buffer) => (more += d.length));
    await waitFor(() => more > 1 << 20, 20_000, 'data after the restart');
    again.destroy();
  }, 90_000); // generous: it once ran out of 30 s on a machine loaded to 12
});
