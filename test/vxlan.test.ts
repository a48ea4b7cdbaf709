import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { createStack, createSwitch, ManualClock, openVxlan, VxlanLink, type Stack, type VxlanTransport } from '../src/index.js';
import { buildEthernetFrame } from '../src/wire/ethernet.js';
import { parseMac } from '../src/wire/address.js';
import { deviceTestsUnavailable, Netns, waitFor } from './support/netns.js';
import { transfer } from './support/transfer.js';

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

const PEER = new URL('./support/peer.mjs', import.meta.url).pathname;
const VXLAN_PEER = new URL('./support/vxlan-peer.mjs', import.meta.url).pathname;

function stack(): Stack {
  const s = createStack();
  cleanup.push(() => s.close());
  return s;
}

/** A transport that records what the link sends. */
function recorder() {
  const sent: { packet: Uint8Array; address: string; port: number }[] = [];
  const transport: VxlanTransport = { send: (packet, address, port) => sent.push({ packet, address, port }), close: () => undefined };
  return { sent, transport };
}

const frame = (dst: string, src: string) => buildEthernetFrame({ dst: parseMac(dst)!, src: parseMac(src)!, etherType: 0x88b5 }, new Uint8Array(46));
const encapsulated = (vni: number, f: Uint8Array) => {
  const p = new Uint8Array(8 + f.length);
  p.set([8, 0, 0, 0, vni >> 16, (vni >> 8) & 0xff, vni & 0xff, 0]);
  p.set(f, 8);
  return p;
};

describe('VXLAN link (state machine)', () => {
  it('floods unknown and broadcast to every remote, learns source MACs, sends known unicast to one VTEP; ageing', async () => {
    const clock = new ManualClock();
    const { sent, transport } = recorder();
    const link = new VxlanLink(transport, { vni: 42, remotes: ['192.0.2.1', { address: '192.0.2.2', port: 8472 }], clock });
    const got: Uint8Array[] = [];
    link.attach((f) => got.push(f.slice()));
    link.send(frame('ff:ff:ff:ff:ff:ff', '02:00:00:00:00:01'));
    expect(sent.map((s) => `${s.address}:${s.port}`)).toEqual(['192.0.2.1:4789', '192.0.2.2:8472']);
    expect([...sent[0]!.packet.subarray(0, 8)]).toEqual([8, 0, 0, 0, 0, 0, 42, 0]);
    // A frame from a third VTEP: learnt there (at our port), and flooded to from now on.
    link.input(encapsulated(42, frame('02:00:00:00:00:01', '02:00:00:00:00:09')), '192.0.2.9');
    expect(got.length).toBe(1);
    expect(link.fdb.list()).toEqual([{ mac: '02:00:00:00:00:09', address: '192.0.2.9', port: 4789, static: false, age: 0 }]);
    sent.length = 0;
    link.send(frame('02:00:00:00:00:09', '02:00:00:00:00:01'));
    expect(sent.map((s) => s.address)).toEqual(['192.0.2.9']);
    sent.length = 0;
    link.send(frame('02:00:00:00:00:77', '02:00:00:00:00:01'));
    expect(sent.map((s) => s.address)).toEqual(['192.0.2.1', '192.0.2.2', '192.0.2.9']);
    // Other VNIs and non-VXLAN payloads are counted and dropped.
    link.input(encapsulated(43, frame('02:00:00:00:00:01', '02:00:00:00:00:08')), '192.0.2.8');
    link.input(new Uint8Array(10), '192.0.2.8');
    expect(link.counters).toMatchObject({ wrongVni: 1, badPacket: 1, framesReceived: 1 });
    expect(got.length).toBe(1);
    // Ageing (300 s, as Linux).
    await clock.advance(301_000);
    expect(link.fdb.list()).toEqual([]);
    sent.length = 0;
    link.send(frame('02:00:00:00:00:09', '02:00:00:00:00:01'));
    expect(sent.map((s) => s.address)).toEqual(['192.0.2.1', '192.0.2.2']);
    // Static entries and the MTU.
    link.fdb.add({ mac: '02:00:00:00:00:05', address: '192.0.2.5' });
    sent.length = 0;
    link.send(frame('02:00:00:00:00:05', '02:00:00:00:00:01'));
    expect(sent.map((s) => s.address)).toEqual(['192.0.2.5']);
    link.send(new Uint8Array(1450 + 14 + 1));
    expect(link.counters.oversize).toBe(1);
    expect(() => new VxlanLink(transport, { vni: 1 << 24 })).toThrow(/"vni"/);
    expect(() => new VxlanLink(transport, { vni: 1, remotes: ['nope'] })).toThrow(/"address"/);
  });

  it('with a GSO transport, packets to one VTEP go out in runs of equal size (the last may be shorter), in order, one flush per burst', async () => {
    const runs: { packets: Uint8Array[]; segment: number; address: string }[] = [];
    let accept = true;
    const { sent, transport } = recorder();
    transport.sendSegments = (buffer, length, segment, address) => {
      if (!accept) return false;
      const packets: Uint8Array[] = [];
      for (let at = 0; at < length; at += segment) packets.push(buffer.slice(at, Math.min(length, at + segment)));
      runs.push({ packets, segment, address });
      return true;
    };
    const link = new VxlanLink(transport, { vni: 42, remotes: ['192.0.2.1'] });
    link.fdb.add({ mac: '02:00:00:00:00:02', address: '192.0.2.2' });
    const sized = (n: number, id: number) => {
      const f = buildEthernetFrame({ dst: parseMac('02:00:00:00:00:02')!, src: parseMac('02:00:00:00:00:01')!, etherType: 0x88b5 }, new Uint8Array(n - 14));
      f[14] = id;
      return f;
    };
    // Three full frames, a short one (ends the run), a full one (a new run).
    for (const [n, id] of [[1464, 1], [1464, 2], [1464, 3], [600, 4], [1464, 5]] as const) link.send(sized(n, id));
    link.flush();
    expect(runs.map((r) => [r.segment, r.packets.map((p) => p[8 + 14])])).toEqual([[1472, [1, 2, 3, 4]], [1472, [5]]]);
    expect(runs[0]!.packets.map((p) => p.length)).toEqual([1472, 1472, 1472, 608]);
    expect([...runs[0]!.packets[3]!.subarray(0, 8)]).toEqual([8, 0, 0, 0, 0, 0, 42, 0]);
    // Another destination ends the run; a broadcast goes to the remotes on its own.
    runs.length = 0;
    link.send(sized(1464, 6));
    link.send(frame('ff:ff:ff:ff:ff:ff', '02:00:00:00:00:01'));
    link.send(sized(1464, 7));
    // No flush(): the end of the job sends what waits (a microtask).
    await Promise.resolve();
    expect(runs.map((r) => [r.address, r.packets.length])).toEqual([['192.0.2.2', 1], ['192.0.2.1', 1], ['192.0.2.2', 1]]);
    // At most 64 packets a run; refused runs go out one by one, in order.
    runs.length = 0;
    for (let i = 0; i < 100; i++) link.send(sized(1464, i));
    link.flush();
    expect(runs.map((r) => r.packets.length)).toEqual([44, 44, 12]);
    accept = false;
    sent.length = 0;
    for (let i = 0; i < 3; i++) link.send(sized(1464, i));
    link.flush();
    expect(sent.map((x) => [x.address, x.packet.length, x.packet[8 + 14]])).toEqual([['192.0.2.2', 1472, 0], ['192.0.2.2', 1472, 1], ['192.0.2.2', 1472, 2]]);
    expect(link.counters.framesSent).toBe(5 + 3 + 100 + 3);
  });

  it('two stacks on VXLAN links over loopback UDP: ping and TCP with sha256', async () => {
    const port = 20_000 + Math.floor(Math.random() * 30_000);
    const la = await openVxlan({ vni: 7, local: '127.0.0.1', port, remotes: ['127.0.0.2'] });
    const lb = await openVxlan({ vni: 7, local: '127.0.0.2', port });
    expect(la.mtu).toBe(1450);
    const [a, b] = [stack(), stack()];
    a.addInterface({ link: la, ipv4: '10.7.0.1/24' });
    b.addInterface({ link: lb, ipv4: '10.7.0.2/24' });
    await a.ping('10.7.0.2');
    await b.ping('10.7.0.1');
    const server = b.createServer({ allowHalfOpen: true }, (s) => s.pipe(s));
    server.listen(7);
    await once(server, 'listening');
    const sock = a.connect({ port: 7, host: '10.7.0.2', allowHalfOpen: true });
    await once(sock, 'connect');
    const r = await transfer(sock, 8 << 20);
    expect(r.receivedSha256).toBe(r.sentSha256);
    expect(lb.fdb.list().map((e) => e.address)).toEqual(['127.0.0.1']);
    await expect(openVxlan({ vni: 7, local: 'x' } as never)).rejects.toThrow(/"local"/);
    await expect(openVxlan({ vni: 7, local: '127.0.0.1', remotes: ['::1'] })).rejects.toThrow(/"remotes"/);
  }, 30_000);
});

const skip = deviceTestsUnavailable();
if (skip) console.warn(`vxlan.test.ts kernel tests skipped: ${skip}`);

/** A namespace joined to ours by a veth: ROOT address on our side, NS address inside. */
async function underlay(v6: boolean, subnet: number) {
  const ns = await Netns.create('tt-vx');
  cleanup.push(() => ns.delete());
  const ours = `vxr-${randomBytes(3).toString('hex')}`;
  execFileSync('ip', ['link', 'add', ours, 'type', 'veth', 'peer', 'name', 'vtn0', 'netns', ns.name]);
  // Deleted by name too: the kernel frees a deleted namespace in the
  // background, and until then our end and its route would take the next
  // test's packets into it.
  cleanup.push(() => {
    try {
      execFileSync('ip', ['link', 'delete', ours], { stdio: 'ignore' });
    } catch {
      /* gone with the namespace */
    }
  });
  const [root, inside, len] = v6 ? [`fd15:${subnet}::1`, `fd15:${subnet}::2`, 64] : [`198.18.${subnet}.1`, `198.18.${subnet}.2`, 24];
  execFileSync('ip', [...(v6 ? ['-6'] : []), 'addr', 'add', `${root}/${len}`, 'dev', ours, ...(v6 ? ['nodad'] : [])]);
  execFileSync('ip', ['link', 'set', ours, 'up']);
  await ns.exec('ip', [...(v6 ? ['-6'] : []), 'addr', 'add', `${inside}/${len}`, 'dev', 'vtn0', ...(v6 ? ['nodad'] : [])]);
  await ns.exec('ip', ['link', 'set', 'vtn0', 'up']);
  // A veth carries the kernel's packets with their checksums still to be
  // done (CHECKSUM_PARTIAL), inner ones of VXLAN too, and a UDP socket at the
  // other end gets them that way: the TCP checksum in the frame is only the
  // pseudo-header's. A real NIC fills them in; here the kernel must.
  await ns.exec('ethtool', ['-K', 'vtn0', 'tx', 'off']);
  return { ns, root, inside };
}

/** The kernel's vxlan device in ns, bridged to nothing: vx0 with 10.42.0.1/24. */
async function kernelVxlan(ns: Netns, remote: string, local: string) {
  await ns.exec('ip', ['link', 'add', 'vx0', 'type', 'vxlan', 'id', '42', 'remote', remote, 'local', local, 'dstport', '4789', 'dev', 'vtn0']);
  await ns.exec('ip', ['addr', 'add', '10.42.0.1/24', 'dev', 'vx0']);
  await ns.exec('ip', ['link', 'set', 'vx0', 'up']);
  return JSON.parse(await ns.exec('ip', ['-j', 'link', 'show', 'vx0']))[0] as { address: string; mtu: number };
}

async function kernelPeer(ns: Netns, args: string[]) {
  const child = ns.spawn(process.execPath, [PEER, ...args]);
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d));
  child.stderr!.on('data', (d: Buffer) => (err += d));
  const result = once(child, 'exit').then(([code]) => {
    if (code !== 0) throw new Error(`peer exited ${code}: ${err}`);
    return JSON.parse(out.trim().split('\n').pop()!) as { sent: number; sentSha256: string; received: number; receivedSha256: string };
  });
  // Killed with its namespace when a test fails first: not an unhandled rejection then.
  result.catch(() => undefined);
  await waitFor(() => out.includes('listening'), 10_000, 'peer to listen');
  return { result };
}

(skip ? describe.skip : describe)('VXLAN against the Linux kernel', () => {
  for (const v6 of [false, true]) {
    it(`a stack reaches the kernel's vx0 over an IPv${v6 ? 6 : 4} underlay: ping, TCP both ways with sha256, ARP and FDB learnt both sides`, async () => {
      const { ns, root, inside } = await underlay(v6, v6 ? 2 : 15);
      const vx0 = await kernelVxlan(ns, root, inside);
      expect(vx0.mtu).toBe(v6 ? 1430 : 1450);
      const link = await openVxlan({ vni: 42, local: root, remotes: [inside] });
      expect(link.mtu).toBe(vx0.mtu);
      const s = stack();
      s.addInterface({ link, ipv4: '10.42.0.2/24', mac: '02:00:00:00:42:02' });
      await s.ping('10.42.0.1', { timeout: 2000 });
      const kping = await ns.exec('ping', ['-c', '3', '-i', '0.2', '-W', '2', '10.42.0.2']);
      expect(kping).toMatch(/3 received/);
      const bytes = 32 << 20;
      const { result } = await kernelPeer(ns, ['serve', '5001', String(bytes)]);
      const sock = s.connect({ port: 5001, host: '10.42.0.1', allowHalfOpen: true });
      await once(sock, 'connect');
      const ours = await transfer(sock, bytes);
      const theirs = await result;
      expect(theirs.received).toBe(bytes);
      expect(theirs.receivedSha256).toBe(ours.sentSha256);
      expect(ours.received).toBe(bytes);
      expect(ours.receivedSha256).toBe(theirs.sentSha256);
      // ARP both sides, and each VTEP learnt the other.
      const neigh = JSON.parse(await ns.exec('ip', ['-j', 'neigh', 'show', 'dev', 'vx0'])) as { dst: string; lladdr: string }[];
      expect(neigh.find((n) => n.dst === '10.42.0.2')?.lladdr).toBe('02:00:00:00:42:02');
      expect(s.neighbors.list().find((n) => n.address === '10.42.0.1')?.mac).toBe(vx0.address);
      const fdb = await ns.exec('bridge', ['fdb', 'show', 'dev', 'vx0']);
      expect(fdb).toMatch(new RegExp(`02:00:00:00:42:02 dst ${root.replace(/\./g, '\\.')} `));
      expect(link.fdb.list()).toContainEqual(expect.objectContaining({ mac: vx0.address, address: inside, static: false }));
      // The bulk went out in GSO runs (the kernel cut them apart).
      expect(link.socketCounters.gso).toBe(true);
      expect(link.socketCounters.gsoPackets).toBeGreaterThan(link.socketCounters.gsoSends * 4);
    }, 90_000);
  }

  it('a switch with two stacks and a VXLAN port joins the kernel\'s segment', async () => {
    const { ns, root, inside } = await underlay(false, 16);
    const vx0 = await kernelVxlan(ns, root, inside);
    const sw = createSwitch();
    cleanup.push(() => sw.close());
    sw.addPort(await openVxlan({ vni: 42, local: root, remotes: [inside] }), { name: 'vxlan' });
    const [a, b] = [stack(), stack()];
    a.addInterface({ link: sw.createLink({ mtu: 1450 }), ipv4: '10.42.0.2/24', mac: '02:00:00:00:42:02' });
    b.addInterface({ link: sw.createLink({ mtu: 1450 }), ipv4: '10.42.0.3/24', mac: '02:00:00:00:42:03' });
    await a.ping('10.42.0.1', { timeout: 2000 });
    await b.ping('10.42.0.1', { timeout: 2000 });
    await a.ping('10.42.0.3');
    const k = await ns.exec('sh', ['-c', 'ping -c 1 -W 2 10.42.0.2 && ping -c 1 -W 2 10.42.0.3']);
    expect(k.match(/1 received/g)?.length).toBe(2);
    expect(sw.macTable.list().find((e) => e.mac === vx0.address)?.port).toBe('vxlan');
  }, 60_000);

  it('two tcpip-ts processes in two veth-connected namespaces share a segment over VXLAN', async () => {
    const left = await Netns.create('tt-vxl');
    cleanup.push(() => left.delete());
    const right = await Netns.create('tt-vxr');
    cleanup.push(() => right.delete());
    await left.exec('ip', ['link', 'add', 'u0', 'type', 'veth', 'peer', 'name', 'u0', 'netns', right.name]);
    await left.exec('ip', ['addr', 'add', '198.18.17.1/24', 'dev', 'u0']);
    await right.exec('ip', ['addr', 'add', '198.18.17.2/24', 'dev', 'u0']);
    await left.exec('ip', ['link', 'set', 'u0', 'up']);
    await right.exec('ip', ['link', 'set', 'u0', 'up']);
    const server = right.spawn(process.execPath, [VXLAN_PEER, '198.18.17.2', '198.18.17.1', '10.42.0.2/24', '02:00:00:00:42:02', 'serve']);
    let out = '';
    let err = '';
    server.stdout!.on('data', (d: Buffer) => (out += d));
    server.stderr!.on('data', (d: Buffer) => (err += d));
    await waitFor(() => out.includes('ready') || server.exitCode !== null, 10_000, `the serving peer (${err})`);
    const result = JSON.parse(await left.exec(process.execPath, [VXLAN_PEER, '198.18.17.1', '198.18.17.2', '10.42.0.1/24', '02:00:00:00:42:01', 'connect', '10.42.0.2', String(16 << 20)], { timeout: 60_000 }));
    expect(result.received).toBe(16 << 20);
    expect(result.receivedSha256).toBe(result.sentSha256);
    expect(result.fdb).toContainEqual(expect.objectContaining({ mac: '02:00:00:00:42:02', address: '198.18.17.2' }));
    expect(result.neighbors).toContainEqual(expect.objectContaining({ address: '10.42.0.2', mac: '02:00:00:00:42:02' }));
  }, 90_000);
});

const ovsMissing = skip ?? (existsSync('/usr/sbin/ovs-vswitchd') && existsSync('/usr/bin/ovsdb-tool')
  ? null : 'Open vSwitch is not installed (openvswitch-switch; scripts/test-deps.sh installs it)');
if (!skip && ovsMissing) console.warn(`vxlan.test.ts Open vSwitch test skipped: ${ovsMissing}`);

(ovsMissing ? describe.skip : describe)('VXLAN against Open vSwitch', () => {
  it('a stack reaches a host behind an OVS VXLAN port (userspace datapath): ping both ways, TCP with sha256, OVS learns our MAC', async () => {
    const { ns, root, inside } = await underlay(false, 18);
    // Our end's UDP checksums must be complete too: OVS checks them when it pops the tunnel header.
    execFileSync('ethtool', ['-K', (JSON.parse(execFileSync('ip', ['-j', 'addr', 'show', 'to', `${root}/32`]).toString())[0] as { ifname: string }).ifname, 'tx', 'off']);
    // Daemons of our own, their database, sockets and logs in a directory
    // of the test's, run as children in the namespace (killed with it): no
    // system OVS is started or touched.
    const dir = mkdtempSync(join(tmpdir(), 'tt-ovs-'));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    const env = { ...process.env, OVS_RUNDIR: dir, OVS_DBDIR: dir, OVS_LOGDIR: dir, OVS_SYSCONFDIR: dir };
    const db = `unix:${dir}/db.sock`;
    execFileSync('ovsdb-tool', ['create', `${dir}/conf.db`, '/usr/share/openvswitch/vswitch.ovsschema']);
    const inNs = (cmd: string, args: string[]) => execFileSync('ip', ['netns', 'exec', ns.name, cmd, ...args], { env, timeout: 20_000 }).toString();
    const daemon = (cmd: string, args: string[]) => {
      const child = ns.spawn('env', [...Object.entries(env).filter(([k]) => k.startsWith('OVS_')).map(([k, v]) => `${k}=${v}`), cmd, ...args]);
      cleanup.push(() => { child.kill('SIGTERM'); });
      return child;
    };
    daemon('ovsdb-server', [`${dir}/conf.db`, `--remote=punix:${dir}/db.sock`, `--unixctl=${dir}/ovsdb.ctl`, `--log-file=${dir}/ovsdb.log`]);
    await waitFor(() => existsSync(`${dir}/db.sock`), 10_000, 'ovsdb-server');
    const vsctl = (...args: string[]) => inNs('ovs-vsctl', [`--db=${db}`, '--timeout=10', ...args]);
    vsctl('--no-wait', 'init');
    daemon('ovs-vswitchd', [db, `--unixctl=${dir}/vswitchd.ctl`, `--log-file=${dir}/vswitchd.log`]);
    await waitFor(() => existsSync(`${dir}/vswitchd.ctl`), 10_000, 'ovs-vswitchd');
    // OVS's userspace tunnelling: the underlay address on a bridge holding the veth, the VXLAN port on another.
    vsctl('add-br', 'br-phy', '--', 'set', 'bridge', 'br-phy', 'datapath_type=netdev');
    vsctl('add-port', 'br-phy', 'vtn0');
    await ns.exec('ip', ['addr', 'flush', 'dev', 'vtn0']);
    await ns.exec('ip', ['addr', 'add', `${inside}/24`, 'dev', 'br-phy']);
    await ns.exec('ip', ['link', 'set', 'br-phy', 'up']);
    vsctl('add-br', 'br-int', '--', 'set', 'bridge', 'br-int', 'datapath_type=netdev');
    vsctl('add-port', 'br-int', 'vx0', '--', 'set', 'interface', 'vx0', 'type=vxlan', `options:remote_ip=${root}`, 'options:key=42');
    await ns.exec('ip', ['addr', 'add', '10.42.0.1/24', 'dev', 'br-int']);
    await ns.exec('ip', ['link', 'set', 'br-int', 'up']);
    const link = await openVxlan({ vni: 42, local: root, remotes: [inside] });
    const s = stack();
    s.addInterface({ link, ipv4: '10.42.0.2/24', mac: '02:00:00:00:42:02' });
    // OVS learns its routes from the namespace's kernel a moment after the addresses appear.
    await waitFor(() => s.ping('10.42.0.1', { timeout: 500 }).then(() => true, () => false), 15_000, 'a ping through OVS');
    expect(await ns.exec('ping', ['-c', '3', '-i', '0.2', '-W', '2', '10.42.0.2'])).toMatch(/3 received/);
    const bytes = 8 << 20;
    const { result } = await kernelPeer(ns, ['serve', '5001', String(bytes)]);
    const sock = s.connect({ port: 5001, host: '10.42.0.1', allowHalfOpen: true });
    await once(sock, 'connect');
    const ours = await transfer(sock, bytes);
    const theirs = await result;
    expect(theirs.receivedSha256).toBe(ours.sentSha256);
    expect(ours.receivedSha256).toBe(theirs.sentSha256);
    const fdb = inNs('ovs-appctl', ['-t', `${dir}/vswitchd.ctl`, 'fdb/show', 'br-int']);
    expect(fdb).toMatch(/02:00:00:00:42:02/);
  }, 90_000);
});
