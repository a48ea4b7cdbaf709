/**
 * confine(): what slirp4netns's --enable-sandbox and --enable-seccomp do,
 * for a process that has finished starting a gateway (its TAP is open, its
 * API socket bound, its code and the wasm module loaded). Linux only.
 *
 * `sandbox: true` (needs CAP_SYS_ADMIN: root, or root in a user namespace):
 * - a new mount namespace whose root is a read-only, noexec tmpfs holding
 *   only copies of the resolver's files (RESOLVER_FILES, read now): the
 *   host's file system is gone, including /proc, /sys and /dev;
 * - every capability dropped (bounding, permitted, effective, inheritable
 *   and ambient) except CAP_NET_BIND_SERVICE, which slirp4netns keeps too,
 *   so a forward to a host port below 1024 can still be added at run time;
 * - no_new_privs.
 * Linux keeps all three per thread, and Node runs many threads (libuv's
 * threadpool does file system work). The addon applies them to the calling
 * thread and then, through a signal, to every other thread in
 * /proc/self/task, as libpsx does for capabilities; threads started later
 * inherit from their creator. Not covered: a thread that blocks every
 * signal, which in Node 20 is the inspector's SIGUSR1 watchdog (it only
 * waits on a semaphore and never touches files or sockets): it keeps the
 * host's root and its capabilities. Seccomp, installed with TSYNC, still
 * covers it.
 *
 * `seccomp: true`: a filter on every thread that fails with EPERM (the
 * gateway gets an error it can log and keeps serving; nothing is killed)
 * the system calls in DENIED, and every call made under another
 * architecture or ABI (i386 through int 0x80, x32). Filters last for the
 * life of the process and pass to its children.
 *
 * What keeps working: open fds (the TAP, sockets, an open pcap file), new
 * host sockets (TCP connect and listen, UDP), node:dns (c-ares reads the
 * copied resolv.conf; getaddrinfo the copied hosts and nsswitch.conf,
 * without NSS modules it would have to load from disk). What does not:
 * opening any host file or loading code after the call (import() of a
 * module not yet loaded, a new addon), child processes (execve is denied),
 * anything that reads /proc (process.memoryUsage(), os.cpus()); a changed
 * /etc/resolv.conf on the host is not seen. Each thread now has its own
 * working directory (all start at the new root): process.chdir() after the
 * call moves the calling thread's only.
 */
import { readFileSync } from 'node:fs';
import { invalidOption } from '../core/errors.js';
import { loadNative, type NativeConfinement } from './native.js';

/**
 * System calls a gateway never makes once it is serving, denied by
 * `seccomp: true` where this architecture has them (names as in
 * <sys/syscall.h>). Grouped as systemd's syscall filter sets are.
 */
const DENIED: readonly string[] = Object.freeze([
  // running other programs
  'execve', 'execveat',
  // debugging other processes, reading or writing their memory
  'ptrace', 'process_vm_readv', 'process_vm_writev', 'pidfd_getfd',
  // mounts and namespaces (the sandbox's walls)
  'mount', 'umount', 'umount2', 'pivot_root', 'chroot', 'fsopen', 'fsconfig', 'fsmount', 'fspick', 'move_mount',
  'open_tree', 'mount_setattr', 'setns', 'unshare',
  // the kernel itself: eBPF, perf, modules, kexec, reboot, swap, accounting, I/O ports
  'bpf', 'perf_event_open', 'userfaultfd', 'init_module', 'finit_module', 'delete_module', 'kexec_load',
  'kexec_file_load', 'reboot', 'swapon', 'swapoff', 'acct', 'quotactl', 'iopl', 'ioperm', 'uselib', 'lookup_dcookie',
  // the kernel keyring
  'keyctl', 'add_key', 'request_key',
  // files by handle, which walks around the mount namespace
  'open_by_handle_at', 'name_to_handle_at',
  // host identity and clocks
  'sethostname', 'setdomainname', 'settimeofday', 'clock_settime', 'clock_adjtime', 'adjtimex',
  // new io_uring instances: their operations are not seen by seccomp
  'io_uring_setup',
]);

/** Copied into the sandbox's root so that name resolution keeps working. */
const RESOLVER_FILES: readonly string[] = Object.freeze([
  '/etc/resolv.conf', '/etc/hosts', '/etc/nsswitch.conf', '/etc/host.conf', '/etc/gai.conf', '/etc/services', '/etc/protocols',
]);

const CAP_NET_BIND_SERVICE = 10;
const MAX_FILE = 1 << 20;

/** What has been applied, once per process (shared by every copy of this module). */
const STATE = Symbol.for('tcpip-ts.confine');
type Applied = { sandbox: boolean; seccomp: boolean };

function applied(): Applied {
  const g = globalThis as { [STATE]?: Applied };
  return (g[STATE] ??= { sandbox: false, seccomp: false });
}

function codedError(code: string, message: string): Error & { code: string } {
  const err = new Error(message) as Error & { code: string };
  err.code = code;
  return err;
}

function checkOptions(options: unknown): { sandbox: boolean; seccomp: boolean } {
  if (options === null || typeof options !== 'object') {
    const err = new TypeError(`The "options" argument must be an object. Received ${options === null ? 'null' : typeof options}`) as TypeError & { code: string };
    err.code = 'ERR_INVALID_ARG_TYPE';
    throw err;
  }
  const o = options as Record<string, unknown>;
  for (const key of Object.keys(o)) {
    if (key !== 'sandbox' && key !== 'seccomp') throw invalidOption(key, "absent (confine takes only 'sandbox' and 'seccomp')", o[key]);
  }
  for (const key of ['sandbox', 'seccomp'] as const) {
    if (o[key] !== undefined && typeof o[key] !== 'boolean') throw invalidOption(key, 'a boolean', o[key]);
  }
  return { sandbox: o.sandbox === true, seccomp: o.seccomp === true };
}

function resolverFiles(): { path: string; data: Uint8Array }[] {
  const files: { path: string; data: Uint8Array }[] = [];
  for (const path of RESOLVER_FILES) {
    let data: Buffer;
    try {
      data = readFileSync(path); // follows a symlink (systemd-resolved's stub file)
    } catch {
      continue; // absent here: the resolver does without it
    }
    if (data.length <= MAX_FILE) files.push({ path: path.slice(1), data });
  }
  return files;
}

/**
 * Confines this process (see the module comment). Call it once start-up is
 * done. Parts already applied are skipped, so calling it again is harmless;
 * `sandbox` after `seccomp` alone is refused (ERR_INVALID_STATE), as the
 * filter denies the mounts it needs; ask for both in one call. On a
 * failure the process may be partly confined and should exit. Off Linux it
 * throws ERR_FEATURE_UNAVAILABLE_ON_PLATFORM.
 */
export function confine(options: { sandbox?: boolean; seccomp?: boolean }): void {
  const want = checkOptions(options);
  if (!want.sandbox && !want.seccomp) return;
  if (process.platform !== 'linux') {
    throw codedError('ERR_FEATURE_UNAVAILABLE_ON_PLATFORM', `confine: sandbox and seccomp need Linux (this is ${process.platform})`);
  }
  const done = applied();
  // Already applied: nothing to do (and nothing to load from a file system that may be gone).
  if ((!want.sandbox || done.sandbox) && (!want.seccomp || done.seccomp)) return;
  if (want.sandbox && !done.sandbox && done.seccomp) {
    throw codedError('ERR_INVALID_STATE', 'confine: the sandbox cannot be set up once seccomp is on (the filter denies mount and unshare); call confine({ sandbox: true, seccomp: true }) once');
  }
  const native: NativeConfinement | undefined = loadNative().confinement;
  if (!native) throw codedError('ERR_FEATURE_UNAVAILABLE_ON_PLATFORM', 'confine: the native addon has no confinement support on this platform');
  if (want.sandbox && !done.sandbox) {
    native.sandbox(resolverFiles(), new Uint32Array([CAP_NET_BIND_SERVICE]));
    done.sandbox = true;
  }
  if (want.seccomp && !done.seccomp) {
    // no_new_privs lets an unprivileged process install a filter; TSYNC
    // passes it on to the other threads with the filter.
    native.setNoNewPrivs();
    const numbers = DENIED.map((name) => native.syscallNumbers[name]).filter((n): n is number => n !== undefined);
    native.seccompDeny(new Uint32Array(numbers));
    done.seccomp = true;
  }
}
