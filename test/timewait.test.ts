/**
 * TIME-WAIT reopened by a new SYN (RFC 1122 4.2.2.13, RFC 6191; lwIP patch
 * 210, wasm/src/tcp_timewait.c). A stack that closed first holds the
 * 4-tuple in TIME-WAIT; a bare SYN for it whose sequence number is above the
 * old connection's RCV.NXT (and whose timestamp, if both use them, is not
 * older) opens a new connection at once, with an ISN above the old SND.NXT.
 * Any other SYN gets TIME-WAIT's answer as before and opens nothing.
 *
 * In process with a hand-driven peer on a ManualClock (time never moves, so
 * TIME-WAIT never expires under the test and the stack's RFC 6528 ISN for
 * the tuple repeats: the new ISN must be lifted above the old SND.NXT);
 * then, as root, a Linux client that reuses its source port over a TAP.
 */
import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { createStack, ManualClock, type Link, type TcpSocket } from '../src/index.js';
import type { FrameReceiver } from '../src/core/link.js';
import { openTap } from '../src/node/links.js';
import { EtherType, parseEthernetFrame } from '../src/wire/ethernet.js';
import { IpProtocol, parseIPv4Packet } from '../src/wire/ipv4.js';
import { parseTcpSegment, TcpFlags, type TcpOptionsInit, type TcpSegment } from '../src/wire/tcp.js';
import { deviceTestsUnavailable, Netns } from './support/netns.js';
import { rawPeer, type RawPeer } from './support/rawpeer.js';

const peers: RawPeer[] = [];
afterEach(() => {
  for (const p of peers.splice(0)) p.close();
});

const fromStackTo = (port: number, flags: number) => (s: TcpSegment) => s.dstPort === port && (s.flags & flags) === flags;
const isSynAck = (port: number) => fromStackTo(port, TcpFlags.SYN | TcpFlags.ACK);

/** A stack on a ManualClock listening on port 80; each connection gets 'bye' and is closed by the stack. */
async function closingServer(): Promise<{ peer: RawPeer; accepted: TcpSocket[]; close: () => Promise<void> }> {
  const peer = rawPeer({ clock: new ManualClock(1_000_000) });
  peers.push(peer);
  const accepted: TcpSocket[] = [];
  const server = peer.stack.createServer((s) => {
    accepted.push(s);
    s.on('error', () => undefined);
    s.end('bye');
  });
  server.listen(80);
  await once(server, 'listening');
  return { peer, accepted, close: () => new Promise<void>((r) => server.close(() => r())) };
}

interface Closed { rcvNxt: number; sndNxt: number; ourIsn: number }

/**
 * Opens a connection from port with the peer's ISN isn, reads the stack's
 * 'bye' and FIN, acknowledges them and sends its own FIN: the stack is then
 * in TIME-WAIT. ts: the peer's first TSval (each segment adds one).
 */
async function toTimeWait(peer: RawPeer, port: number, isn: number, ts?: number): Promise<Closed> {
  let tsval = ts;
  const opts = (syn: boolean, echo = 0): TcpOptionsInit => ({
    ...(syn ? { mss: 1460 } : {}),
    ...(tsval !== undefined ? { timestamps: { value: tsval++, echo } } : {}),
  });
  const synAckP = peer.next(isSynAck(port));
  peer.send({ srcPort: port, dstPort: 80, seq: isn, flags: TcpFlags.SYN, options: opts(true) });
  const synAck = await synAckP;
  const ourIsn = synAck.seqNumber;
  const finP = peer.next(fromStackTo(port, TcpFlags.FIN));
  peer.send({ srcPort: port, dstPort: 80, seq: isn + 1, ack: ourIsn + 1, flags: TcpFlags.ACK, options: opts(false, synAck.options.timestamps?.value) });
  const fin = await finP;
  const sndNxt = (fin.seqNumber + fin.payload.length + 1) >>> 0;
  expect(sndNxt).toBe((ourIsn + 1 + 3 + 1) >>> 0); // SYN, 'bye', FIN
  peer.send({ srcPort: port, dstPort: 80, seq: isn + 1, ack: sndNxt, flags: TcpFlags.ACK, options: opts(false, fin.options.timestamps?.value) });
  const lastAckP = peer.next((s) => s.dstPort === port && s.ackNumber === ((isn + 2) >>> 0));
  peer.send({ srcPort: port, dstPort: 80, seq: isn + 1, ack: sndNxt, flags: TcpFlags.FIN | TcpFlags.ACK, options: opts(false, fin.options.timestamps?.value) });
  await lastAckP;
  return { rcvNxt: (isn + 2) >>> 0, sndNxt, ourIsn };
}

/** Sends a SYN and collects what the stack answers within a few event-loop turns. */
async function answersTo(peer: RawPeer, port: number, seq: number, options: TcpOptionsInit = { mss: 1460 }): Promise<TcpSegment[]> {
  peer.received.length = 0;
  peer.send({ srcPort: port, dstPort: 80, seq, flags: TcpFlags.SYN, options });
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
  const got = peer.received.filter((s) => s.dstPort === port);
  return got;
}

describe('TIME-WAIT and a new SYN (in process)', () => {
  it('a SYN above RCV.NXT reopens the connection: SYN-ACK at once with an ISN above the old SND.NXT, and data moves', async () => {
    const { peer, accepted } = await closingServer();
    const old = await toTimeWait(peer, 40000, 1000);
    expect(peer.stack.stats().timeWaitReopened).toBe(0);

    const isn = old.rcvNxt + 5000;
    const [synAck] = await answersTo(peer, 40000, isn);
    expect(synAck).toBeDefined();
    expect(synAck!.flags & (TcpFlags.SYN | TcpFlags.ACK)).toBe(TcpFlags.SYN | TcpFlags.ACK);
    expect(synAck!.ackNumber).toBe((isn + 1) >>> 0);
    // Time stood still, so the RFC 6528 ISN of the tuple is the old one
    // again: it is lifted past every sequence number the old connection used.
    expect(synAck!.seqNumber).toBe((old.sndNxt + 1) >>> 0);
    expect(peer.stack.stats().timeWaitReopened).toBe(1);

    const byeP = peer.next((s) => s.dstPort === 40000 && s.payload.length > 0);
    peer.send({ srcPort: 40000, dstPort: 80, seq: isn + 1, ack: synAck!.seqNumber + 1, flags: TcpFlags.ACK | TcpFlags.PSH, payload: new TextEncoder().encode('hi') });
    const bye = await byeP;
    expect(new TextDecoder().decode(bye.payload)).toBe('bye');
    expect(bye.seqNumber).toBe((synAck!.seqNumber + 1) >>> 0);
    expect(accepted.length).toBe(2);
    const [data] = (await once(accepted[1]!, 'data')) as [Buffer];
    expect(data.toString()).toBe('hi');
  });

  it('a SYN at or below RCV.NXT gets TIME-WAIT\'s answer (RST in the window, ACK below it) and opens nothing', async () => {
    const { peer, accepted } = await closingServer();
    const old = await toTimeWait(peer, 40001, 70000);

    // At RCV.NXT: in the window, RST (RFC 793); the TIME-WAIT stays.
    const atNxt = await answersTo(peer, 40001, old.rcvNxt);
    expect(atNxt.map((s) => s.flags & (TcpFlags.SYN | TcpFlags.RST))).toEqual([TcpFlags.RST]);
    // Below RCV.NXT (an old duplicate SYN): an ACK of RCV.NXT.
    const below = await answersTo(peer, 40001, old.rcvNxt - 1000);
    expect(below.length).toBe(1);
    expect(below[0]!.flags & (TcpFlags.SYN | TcpFlags.RST | TcpFlags.ACK)).toBe(TcpFlags.ACK);
    expect(below[0]!.ackNumber).toBe(old.rcvNxt);
    // Far below, at the edge of sequence space half a space away.
    const farBelow = await answersTo(peer, 40001, old.rcvNxt - 0x7fff_0000);
    expect(farBelow.some((s) => s.flags & TcpFlags.SYN)).toBe(false);
    // A SYN with ACK or with FIN set is no connection request.
    peer.received.length = 0;
    peer.send({ srcPort: 40001, dstPort: 80, seq: old.rcvNxt + 10, ack: old.sndNxt, flags: TcpFlags.SYN | TcpFlags.ACK });
    peer.send({ srcPort: 40001, dstPort: 80, seq: old.rcvNxt + 20, flags: TcpFlags.SYN | TcpFlags.FIN });
    for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
    expect(peer.received.some((s) => s.dstPort === 40001 && (s.flags & TcpFlags.SYN) !== 0)).toBe(false);

    expect(accepted.length).toBe(1);
    expect(peer.stack.stats().timeWaitReopened).toBe(0);
    // The TIME-WAIT is still there and still takes a SYN that qualifies.
    const [synAck] = await answersTo(peer, 40001, old.rcvNxt + 1);
    expect(synAck!.flags & TcpFlags.SYN).toBe(TcpFlags.SYN);
    expect(peer.stack.stats().timeWaitReopened).toBe(1);
  });

  it('with timestamps, a SYN above RCV.NXT but with an older TSval is refused; a newer one reopens', async () => {
    const { peer } = await closingServer();
    const old = await toTimeWait(peer, 40002, 5000, 100_000);
    // The peer's last TSval was 100,003 (its FIN).
    const older = await answersTo(peer, 40002, old.rcvNxt + 100, { mss: 1460, timestamps: { value: 99_000, echo: 0 } });
    expect(older.some((s) => s.flags & TcpFlags.SYN)).toBe(false);
    expect(peer.stack.stats().timeWaitReopened).toBe(0);
    const [synAck] = await answersTo(peer, 40002, old.rcvNxt + 100, { mss: 1460, timestamps: { value: 100_010, echo: 0 } });
    expect(synAck!.flags & (TcpFlags.SYN | TcpFlags.ACK)).toBe(TcpFlags.SYN | TcpFlags.ACK);
    expect(synAck!.options.timestamps?.echo).toBe(100_010);
    expect(peer.stack.stats().timeWaitReopened).toBe(1);
  });

  it('without a listener on the port the TIME-WAIT connection answers as before', async () => {
    const { peer, close } = await closingServer();
    const old = await toTimeWait(peer, 40003, 9000);
    await close();
    const answers = await answersTo(peer, 40003, old.rcvNxt + 10);
    expect(answers.some((s) => s.flags & TcpFlags.SYN)).toBe(false);
    expect(answers.map((s) => s.flags & TcpFlags.RST)).toEqual([TcpFlags.RST]); // in the window (RFC 793)
    expect(peer.stack.stats().timeWaitReopened).toBe(0);
  });
});

/** Wraps an Ethernet link and counts the TCP SYNs (without ACK) it delivers to dstPort. */
function countingSyns(link: Link, dstPort: number): Link & { syns: number[] } {
  const syns: number[] = [];
  return {
    medium: link.medium,
    mtu: link.mtu,
    syns,
    attach(receive: FrameReceiver) {
      link.attach((frame) => {
        const eth = parseEthernetFrame(frame);
        const ip = eth?.etherType === EtherType.IPv4 ? parseIPv4Packet(eth.payload) : null;
        const seg = ip?.protocol === IpProtocol.TCP ? parseTcpSegment(ip.payload) : null;
        if (seg && seg.dstPort === dstPort && (seg.flags & (TcpFlags.SYN | TcpFlags.ACK)) === TcpFlags.SYN) syns.push(seg.srcPort);
        receive(frame);
      });
    },
    send: (frame) => link.send(frame),
    flush: () => link.flush?.(),
    close: () => link.close(),
  };
}

// A client that binds a fixed source port (SO_REUSEADDR), connects, sends
// a line, reads to EOF (the server closes first), and does it again from the
// same port after the kernel's LAST_ACK is over; prints one JSON line.
const PY_CLIENT = `
import json, socket, sys, time
host, port, sport, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
out = []
for i in range(rounds):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", sport))
    s.settimeout(10)
    t0 = time.monotonic()
    try:
        s.connect((host, port))
    except OSError as e:
        out.append({"error": type(e).__name__ + ": " + str(e)})
        s.close()
        break
    connect_ms = (time.monotonic() - t0) * 1000
    s.sendall(b"round %d\\n" % i)
    data = b""
    while True:
        d = s.recv(4096)
        if not d:
            break
        data += d
    s.close()
    out.append({"connectMs": connect_ms, "data": data.decode()})
    time.sleep(0.2)
print(json.dumps(out))
`;

const skip = deviceTestsUnavailable();
if (skip) console.warn(`timewait.test.ts (Linux client over TAP) skipped: ${skip}`);
const maybe = skip ? describe.skip : describe;

maybe('TIME-WAIT and a Linux client reusing its port, over a TAP', () => {
  it('the second connection from the same port opens at once, from its first SYN, while the stack holds the first in TIME-WAIT', async () => {
    const ns = await Netns.create('tt-tw');
    const stack = createStack();
    try {
      const tap = countingSyns(openTap({ name: 'tt0', netns: ns.path }), 7);
      await ns.exec('ip', ['addr', 'add', '10.78.0.1/24', 'dev', 'tt0']);
      stack.addInterface({ link: tap, ipv4: '10.78.0.2/24', mac: '02:00:00:00:78:02' });
      // The server answers each line with its own and closes first: the
      // stack keeps every connection in TIME-WAIT (60 s), the kernel none.
      const server = stack.createServer((s) => {
        s.on('error', () => undefined);
        s.once('data', (d: Buffer) => s.end(`echo ${d.toString()}`));
      });
      server.listen(7);
      await once(server, 'listening');

      const rounds = 3;
      const out = JSON.parse(await ns.exec('python3', ['-c', PY_CLIENT, '10.78.0.2', '7', '40007', String(rounds)], { timeout: 30_000 })) as Array<{ connectMs?: number; data?: string; error?: string }>;
      console.log(`Linux client reusing port 40007: connects in ${out.map((r) => r.connectMs?.toFixed(2) ?? r.error).join(', ')} ms`);
      expect(out.map((r) => r.data ?? r.error)).toEqual(Array.from({ length: rounds }, (_, i) => `echo round ${i}\n`));
      // One SYN per connection: none was retransmitted (Linux's first
      // retransmission would come after 1 s), so each opened from its first SYN.
      expect(tap.syns).toEqual(Array(rounds).fill(40007));
      // Each connection after the first found its predecessor in TIME-WAIT.
      expect(stack.stats().timeWaitReopened).toBe(rounds - 1);
    } finally {
      stack.close();
      await ns.delete();
    }
  }, 60_000);
});
