/**
 * The command's Unix manners (--version, --help on every command, exit
 * statuses, one-line errors), `tcpip-ts doctor` on this host and on made-up
 * hosts, and the addon loader's answer when there is no addon at all.
 * Uses the built command (dist/, `npx tsc -p tsconfig.json`).
 */
import { execFile } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { doctorReport, formatReport, type DoctorHost } from '../src/cli/doctor.js';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const BIN = join(ROOT, 'bin', 'tcpip-ts.js');
const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

async function cli(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [BIN, ...args], { env });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('tcpip-ts as a Unix tool', () => {
  it('--version and -V print the package version and exit 0', async () => {
    for (const flag of ['--version', '-V']) expect(await cli([flag])).toEqual({ code: 0, stdout: `${VERSION}\n`, stderr: '' });
  });

  it('every command takes --help, and the top help names the commands and the exit statuses', async () => {
    const top = await cli(['--help']);
    expect(top.code).toBe(0);
    expect(top.stdout).toMatch(/^\s+doctor\s/m);
    expect(top.stdout).toMatch(/^\s+gateway\s/m);
    expect(top.stdout).toMatch(/Exit status: 0 on success, 1 .*, 2 for bad\s+usage/s);
    for (const command of ['doctor', 'gateway']) {
      const r = await cli([command, '--help']);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`^Usage: tcpip-ts ${command}`));
      expect(r.stdout).toMatch(/Exit status:/);
    }
  });

  it('bad usage exits 2 with one line on stderr that says what to run', async () => {
    for (const args of [[], ['frobnicate'], ['doctor', '--bogus'], ['doctor', 'extra']]) {
      const r = await cli(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stdout).toBe('');
      expect(r.stderr.trimEnd().split('\n'), r.stderr).toHaveLength(1);
      expect(r.stderr).toMatch(/--help/);
    }
  });
});

describe('tcpip-ts doctor', () => {
  it('reports on this host as text and as JSON, and exits 0', async () => {
    const json = await cli(['doctor', '--json']);
    expect(json.code).toBe(0);
    const report = JSON.parse(json.stdout);
    expect(report).toMatchObject({ version: VERSION, node: process.version, platform: process.platform, arch: process.arch });
    // A checkout loads its local build (scripts/setup.sh made it).
    expect(report.checks.addon).toMatchObject({ ok: true, source: 'local build', path: join(ROOT, 'native', 'build', 'Release', 'tcpip_native.node') });
    if (process.platform === 'linux') expect(Object.keys(report.checks)).toEqual(['addon', 'tun', 'netAdmin', 'userNamespaces', 'ping', 'ip']);
    const text = await cli(['doctor']);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^ok {2}addon +loaded from the local build /m);
  });

  const host = (files: Record<string, string>, groups = [1000], uid = 1000): DoctorHost => ({
    readFile: (p) => files[p] ?? null,
    platform: 'linux',
    getuid: () => uid,
    groups: () => groups,
    env: { PATH: '/nonexistent' },
  });

  it('says why ping forwarding, user namespaces and device creation do not work, and the fix', () => {
    const report = doctorReport(host({
      '/proc/sys/net/ipv4/ping_group_range': '1\t0\n',
      '/proc/sys/user/max_user_namespaces': '0\n',
      '/proc/self/status': 'Name:\tnode\nCapEff:\t0000000000000000\n',
    }));
    expect(report.checks.ping).toMatchObject({ ok: false, range: [1, 0], fix: expect.stringContaining('net.ipv4.ping_group_range') });
    expect(report.checks.userNamespaces).toMatchObject({ ok: false, fix: expect.stringContaining('user.max_user_namespaces') });
    expect(report.checks.netAdmin).toMatchObject({ ok: false, detail: 'uid 1000 without CAP_NET_ADMIN' });
    const text = formatReport(report);
    expect(text).toMatch(/^NO {2}ping +net\.ipv4\.ping_group_range is "1 0", which holds none of this process's groups \(1000\)/m);
    expect(text).toMatch(/^ +fix: sysctl -w net\.ipv4\.ping_group_range=/m);
  });

  it('finds a group inside the ping range, and CAP_NET_ADMIN in CapEff', () => {
    const report = doctorReport(host({
      '/proc/sys/net/ipv4/ping_group_range': '0 2147483647\n',
      '/proc/sys/user/max_user_namespaces': '15000\n',
      '/proc/sys/kernel/unprivileged_userns_clone': '1\n',
      '/proc/self/status': 'CapEff:\t000001ffffffffff\n',
    }, [0], 0));
    expect(report.checks.ping).toMatchObject({ ok: true, detail: 'net.ipv4.ping_group_range is "0 2147483647", which holds group 0' });
    expect(report.checks.userNamespaces.ok).toBe(true);
    expect(report.checks.netAdmin).toMatchObject({ ok: true, detail: 'root with CAP_NET_ADMIN' });
  });
});

describe('without any addon', () => {
  it('loadNative names the platform and what to install, and doctor reports it', async () => {
    // A copy of the built package with neither native/build nor native/prebuilds.
    const dir = mkdtempSync(join(tmpdir(), 'tcpip-ts-noaddon-'));
    try {
      cpSync(join(ROOT, 'dist'), join(dir, 'dist'), { recursive: true });
      cpSync(join(ROOT, 'bin'), join(dir, 'bin'), { recursive: true });
      writeFileSync(join(dir, 'package.json'), readFileSync(join(ROOT, 'package.json')));
      symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
      const env = { ...process.env, TCPIP_TS_NATIVE: '' };
      const script = "import('./dist/node/native.js').then((m) => m.loadNative()).catch((e) => console.log(JSON.stringify({ code: e.code, message: e.message })))";
      const { stdout } = await run(process.execPath, ['-e', script], { cwd: dir, env });
      const err = JSON.parse(stdout);
      expect(err.code).toBe('ERR_NATIVE_NOT_FOUND');
      expect(err.message).toContain(`no native addon for ${process.platform}-${process.arch}`);
      expect(err.message).toMatch(/install python3, make and a C compiler .* "npm rebuild tcpip-ts"/);
      expect(err.message).not.toMatch(/npm run/);
      const doctor = JSON.parse((await run(process.execPath, [join(dir, 'bin', 'tcpip-ts.js'), 'doctor', '--json'], { env })).stdout);
      expect(doctor.checks.addon).toMatchObject({ ok: false, code: 'ERR_NATIVE_NOT_FOUND' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
