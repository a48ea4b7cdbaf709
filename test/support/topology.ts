/**
 * The closed world the gateway tests run in, so that not even a bug in the
 * gateway or its policy can send a packet off this machine:
 *
 *   sandbox ns ──TAP── [tcpip-ts gateway, running in the host ns]
 *                          host ns: lo + veth, no default route (v4 or v6)
 *                              │ 198.51.100.1/24, 2001:db8:100::1/64
 *                              │ veth
 *                              │ 198.51.100.2/24 (+ extra addresses), 2001:db8:100::2/64
 *                          internet ns: servers, dnsmasq
 *
 * The host namespace stands in for the machine the gateway runs on: its
 * 127.0.0.1 is "the host's loopback", its resolv.conf (bind-mounted by
 * `ip netns exec` from /etc/netns/NAME) names the internet namespace's
 * dnsmasq, and its only routes lead into the internet namespace
 * (198.51.100.0/24, TEST-NET-2, and 2001:db8:100::/64 of the IPv6
 * documentation prefix, plus the link-local metadata address
 * 169.254.169.254, which the internet namespace really serves so that a
 * policy test shows the deny, not a missing route, refusing it).
 */
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Netns, waitFor } from './netns.js';

export const BIN = fileURLToPath(new URL('../../bin/tcpip-ts.js', import.meta.url));

export const HOST_ADDRESS = '198.51.100.1';
export const INTERNET_ADDRESS = '198.51.100.2';
/** Extra addresses the internet namespace answers on. */
export const INTERNET_EXTRA = ['198.51.100.3', '198.51.100.20'];
export const METADATA_ADDRESS = '169.254.169.254';
export const HOST_ADDRESS6 = '2001:db8:100::1';
export const INTERNET_ADDRESS6 = '2001:db8:100::2';

export interface RunningGateway {
  child: ChildProcess;
  /** The ready line's forward clauses, `proto host:port->guestport`. */
  readyLine: string;
  stdout(): string;
  stderr(): string;
  /** SIGTERM, then resolves with the exit code and signal. */
  stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * Joins `host` and `internet` by a veth pair (up0 in host, down0 in
 * internet) with HOST_ADDRESS(6) and INTERNET_ADDRESS(6): the host
 * namespace's only route outside itself. Deleting either namespace deletes
 * the pair.
 */
export async function linkHostToInternet(host: Netns, internet: Netns): Promise<void> {
  await host.exec('ip', ['link', 'add', 'up0', 'type', 'veth', 'peer', 'name', 'down0', 'netns', internet.name]);
  await host.exec('ip', ['addr', 'add', `${HOST_ADDRESS}/24`, 'dev', 'up0']);
  await internet.exec('ip', ['addr', 'add', `${INTERNET_ADDRESS}/24`, 'dev', 'down0']);
  // nodad: usable at once (nothing else is on this link to collide with).
  await host.exec('ip', ['-6', 'addr', 'add', `${HOST_ADDRESS6}/64`, 'dev', 'up0', 'nodad']);
  await internet.exec('ip', ['-6', 'addr', 'add', `${INTERNET_ADDRESS6}/64`, 'dev', 'down0', 'nodad']);
  await host.exec('ip', ['link', 'set', 'up0', 'up']);
  await internet.exec('ip', ['link', 'set', 'down0', 'up']);
}

export class GatewayTopology {
  private constructor(
    readonly host: Netns,
    readonly internet: Netns,
    readonly sandbox: Netns,
  ) {}

  /**
   * Makes the three namespaces and the veth; `dnsRecords` (name → IPv4
   * address, or [IPv4, IPv6] for A and AAAA) are served by dnsmasq in the
   * internet namespace.
   */
  static async create(dnsRecords: Record<string, string | [string, string]> = {}): Promise<GatewayTopology> {
    const made: Netns[] = [];
    try {
      const host = await Netns.create('gwh');
      made.push(host);
      const internet = await Netns.create('gwi');
      made.push(internet);
      const sandbox = await Netns.create('gws');
      made.push(sandbox);
      const topo = new GatewayTopology(host, internet, sandbox);
      await linkHostToInternet(host, internet);
      await host.exec('ip', ['route', 'add', `${METADATA_ADDRESS}/32`, 'via', INTERNET_ADDRESS]);
      for (const extra of INTERNET_EXTRA) await internet.exec('ip', ['addr', 'add', `${extra}/24`, 'dev', 'down0']);
      await internet.exec('ip', ['addr', 'add', `${METADATA_ADDRESS}/32`, 'dev', 'lo']);
      // The host namespace's resolver: dnsmasq in the internet namespace.
      mkdirSync(`/etc/netns/${host.name}`, { recursive: true });
      writeFileSync(`/etc/netns/${host.name}/resolv.conf`, `nameserver ${INTERNET_ADDRESS}\noptions timeout:1 attempts:2\n`);
      const records = Object.entries(dnsRecords).map(([name, address]) => `--host-record=${name},${[address].flat().join(',')}`);
      const dnsmasq = internet.spawn('dnsmasq', [
        '--no-daemon', '--no-resolv', '--no-hosts', '--bind-interfaces', `--listen-address=${INTERNET_ADDRESS}`,
        '--port=53', '--log-facility=-',
        // Authoritative for .test: unknown names NXDOMAIN, other types NODATA (not REFUSED).
        '--local=/test/', ...records,
      ]);
      let dnsLog = '';
      dnsmasq.stderr!.on('data', (d: Buffer) => (dnsLog += d));
      await waitFor(async () => (await internet.exec('ss', ['-Hlun', 'sport', '=', ':53'])).includes(INTERNET_ADDRESS), 10_000, `dnsmasq to listen (${dnsLog})`);
      return topo;
    } catch (err) {
      for (const ns of made.reverse()) await ns.delete();
      throw err;
    }
  }

  /**
   * Runs `tcpip-ts gateway --netns <sandbox> ARGS` inside the host namespace
   * and resolves once it prints its ready line.
   */
  async startGateway(args: string[]): Promise<RunningGateway> {
    const child = this.host.spawn(process.execPath, [BIN, 'gateway', '--netns', this.sandbox.path, ...args]);
    let out = '';
    let err = '';
    child.stdout!.on('data', (d: Buffer) => (out += d));
    child.stderr!.on('data', (d: Buffer) => (err += d));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child.once('exit', (code, signal) => resolve({ code, signal })),
    );
    await waitFor(() => out.includes('\n') || child.exitCode !== null, 20_000, `the gateway's ready line (stderr: ${err})`);
    if (!out.startsWith('ready ')) throw new Error(`gateway did not start: stdout ${JSON.stringify(out)} stderr ${JSON.stringify(err)}`);
    return {
      child,
      readyLine: out.split('\n')[0]!,
      stdout: () => out,
      stderr: () => err,
      stop: async () => {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
        return exited;
      },
    };
  }

  /** Runs a node script inside `ns`; resolves with its stdout parsed as JSON. */
  async nodeJson<T>(ns: Netns, script: string, args: string[] = [], timeout = 120_000): Promise<T> {
    const out = await ns.exec(process.execPath, ['-e', script, ...args], { timeout });
    return JSON.parse(out) as T;
  }

  async delete(): Promise<void> {
    for (const ns of [this.sandbox, this.internet, this.host]) await ns.delete();
    rmSync(`/etc/netns/${this.host.name}`, { recursive: true, force: true });
  }
}

/** Spawns a long-running node server script inside `ns` and waits for its first line ("listening"). */
export async function nodeServer(ns: Netns, script: string, args: string[] = []): Promise<ChildProcess> {
  const child = ns.spawn(process.execPath, ['-e', script, ...args]);
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d));
  child.stderr!.on('data', (d: Buffer) => (err += d));
  await waitFor(() => out.includes('\n') || child.exitCode !== null, 10_000, `a server in ${ns.name} to listen (stderr: ${err})`);
  if (child.exitCode !== null) throw new Error(`server in ${ns.name} exited ${child.exitCode}: ${err}`);
  return child;
}
