/**
 * Podman for the tests, isolated from the host's: its own storage root and
 * run root, its own containers.conf (CONTAINERS_CONF) and storage.conf
 * (CONTAINERS_STORAGE_CONF) naming the network helper under test, and a
 * busybox image imported from a rootfs tarball made here from busybox-static
 * (no registry: it is unreachable, and a test must not depend on one).
 *
 * The rootfs tarball is cached under ~/.cache/tcpip-ts (it depends only on
 * /bin/busybox); the storage is per run and removed by dispose().
 */
import { execFile, execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
export const BUSYBOX = '/bin/busybox';
export const IMAGE = 'localhost/tcpip-ts-busybox:test';

/** Why podman tests cannot run here, or null. */
export function podmanUnavailable(): string | null {
  if (process.getuid?.() !== 0) return 'not root (podman tests run rootful; scripts/test-deps.sh installs podman as root)';
  // runc, not crun: crun refuses hybrid cgroup hierarchies (v1 controllers
  // beside a v2 mount), which sandboxed hosts have.
  for (const tool of ['podman', 'runc', 'conmon']) {
    try {
      execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
    } catch {
      return `${tool} is not installed (scripts/test-deps.sh installs it)`;
    }
  }
  if (!isStatic()) return `${BUSYBOX} is not statically linked (apt-get install busybox-static; scripts/test-deps.sh does)`;
  return null;
}

/** A static ELF has no PT_INTERP: look for the interpreter path's usual prefix. */
function isStatic(): boolean {
  try {
    return !readFileSync(BUSYBOX).subarray(0, 4096).toString('latin1').includes('/lib64/ld-linux');
  } catch {
    return false;
  }
}

/** The rootfs tarball: /bin/busybox, its applets as symlinks, a minimal /etc, /www/index.html for httpd. */
export function busyboxRootfs(): string {
  const cache = join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'tcpip-ts');
  const stamp = statSync(BUSYBOX);
  const tarball = join(cache, `busybox-rootfs-${stamp.size}-${Math.floor(stamp.mtimeMs)}.tar`);
  if (existsSync(tarball)) return tarball;
  mkdirSync(cache, { recursive: true });
  const root = mkdtempSync(join(tmpdir(), 'bbroot-'));
  try {
    for (const d of ['bin', 'etc', 'tmp', 'www', 'proc', 'sys', 'dev', 'root']) mkdirSync(join(root, d));
    execFileSync('cp', [BUSYBOX, join(root, 'bin/busybox')]);
    const applets = execFileSync(BUSYBOX, ['--list']).toString().split('\n').filter((a) => a && a !== 'busybox');
    for (const a of applets) symlinkSync('busybox', join(root, 'bin', a));
    writeFileSync(join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n');
    writeFileSync(join(root, 'etc/group'), 'root:x:0:\nnogroup:x:65534:\n');
    writeFileSync(join(root, 'www/index.html'), 'hello from the container\n');
    chmodSync(join(root, 'tmp'), 0o1777);
    const partial = `${tarball}.${process.pid}`;
    execFileSync('tar', ['-C', root, '-cf', partial, '.']);
    execFileSync('mv', [partial, tarball]);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
  return tarball;
}

export interface PodmanOptions {
  /** The network helper podman runs as slirp4netns (containers.conf network_cmd_path). */
  helper: string;
  /** A resolv.conf the helper sees as /etc/resolv.conf (keeps DNS forwarding on loopback). */
  resolvConf?: string;
  /**
   * Run podman rootless, as a user made for this instance (see rootlessUnavailable):
   * it exists only in the private mount namespace each podman call runs in.
   */
  rootless?: boolean;
}

/** The user rootless podman runs as: an id no host account has, and a subordinate range of its own. */
const ROOTLESS_UID = 47_000 + (process.pid % 1000);
const ROOTLESS_NAME = 'tcpiptsrl';
const SUBID_START = 3_000_000;

/** Whether the rootless user can execute path (every directory above it searchable). */
function userCanExec(path: string): boolean {
  try {
    execFileSync('setpriv', [`--reuid=${ROOTLESS_UID}`, `--regid=${ROOTLESS_UID}`, '--clear-groups', 'test', '-x', path], { stdio: 'ignore', timeout: 10_000 });
    return true;
  } catch {
    return false;
  }
}

/** Why rootless podman cannot run here, or null. */
export function rootlessUnavailable(): string | null {
  const root = podmanUnavailable();
  if (root) return root;
  for (const tool of ['newuidmap', 'newgidmap', 'setpriv', 'unshare']) {
    try {
      execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
    } catch {
      return `${tool} is not installed (uidmap, util-linux; scripts/test-deps.sh installs them)`;
    }
  }
  try {
    execFileSync('setpriv', [`--reuid=${ROOTLESS_UID}`, `--regid=${ROOTLESS_UID}`, '--clear-groups', 'unshare', '-U', '-r', 'true'], { stdio: 'ignore', timeout: 10_000 });
  } catch {
    return 'this kernel refuses user namespaces to unprivileged users (kernel.unprivileged_userns_clone or user.max_user_namespaces)';
  }
  return null;
}

/** One isolated podman: run(args) runs `podman ARGS` against its own storage and configuration. */
export class Podman {
  readonly dir: string;
  /** The wrapper podman runs: unique per instance, so pgrep can find its helper processes. */
  readonly wrapper: string;
  private readonly env: NodeJS.ProcessEnv;
  private readonly globals: string[];

  /** Rootless, with the helper bind-mounted: the path it runs under. */
  private helperSeen?: string;
  /** Rootless: the script each podman call goes through (mount namespace set up, then the user's podman). */
  private readonly enter?: string;

  private constructor(opts: PodmanOptions) {
    this.dir = mkdtempSync(join(tmpdir(), 'podman-t-'));
    this.wrapper = join(this.dir, 'slirp4netns');
    const bind = opts.resolvConf ? `mount --bind ${JSON.stringify(opts.resolvConf)} /etc/resolv.conf || exit 1; ` : '';
    if (opts.rootless) {
      // Every process of the user's podman, its helper included, descends
      // from enter.sh's mount namespace, so the resolver bind is made there.
      // A helper the user cannot reach (a checkout under a 0700 directory,
      // as mktemp -d makes) is bind-mounted, with its package, under this
      // instance's directory.
      let helper = opts.helper;
      let bindPackage = '';
      if (!userCanExec(helper)) {
        // Its top directory keeps its mode through a bind mount, so each
        // entry under it is bound into a directory of mode 0755 instead.
        const pkg = dirname(dirname(helper));
        const seen = join(this.dir, 'pkg');
        mkdirSync(seen);
        for (const entry of readdirSync(pkg, { withFileTypes: true })) {
          if (entry.name === '.git') continue;
          const at = join(seen, entry.name);
          if (entry.isDirectory()) mkdirSync(at);
          else writeFileSync(at, '');
          bindPackage += `mount --bind ${JSON.stringify(join(pkg, entry.name))} ${JSON.stringify(at)} || exit 1; `;
        }
        helper = join(seen, relative(pkg, helper));
        this.helperSeen = helper;
      }
      writeFileSync(this.wrapper, `#!/bin/sh\nexec ${JSON.stringify(helper)} "$@"\n`);
      this.enter = this.writeEnter(bindPackage + bind);
    } else {
      // The wrapper gives the helper a private mount namespace whose
      // /etc/resolv.conf names the test's DNS server; fds 3 and 4 (exit and
      // ready) pass through exec untouched.
      writeFileSync(this.wrapper, `#!/bin/sh\nexec unshare -m --propagation private sh -c '${bind}exec "$0" "$@"' ${JSON.stringify(opts.helper)} "$@"\n`);
    }
    chmodSync(this.wrapper, 0o755);
    const conf = join(this.dir, 'containers.conf');
    writeFileSync(conf, [
      '[containers]', 'log_driver = "k8s-file"', '',
      '[engine]', `network_cmd_path = "${this.wrapper}"`, 'cgroup_manager = "cgroupfs"', 'events_logger = "file"',
      `tmp_dir = "${join(this.dir, 'tmp')}"`, `volume_path = "${join(this.dir, 'volumes')}"`, 'runtime = "runc"', '',
      '[network]', `network_config_dir = "${join(this.dir, 'net')}"`, '',
    ].join('\n'));
    const storage = join(this.dir, 'storage.conf');
    writeFileSync(storage, `[storage]\ndriver = "vfs"\ngraphroot = "${join(this.dir, 'root')}"\nrunroot = "${join(this.dir, 'runroot')}"\n`);
    this.env = { ...process.env, CONTAINERS_CONF: conf, CONTAINERS_STORAGE_CONF: storage, CONTAINERS_REGISTRIES_CONF: join(this.dir, 'registries.conf') };
    writeFileSync(join(this.dir, 'registries.conf'), 'unqualified-search-registries = []\n');
    this.globals = ['--root', join(this.dir, 'root'), '--runroot', join(this.dir, 'runroot'), '--storage-driver', 'vfs', '--cgroup-manager', 'cgroupfs', '--events-backend', 'file'];
    if (opts.rootless) {
      for (const d of ['root', 'runroot', 'tmp', 'volumes', 'net', 'home', 'run']) mkdirSync(join(this.dir, d), { recursive: true });
      execFileSync('chown', ['-R', `${ROOTLESS_UID}:${ROOTLESS_UID}`, join(this.dir, 'root'), join(this.dir, 'runroot'), join(this.dir, 'tmp'),
        join(this.dir, 'volumes'), join(this.dir, 'net'), join(this.dir, 'home'), join(this.dir, 'run')]);
      chmodSync(join(this.dir, 'run'), 0o700);
      chmodSync(this.dir, 0o755);
    }
  }

  /**
   * Rootless podman's world, made only in a private mount namespace so the
   * host's files are never touched: the user in copies of /etc/passwd and
   * /etc/group, its subordinate ids in copies of /etc/subuid and /etc/subgid
   * (what newuidmap reads), and /dev/net/tun as a node of mode 0666, as
   * Debian's udev makes it (a sandboxed host may have it 0600, which stops
   * every rootless helper, slirp4netns too). Then podman runs as the user.
   */
  private writeEnter(bindResolver: string): string {
    const etc = join(this.dir, 'etc');
    mkdirSync(etc);
    const read = (f: string) => (existsSync(f) ? readFileSync(f, 'utf8') : '');
    const line = (s: string) => (s === '' || s.endsWith('\n') ? s : `${s}\n`);
    writeFileSync(join(etc, 'passwd'), `${line(read('/etc/passwd'))}${ROOTLESS_NAME}:x:${ROOTLESS_UID}:${ROOTLESS_UID}::${join(this.dir, 'home')}:/bin/sh\n`);
    writeFileSync(join(etc, 'group'), `${line(read('/etc/group'))}${ROOTLESS_NAME}:x:${ROOTLESS_UID}:\n`);
    writeFileSync(join(etc, 'subuid'), `${ROOTLESS_NAME}:${SUBID_START}:65536\n`);
    writeFileSync(join(etc, 'subgid'), `${ROOTLESS_NAME}:${SUBID_START}:65536\n`);
    const tun = join(this.dir, 'tun');
    const q = JSON.stringify;
    const binds = ['passwd', 'group', 'subuid', 'subgid'].map((f) => `[ -e /etc/${f} ] || : > /etc/${f}; mount --bind ${q(join(etc, f))} /etc/${f} || exit 1`);
    const env = [
      'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', `HOME=${join(this.dir, 'home')}`, `USER=${ROOTLESS_NAME}`,
      `LOGNAME=${ROOTLESS_NAME}`, `XDG_RUNTIME_DIR=${join(this.dir, 'run')}`, `CONTAINERS_CONF=${join(this.dir, 'containers.conf')}`,
      `CONTAINERS_STORAGE_CONF=${join(this.dir, 'storage.conf')}`, `CONTAINERS_REGISTRIES_CONF=${join(this.dir, 'registries.conf')}`,
    ];
    const script = [
      '#!/bin/sh',
      `[ -c ${q(tun)} ] || { mknod ${q(tun)} c 10 200 && chmod 666 ${q(tun)}; } || exit 1`,
      `mount --bind ${q(tun)} /dev/net/tun || exit 1`,
      ...binds,
      bindResolver,
      `cd ${q(join(this.dir, 'home'))}`,
      `exec setpriv --reuid=${ROOTLESS_UID} --regid=${ROOTLESS_UID} --clear-groups env -i ${env.map((e) => q(e)).join(' ')} podman "$@"`,
      '',
    ].join('\n');
    const path = join(this.dir, 'enter.sh');
    writeFileSync(path, script);
    chmodSync(path, 0o755);
    return path;
  }

  static async create(opts: PodmanOptions): Promise<Podman> {
    const p = new Podman(opts);
    try {
      let rootfs = busyboxRootfs();
      if (opts.rootless) {
        // The cache may sit in root's home, which the user cannot read.
        execFileSync('cp', [rootfs, join(p.dir, 'home', 'rootfs.tar')]);
        rootfs = join(p.dir, 'home', 'rootfs.tar');
        chmodSync(rootfs, 0o644);
      }
      await p.run(['import', rootfs, IMAGE]);
    } catch (err) {
      await p.dispose();
      throw err;
    }
    return p;
  }

  async run(args: string[], timeout = 60_000): Promise<{ stdout: string; stderr: string }> {
    // Rootful podman raises RLIMIT_NOFILE/NPROC to its own defaults (even with
    // --ulimit host), which a sandboxed host (a container itself) refuses:
    // ask for limits below any host's.
    if (args[0] === 'run') args = ['run', '--ulimit', 'nofile=4096:4096', '--ulimit', 'nproc=4096:4096', ...args.slice(1)];
    const [cmd, argv] = this.enter
      ? ['unshare', ['-m', '--propagation', 'private', this.enter, ...this.globals, ...args]]
      : ['podman', [...this.globals, ...args]];
    try {
      return await run(cmd, argv, { env: this.env, timeout, maxBuffer: 64 << 20 });
    } catch (err) {
      const e = err as Error & { stdout?: string; stderr?: string };
      e.message = `podman ${args.join(' ')}: ${e.message}\n${e.stderr ?? ''}`;
      throw e;
    }
  }

  /** Helper processes still alive (the wrapper's path is in their command line, or the helper's). */
  async helperPids(helper: string): Promise<number[]> {
    const out = await run('ps', ['-eo', 'pid=,args=']).then((r) => r.stdout, () => '');
    const paths = [helper, ...(this.helperSeen ? [this.helperSeen] : [])];
    return out.split('\n').filter((l) => l.includes(this.wrapper) || (paths.some((p) => l.includes(p)) && l.includes('--netns-type')))
      .map((l) => Number(l.trim().split(/\s+/)[0])).filter((pid) => pid !== process.pid);
  }

  /** Removes every container, stops podman's processes, removes the storage. */
  async dispose(): Promise<void> {
    await this.run(['rm', '-af', '-t', '0']).catch(() => undefined);
    // Rootless podman leaves its pause process (the user namespace's
    // keeper) behind by design; the user exists only for this instance.
    if (this.enter) await run('pkill', ['-KILL', '-U', String(ROOTLESS_UID)]).catch(() => undefined);
    // vfs layers and the run root may hold mounts (shm); unmount before rm.
    await run('sh', ['-c', `grep -o " ${this.dir}[^ ]*" /proc/self/mounts | sort -r | xargs -r -n1 umount -l`]).catch(() => undefined);
    rmSync(this.dir, { recursive: true, force: true });
  }
}
