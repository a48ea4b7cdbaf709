/**
 * `tcpip-ts doctor`: what of tcpip-ts works on this host, and for what does
 * not, why and how to fix it. It reads only (files under /proc and /dev, the
 * addon) and changes nothing, so it is safe to run anywhere, as any user.
 */
import { accessSync, constants, readFileSync, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadNative, locateNative } from '../node/native.js';
import { packageVersion } from '../node/package-root.js';

export const DOCTOR_USAGE = `Usage: tcpip-ts doctor [--json]

Says what works on this host and why not: the native addon (loaded or not,
and from where), /dev/net/tun, the privilege to create devices, user
namespaces, the ping group range the gateway's unprivileged ICMP needs, and
the ip command. It only reads, and changes nothing.

Options:
  --json      print the report as one JSON object:
              { version, node, platform, arch, checks: { NAME: { ok, detail, fix? } } }
  -h, --help  show this help and exit

Exit status: 0 when the report is printed (whatever it says; read "ok" in
--json to decide), 2 for bad usage.
`;

export interface Check {
  ok: boolean;
  /** What was found. */
  detail: string;
  /** What to do when not ok. */
  fix?: string;
  /** Which feature needs it. */
  neededBy: string;
  [extra: string]: unknown;
}

export interface DoctorReport {
  version: string;
  node: string;
  platform: string;
  arch: string;
  checks: Record<string, Check>;
}

/** What doctor reads from the host, injectable for tests. */
export interface DoctorHost {
  readFile(path: string): string | null;
  platform: NodeJS.Platform;
  getuid(): number;
  groups(): number[];
  env: NodeJS.ProcessEnv;
}

const realHost: DoctorHost = {
  readFile(path) {
    try {
      return readFileSync(path, 'utf8');
    } catch {
      return null;
    }
  },
  platform: process.platform,
  getuid: () => process.getuid?.() ?? -1,
  groups: () => [...new Set([process.getgid?.() ?? -1, ...(process.getgroups?.() ?? [])])],
  env: process.env,
};

function addonCheck(): Check {
  const neededBy = 'TAP/TUN and unix datagram links, vmnet, the gateway command, ping forwarding';
  try {
    const where = locateNative();
    const addon = loadNative();
    const parts = Object.keys(addon).filter((k) => k !== 'FrameDevice').sort();
    return { ok: true, detail: `loaded from the ${where.source} ${where.path} (${parts.join(', ')})`, neededBy, path: where.path, source: where.source };
  } catch (err) {
    const e = err as Error & { code?: string };
    return { ok: false, detail: e.message, fix: 'see the message: install the build tools and run "npm rebuild tcpip-ts", or set TCPIP_TS_NATIVE', neededBy, code: e.code };
  }
}

function tunCheck(): Check {
  const neededBy = 'openTap, openTun and the gateway command';
  const path = '/dev/net/tun';
  try {
    if (!statSync(path).isCharacterDevice()) return { ok: false, detail: `${path} is not a character device`, fix: 'recreate it: mknod /dev/net/tun c 10 200', neededBy };
    accessSync(path, constants.R_OK | constants.W_OK);
    return { ok: true, detail: `${path} is there and can be opened for reading and writing`, neededBy };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return { ok: false, detail: `${path} is missing`, fix: 'load the tun module (modprobe tun); in a container, pass the device (podman/docker --device /dev/net/tun)', neededBy };
    return { ok: false, detail: `${path} cannot be opened for reading and writing (${code})`, fix: 'run as root, or make the device accessible (it is mode 0666 on most distributions)', neededBy };
  }
}

/** CAP_NET_ADMIN is bit 12 of the effective capability set. */
function netAdminCheck(host: DoctorHost): Check {
  const neededBy = 'creating TAP/TUN devices and configuring a namespace (the gateway command)';
  const status = host.readFile('/proc/self/status');
  const capEff = status?.match(/^CapEff:\s*([0-9a-f]+)$/m)?.[1];
  if (capEff === undefined) return { ok: false, detail: 'cannot read CapEff from /proc/self/status', neededBy, fix: 'run as root' };
  const ok = (BigInt(`0x${capEff}`) & (1n << 12n)) !== 0n;
  const who = host.getuid() === 0 ? 'root' : `uid ${host.getuid()}`;
  return ok
    ? { ok, detail: `${who} with CAP_NET_ADMIN`, neededBy }
    : { ok, detail: `${who} without CAP_NET_ADMIN`, neededBy, fix: 'run as root (sudo), or inside a user namespace that owns the target network namespace (unshare -rn, rootlesskit)' };
}

function userNamespacesCheck(host: DoctorHost): Check {
  const neededBy = 'running sandboxes without root (unshare -rn, rootlesskit, podman rootless) whose namespace the gateway serves';
  const problems: string[] = [];
  const fixes: string[] = [];
  const max = host.readFile('/proc/sys/user/max_user_namespaces')?.trim();
  if (max === undefined) return { ok: false, detail: 'the kernel has no user namespaces (/proc/sys/user/max_user_namespaces is missing)', neededBy, fix: 'use a kernel built with CONFIG_USER_NS' };
  if (Number(max) === 0) {
    problems.push('user.max_user_namespaces is 0');
    fixes.push('sysctl -w user.max_user_namespaces=15000');
  }
  const clone = host.readFile('/proc/sys/kernel/unprivileged_userns_clone')?.trim();
  if (clone === '0') {
    problems.push('kernel.unprivileged_userns_clone is 0');
    fixes.push('sysctl -w kernel.unprivileged_userns_clone=1');
  }
  const apparmor = host.readFile('/proc/sys/kernel/apparmor_restrict_unprivileged_userns')?.trim();
  if (apparmor === '1') {
    problems.push('kernel.apparmor_restrict_unprivileged_userns is 1');
    fixes.push('sysctl -w kernel.apparmor_restrict_unprivileged_userns=0, or an AppArmor profile that allows userns');
  }
  if (problems.length) return { ok: false, detail: `unprivileged user namespaces are off: ${problems.join('; ')}`, neededBy, fix: fixes.join('; ') };
  return { ok: true, detail: `unprivileged user namespaces are allowed (user.max_user_namespaces ${max})`, neededBy };
}

function pingCheck(host: DoctorHost): Check {
  const neededBy = "the gateway forwarding a sandbox's pings to outside hosts (ping sockets need no privilege, but only for groups in the range)";
  const range = host.readFile('/proc/sys/net/ipv4/ping_group_range');
  const fix = 'sysctl -w net.ipv4.ping_group_range="0 2147483647" (or a range holding one of your groups)';
  const m = range?.trim().match(/^(\d+)\s+(\d+)$/);
  if (!m) return { ok: false, detail: 'cannot read /proc/sys/net/ipv4/ping_group_range', neededBy, fix };
  const [lo, hi] = [Number(m[1]), Number(m[2])];
  const groups = host.groups().filter((g) => g >= 0);
  const inRange = groups.filter((g) => g >= lo && g <= hi);
  const text = `net.ipv4.ping_group_range is "${lo} ${hi}"`;
  if (inRange.length) return { ok: true, detail: `${text}, which holds group ${inRange[0]}`, neededBy, range: [lo, hi] };
  return { ok: false, detail: `${text}, which holds none of this process's groups (${groups.join(', ') || 'none'}); pings to outside hosts are dropped and counted in icmpDropped`, neededBy, fix, range: [lo, hi] };
}

function ipCheck(host: DoctorHost): Check {
  const neededBy = 'the gateway command, which configures the namespace with it';
  const dirs = [...(host.env.PATH ?? '').split(delimiter), '/usr/sbin', '/sbin'].filter(Boolean);
  for (const dir of dirs) {
    const path = join(dir, 'ip');
    try {
      accessSync(path, constants.X_OK);
      if (statSync(path).isFile()) return { ok: true, detail: `ip is ${path}`, neededBy, path };
    } catch {
      // not here
    }
  }
  return { ok: false, detail: 'no ip command on PATH or in /usr/sbin, /sbin', neededBy, fix: 'install iproute2 (Debian: apt install iproute2)' };
}

export function doctorReport(host: DoctorHost = realHost): DoctorReport {
  const checks: Record<string, Check> = { addon: addonCheck() };
  if (host.platform === 'linux') {
    checks.tun = tunCheck();
    checks.netAdmin = netAdminCheck(host);
    checks.userNamespaces = userNamespacesCheck(host);
    checks.ping = pingCheck(host);
    checks.ip = ipCheck(host);
  }
  return { version: packageVersion(), node: process.version, platform: host.platform, arch: process.arch, checks };
}

export function formatReport(report: DoctorReport): string {
  const names = Object.keys(report.checks);
  const width = Math.max(...names.map((n) => n.length));
  const lines = [`tcpip-ts ${report.version}, Node ${report.node}, ${report.platform}-${report.arch}`];
  if (report.platform !== 'linux') lines.push(`(TAP/TUN, the gateway command and ping forwarding are Linux only; ${report.platform} has the addon's other parts)`);
  for (const name of names) {
    const c = report.checks[name]!;
    lines.push(`${c.ok ? 'ok' : 'NO'}  ${name.padEnd(width)}  ${c.detail}`);
    if (!c.ok) {
      lines.push(`    ${''.padEnd(width)}  needed by: ${c.neededBy}`);
      if (c.fix) lines.push(`    ${''.padEnd(width)}  fix: ${c.fix}`);
    }
  }
  return `${lines.join('\n')}\n`;
}

/** Runs `tcpip-ts doctor ARGS`; returns the exit status. */
export function runDoctor(args: string[]): number {
  let values;
  try {
    ({ values } = parseArgs({ args, options: { json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } }, strict: true, allowPositionals: false }));
  } catch (err) {
    process.stderr.write(`tcpip-ts doctor: ${(err as Error).message}; run "tcpip-ts doctor --help" for usage\n`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(DOCTOR_USAGE);
    return 0;
  }
  const report = doctorReport();
  process.stdout.write(values.json ? `${JSON.stringify(report, null, 2)}\n` : formatReport(report));
  return 0;
}
