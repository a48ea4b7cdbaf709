/* Confinement primitives for src/node/confine.ts (Linux). The policy (which
 * system calls, which files the new root holds, which capability stays)
 * is TypeScript's; this file only knows how to apply it to every thread.
 *
 * - syscallNumbers: this build's numbers for the system calls confine.ts
 *   may name, from <sys/syscall.h> (so an arm64 build gets arm64's).
 * - seccompDeny(numbers): a filter returning EPERM for those numbers, and
 *   for every call made under another architecture or ABI (i386 through
 *   int 0x80, x32), installed with SECCOMP_FILTER_FLAG_TSYNC so every
 *   thread of the process gets it, now and its children later.
 * - setNoNewPrivs(): PR_SET_NO_NEW_PRIVS for the calling thread (the
 *   kernel's TSYNC then copies it to the others).
 * - sandbox(files, keepCapabilities): a new mount namespace whose root is a
 *   read-only tmpfs holding only `files`, then no capabilities but
 *   `keepCapabilities` and no new privileges, on every thread.
 *
 * Threads. Mount namespace, root directory, capabilities and no_new_privs
 * are per thread in Linux, and Node has many (libuv's threadpool does file
 * system work, V8's platform workers, the inspector's watchdog). The
 * calling thread does the work, then signals each other thread listed in
 * /proc/self/task, which in its handler leaves the shared fs_struct
 * (unshare(CLONE_FS)), joins the new mount namespace (setns, which also
 * moves its root and cwd there) and drops the same capabilities; this is
 * what libpsx does for capabilities. A thread that blocks the signal
 * cannot be reached (Node's inspector watchdog thread blocks every
 * signal; it only waits on a semaphore): sandbox() reports such threads
 * rather than waiting. Threads started later inherit from the thread that
 * starts them. */
#ifdef __linux__

#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "addon.h"
#include "util.h"

#if defined(__x86_64__)
#define SECCOMP_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define SECCOMP_ARCH AUDIT_ARCH_AARCH64
#endif

/* ---- system call numbers ------------------------------------------------- */

typedef struct named_syscall {
  const char *name;
  long nr;
} named_syscall;

/* Every call confine.ts may deny, where this architecture has it. */
static const named_syscall SYSCALLS[] = {
#ifdef __NR_execve
    {"execve", __NR_execve},
#endif
#ifdef __NR_execveat
    {"execveat", __NR_execveat},
#endif
#ifdef __NR_ptrace
    {"ptrace", __NR_ptrace},
#endif
#ifdef __NR_process_vm_readv
    {"process_vm_readv", __NR_process_vm_readv},
#endif
#ifdef __NR_process_vm_writev
    {"process_vm_writev", __NR_process_vm_writev},
#endif
#ifdef __NR_pidfd_getfd
    {"pidfd_getfd", __NR_pidfd_getfd},
#endif
#ifdef __NR_mount
    {"mount", __NR_mount},
#endif
#ifdef __NR_umount
    {"umount", __NR_umount},
#endif
#ifdef __NR_umount2
    {"umount2", __NR_umount2},
#endif
#ifdef __NR_pivot_root
    {"pivot_root", __NR_pivot_root},
#endif
#ifdef __NR_chroot
    {"chroot", __NR_chroot},
#endif
#ifdef __NR_fsopen
    {"fsopen", __NR_fsopen},
#endif
#ifdef __NR_fsconfig
    {"fsconfig", __NR_fsconfig},
#endif
#ifdef __NR_fsmount
    {"fsmount", __NR_fsmount},
#endif
#ifdef __NR_fspick
    {"fspick", __NR_fspick},
#endif
#ifdef __NR_move_mount
    {"move_mount", __NR_move_mount},
#endif
#ifdef __NR_open_tree
    {"open_tree", __NR_open_tree},
#endif
#ifdef __NR_mount_setattr
    {"mount_setattr", __NR_mount_setattr},
#endif
#ifdef __NR_setns
    {"setns", __NR_setns},
#endif
#ifdef __NR_unshare
    {"unshare", __NR_unshare},
#endif
#ifdef __NR_bpf
    {"bpf", __NR_bpf},
#endif
#ifdef __NR_perf_event_open
    {"perf_event_open", __NR_perf_event_open},
#endif
#ifdef __NR_userfaultfd
    {"userfaultfd", __NR_userfaultfd},
#endif
#ifdef __NR_kexec_load
    {"kexec_load", __NR_kexec_load},
#endif
#ifdef __NR_kexec_file_load
    {"kexec_file_load", __NR_kexec_file_load},
#endif
#ifdef __NR_reboot
    {"reboot", __NR_reboot},
#endif
#ifdef __NR_init_module
    {"init_module", __NR_init_module},
#endif
#ifdef __NR_finit_module
    {"finit_module", __NR_finit_module},
#endif
#ifdef __NR_delete_module
    {"delete_module", __NR_delete_module},
#endif
#ifdef __NR_keyctl
    {"keyctl", __NR_keyctl},
#endif
#ifdef __NR_add_key
    {"add_key", __NR_add_key},
#endif
#ifdef __NR_request_key
    {"request_key", __NR_request_key},
#endif
#ifdef __NR_open_by_handle_at
    {"open_by_handle_at", __NR_open_by_handle_at},
#endif
#ifdef __NR_name_to_handle_at
    {"name_to_handle_at", __NR_name_to_handle_at},
#endif
#ifdef __NR_lookup_dcookie
    {"lookup_dcookie", __NR_lookup_dcookie},
#endif
#ifdef __NR_swapon
    {"swapon", __NR_swapon},
#endif
#ifdef __NR_swapoff
    {"swapoff", __NR_swapoff},
#endif
#ifdef __NR_acct
    {"acct", __NR_acct},
#endif
#ifdef __NR_quotactl
    {"quotactl", __NR_quotactl},
#endif
#ifdef __NR_iopl
    {"iopl", __NR_iopl},
#endif
#ifdef __NR_ioperm
    {"ioperm", __NR_ioperm},
#endif
#ifdef __NR_uselib
    {"uselib", __NR_uselib},
#endif
#ifdef __NR_sethostname
    {"sethostname", __NR_sethostname},
#endif
#ifdef __NR_setdomainname
    {"setdomainname", __NR_setdomainname},
#endif
#ifdef __NR_settimeofday
    {"settimeofday", __NR_settimeofday},
#endif
#ifdef __NR_clock_settime
    {"clock_settime", __NR_clock_settime},
#endif
#ifdef __NR_clock_adjtime
    {"clock_adjtime", __NR_clock_adjtime},
#endif
#ifdef __NR_adjtimex
    {"adjtimex", __NR_adjtimex},
#endif
#ifdef __NR_io_uring_setup
    {"io_uring_setup", __NR_io_uring_setup},
#endif
};

static napi_value js_syscall_numbers(napi_env env) {
  napi_value o, v;
  NAPI_CALL(env, napi_create_object(env, &o));
  for (size_t i = 0; i < sizeof SYSCALLS / sizeof SYSCALLS[0]; i++) {
    NAPI_CALL(env, napi_create_int64(env, SYSCALLS[i].nr, &v));
    NAPI_CALL(env, napi_set_named_property(env, o, SYSCALLS[i].name, v));
  }
  NAPI_CALL(env, napi_object_freeze(env, o));
  return o;
}

/* ---- seccomp ------------------------------------------------------------- */

#define MAX_DENIED 200 /* BPF jump offsets are 8 bits */

static napi_value js_seccomp_deny(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
#ifndef SECCOMP_ARCH
  throw_coded_error(env, "ERR_NOT_SUPPORTED", "seccompDeny: this architecture has no filter here (x86_64 and arm64 only)");
  return NULL;
#else
  uint32_t *numbers;
  size_t n;
  if (argc < 1 || !get_u32_array(env, argv[0], "numbers", &numbers, &n)) return NULL;
  if (n == 0 || n > MAX_DENIED) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "seccompDeny: from 1 to 200 system call numbers");
    return NULL;
  }
  /* arch check, [x32 check], one jeq per number, allow, deny. */
  struct sock_filter prog[4 + MAX_DENIED + 2];
  size_t k = 0;
  size_t deny_at = 3 + n + 1;
#ifdef __x86_64__
  deny_at++;
#endif
  prog[k++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch));
  /* Another ABI's numbers mean other calls: refuse them all. */
  prog[k] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SECCOMP_ARCH, 0, (uint8_t)(deny_at - k - 1));
  k++;
  prog[k++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr));
#ifdef __x86_64__
  /* x32 calls carry the same arch with bit 30 set in the number. */
  prog[k] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 0x40000000u, (uint8_t)(deny_at - k - 1), 0);
  k++;
#endif
  for (size_t i = 0; i < n; i++, k++)
    prog[k] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, numbers[i], (uint8_t)(deny_at - k - 1), 0);
  prog[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
  prog[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA));
  struct sock_fprog fprog = {(unsigned short)k, prog};
  long r = syscall(__NR_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &fprog);
  if (r < 0) {
    throw_sys_error(env, errno, "seccomp",
                    errno == EACCES ? "seccompDeny: needs no_new_privs (setNoNewPrivs()) or CAP_SYS_ADMIN"
                                    : "seccompDeny: cannot install the filter");
    return NULL;
  }
  if (r > 0) { /* TSYNC: this thread could not be synchronised; nothing was installed */
    char msg[128];
    snprintf(msg, sizeof msg, "seccompDeny: thread %ld has a seccomp filter of its own; nothing was installed", r);
    throw_coded_error(env, "ERR_SECCOMP_TSYNC", msg);
    return NULL;
  }
  return nc_undefined(env);
#endif
}

static napi_value js_set_no_new_privs(napi_env env, napi_callback_info info) {
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
    throw_sys_error(env, errno, "prctl", "setNoNewPrivs: PR_SET_NO_NEW_PRIVS failed");
    return NULL;
  }
  return nc_undefined(env);
}

/* ---- per-thread work ----------------------------------------------------- */

/* What every thread applies to itself. Only raw system calls: it also runs
 * in a signal handler. Returns 0 or an errno, with *step naming the call. */
typedef struct thread_job {
  int mntns; /* the new mount namespace, or -1 */
  uint64_t keep; /* capabilities kept */
} thread_job;

static int apply_to_this_thread(const thread_job *job, bool joins, const char **step) {
  if (joins && job->mntns >= 0) {
    /* setns into a mount namespace wants an fs_struct of our own. */
    if (unshare(CLONE_FS) < 0) return *step = "unshare(CLONE_FS)", errno;
    if (setns(job->mntns, CLONE_NEWNS) < 0) return *step = "setns(CLONE_NEWNS)", errno;
  }
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
    return *step = "prctl(PR_CAP_AMBIENT_CLEAR_ALL)", errno;
  for (int cap = 0; cap < 64; cap++) {
    if (job->keep & (1ULL << cap)) continue;
    if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0) {
      if (errno == EINVAL) break; /* past the kernel's last capability */
      return *step = "prctl(PR_CAPBSET_DROP)", errno;
    }
  }
  struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[2];
  memset(data, 0, sizeof data);
  for (int i = 0; i < 2; i++) {
    uint32_t keep = (uint32_t)(job->keep >> (32 * i));
    data[i].effective = data[i].permitted = data[i].inheritable = keep;
  }
  if (syscall(SYS_capset, &hdr, data) < 0) return *step = "capset", errno;
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) return *step = "prctl(PR_SET_NO_NEW_PRIVS)", errno;
  return 0;
}

/* One signalled thread at a time: the caller waits for its answer. */
static thread_job broadcast_job;
static _Atomic pid_t answered_tid;
static int answered_err;
static const char *answered_step;

#define CONFINE_SIGNAL (SIGRTMIN + 5)

static void on_confine_signal(int sig, siginfo_t *si, void *uc) {
  int saved = errno;
  const char *step = NULL;
  int err = apply_to_this_thread(&broadcast_job, true, &step);
  answered_err = err;
  answered_step = step;
  atomic_store(&answered_tid, (pid_t)syscall(SYS_gettid));
  errno = saved;
}

typedef struct task {
  pid_t tid;
  char name[20];
  bool blocks; /* has CONFINE_SIGNAL blocked: cannot be reached */
  bool done;
} task;

#define MAX_TASKS 512

/* Reads /proc/self/task (through a directory fd kept open, so it works once
 * the root has gone) for threads not in the list yet. */
static size_t scan_tasks(int taskdir, task *tasks, size_t count, pid_t self) {
  int fd = openat(taskdir, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return count;
  DIR *d = fdopendir(fd);
  if (!d) {
    close(fd);
    return count;
  }
  struct dirent *e;
  while ((e = readdir(d)) && count < MAX_TASKS) {
    pid_t tid = (pid_t)atoi(e->d_name);
    if (tid <= 0 || tid == self) continue;
    bool known = false;
    for (size_t i = 0; i < count && !known; i++) known = tasks[i].tid == tid;
    if (known) continue;
    task *t = &tasks[count++];
    memset(t, 0, sizeof *t);
    t->tid = tid;
    char path[64], buf[4096];
    snprintf(path, sizeof path, "%d/status", (int)tid);
    int sfd = openat(taskdir, path, O_RDONLY | O_CLOEXEC);
    ssize_t len = sfd >= 0 ? read(sfd, buf, sizeof buf - 1) : -1;
    if (sfd >= 0) close(sfd);
    if (len <= 0) continue;
    buf[len] = '\0';
    const char *name = strstr(buf, "Name:\t");
    if (name) sscanf(name + 6, "%19[^\n]", t->name);
    const char *blk = strstr(buf, "SigBlk:\t");
    if (blk) {
      unsigned long long mask = strtoull(blk + 8, NULL, 16);
      t->blocks = (mask >> (CONFINE_SIGNAL - 1)) & 1;
    }
  }
  closedir(d);
  return count;
}

/* Applies the job to every other thread. Returns how many were reached;
 * the first failure goes to err, step and failed_tid. */
static size_t broadcast(int taskdir, task *tasks, size_t *count, int *err, const char **step, pid_t *failed_tid) {
  pid_t self = (pid_t)syscall(SYS_gettid), pid = getpid();
  size_t reached = 0;
  /* Rescan until a pass finds no new thread: one that was starting while
   * we went round may have copied its creator's state from before. */
  for (int pass = 0; pass < 8; pass++) {
    size_t before = *count;
    *count = scan_tasks(taskdir, tasks, *count, self);
    bool any = false;
    for (size_t i = 0; i < *count; i++) {
      task *t = &tasks[i];
      if (t->done || t->blocks) continue;
      any = true;
      t->done = true;
      atomic_store(&answered_tid, 0);
      if (syscall(SYS_tgkill, pid, t->tid, CONFINE_SIGNAL) < 0) continue; /* it has exited */
      /* Bounded: 2 s. A thread in a long uninterruptible sleep answers late. */
      struct timespec pause = {0, 200000};
      for (int i = 0; i < 10000 && atomic_load(&answered_tid) != t->tid; i++) nanosleep(&pause, NULL);
      if (atomic_load(&answered_tid) != t->tid) {
        if (!*err) *err = ETIMEDOUT, *step = "waiting for the thread", *failed_tid = t->tid;
        continue;
      }
      if (answered_err) {
        if (!*err) *err = answered_err, *step = answered_step, *failed_tid = t->tid;
        continue;
      }
      reached++;
    }
    if (!any && *count == before && pass > 0) break;
  }
  return reached;
}

/* ---- the new root -------------------------------------------------------- */

/* Creates path's parent directories under dirfd, then the file with data. */
static int write_file(int dirfd, const char *path, const uint8_t *data, size_t len) {
  char buf[256];
  if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf) return ENAMETOOLONG;
  for (char *p = strchr(buf, '/'); p; p = strchr(p + 1, '/')) {
    *p = '\0';
    if (mkdirat(dirfd, buf, 0755) < 0 && errno != EEXIST) return errno;
    *p = '/';
  }
  int fd = openat(dirfd, buf, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return errno;
  size_t off = 0;
  while (off < len) {
    ssize_t w = write(fd, data + off, len - off);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) {
      int e = errno;
      close(fd);
      return e;
    }
    off += (size_t)w;
  }
  close(fd);
  return 0;
}

typedef struct root_file {
  char path[256];
  uint8_t *data;
  size_t len;
} root_file;

/* In a new mount namespace: an empty tmpfs over /tmp (ours alone), the
 * files, then pivot_root(".", ".") and a lazy unmount of the old root that
 * ends up stacked on it (pivot_root(2)), and a read-only remount. */
static int make_root(const root_file *files, size_t n, const char **step, char *what, size_t what_len) {
  if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) return *step = "mount(MS_PRIVATE)", errno;
  if (mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=4m,mode=0755") < 0)
    return *step = "mount(tmpfs)", errno;
  int dir = open("/tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0) return *step = "open", errno;
  for (size_t i = 0; i < n; i++) {
    int e = write_file(dir, files[i].path, files[i].data, files[i].len);
    if (e) {
      close(dir);
      snprintf(what, what_len, "%.200s", files[i].path);
      return *step = "write", e;
    }
  }
  int e = fchdir(dir) < 0 ? errno : 0;
  close(dir);
  if (e) return *step = "fchdir", e;
  if (syscall(SYS_pivot_root, ".", ".") < 0) return *step = "pivot_root", errno;
  if (umount2(".", MNT_DETACH) < 0) return *step = "umount2", errno;
  if (chdir("/") < 0) return *step = "chdir", errno;
  if (mount(NULL, "/", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
    return *step = "mount(MS_REMOUNT|MS_RDONLY)", errno;
  return 0;
}

/* sandbox(files: [{ path, data }], keepCapabilities: Uint32Array)
 *   -> { threads, reached, unreachable: [{ tid, name }] }
 * paths are relative (etc/resolv.conf); confine.ts checks them. */
static napi_value js_sandbox(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  bool is_array = false;
  uint32_t n_files = 0, *keep_list;
  size_t n_keep;
  if (argc < 2 || napi_is_array(env, argv[0], &is_array) != napi_ok || !is_array) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "The \"files\" argument must be an array");
    return NULL;
  }
  if (!get_u32_array(env, argv[1], "keepCapabilities", &keep_list, &n_keep)) return NULL;
  NAPI_CALL(env, napi_get_array_length(env, argv[0], &n_files));
  if (n_files > 64) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "sandbox: at most 64 files");
    return NULL;
  }
  root_file files[64];
  for (uint32_t i = 0; i < n_files; i++) {
    napi_value f, v;
    bool present;
    NAPI_CALL(env, napi_get_element(env, argv[0], i, &f));
    if (!get_object_arg(env, f, "files[i]") || !get_prop(env, f, "path", &v, &present) ||
        !get_string(env, v, "files[i].path", files[i].path, sizeof files[i].path) ||
        !get_prop(env, f, "data", &v, &present) || !get_u8_array(env, v, "files[i].data", &files[i].data, &files[i].len))
      return NULL;
  }
  thread_job job = {-1, 0};
  for (size_t i = 0; i < n_keep; i++)
    if (keep_list[i] < 64) job.keep |= 1ULL << keep_list[i];

  /* Everything from /proc first: it is gone once the root is. */
  int taskdir = open("/proc/self/task", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (taskdir < 0) {
    throw_sys_error(env, errno, "open", "sandbox: cannot list this process's threads (/proc/self/task)");
    return NULL;
  }
  const char *step = NULL;
  char what[256] = "";
  int err = 0;
  if (unshare(CLONE_NEWNS) < 0) err = errno, step = "unshare(CLONE_NEWNS)";
  if (!err && (job.mntns = open("/proc/thread-self/ns/mnt", O_RDONLY | O_CLOEXEC)) < 0)
    err = errno, step = "open(/proc/thread-self/ns/mnt)";
  if (!err) err = make_root(files, n_files, &step, what, sizeof what);
  if (err) {
    /* Only this thread has moved (if at all); the others are untouched. */
    if (job.mntns >= 0) close(job.mntns);
    close(taskdir);
    char msg[512];
    snprintf(msg, sizeof msg, "sandbox: %s%s%s failed", step, what[0] ? " " : "", what);
    throw_sys_error(env, err, step, msg);
    return NULL;
  }

  /* The other threads, through a signal handler (SA_RESTART: most of
   * their system calls carry on). The handler stays installed: a late
   * signal must not kill the process, and applying again is harmless. */
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_confine_signal;
  sa.sa_flags = SA_SIGINFO | SA_RESTART;
  sigfillset(&sa.sa_mask);
  broadcast_job = job;
  static task tasks[MAX_TASKS];
  size_t count = 0, reached = 0;
  pid_t failed_tid = 0;
  if (sigaction(CONFINE_SIGNAL, &sa, NULL) < 0) err = errno, step = "sigaction";
  else reached = broadcast(taskdir, tasks, &count, &err, &step, &failed_tid);
  close(taskdir);
  /* This thread last: the mounts above needed its capabilities. */
  const char *own_step = NULL;
  int own = apply_to_this_thread(&job, false, &own_step);
  close(job.mntns);
  broadcast_job.mntns = -1;
  if (own && !err) err = own, step = own_step, failed_tid = (pid_t)syscall(SYS_gettid);
  if (err) {
    char msg[256];
    snprintf(msg, sizeof msg, "sandbox: %s failed in thread %d; the process is partly confined and should exit", step,
             (int)failed_tid);
    throw_sys_error(env, err, step, msg);
    return NULL;
  }

  napi_value result, v, list;
  NAPI_CALL(env, napi_create_object(env, &result));
  NAPI_CALL(env, napi_create_uint32(env, (uint32_t)count + 1, &v));
  NAPI_CALL(env, napi_set_named_property(env, result, "threads", v));
  NAPI_CALL(env, napi_create_uint32(env, (uint32_t)reached + 1, &v));
  NAPI_CALL(env, napi_set_named_property(env, result, "reached", v));
  NAPI_CALL(env, napi_create_array(env, &list));
  uint32_t k = 0;
  for (size_t i = 0; i < count; i++) {
    if (!tasks[i].blocks) continue;
    napi_value t;
    NAPI_CALL(env, napi_create_object(env, &t));
    NAPI_CALL(env, napi_create_int32(env, tasks[i].tid, &v));
    NAPI_CALL(env, napi_set_named_property(env, t, "tid", v));
    NAPI_CALL(env, napi_create_string_utf8(env, tasks[i].name, NAPI_AUTO_LENGTH, &v));
    NAPI_CALL(env, napi_set_named_property(env, t, "name", v));
    NAPI_CALL(env, napi_set_element(env, list, k++, t));
  }
  NAPI_CALL(env, napi_set_named_property(env, result, "unreachable", list));
  return result;
}

napi_value confine_init(napi_env env, napi_value exports) {
  napi_value fn, numbers;
  NAPI_CALL(env, napi_create_function(env, "seccompDeny", NAPI_AUTO_LENGTH, js_seccomp_deny, NULL, &fn));
  NAPI_CALL(env, napi_set_named_property(env, exports, "seccompDeny", fn));
  NAPI_CALL(env, napi_create_function(env, "setNoNewPrivs", NAPI_AUTO_LENGTH, js_set_no_new_privs, NULL, &fn));
  NAPI_CALL(env, napi_set_named_property(env, exports, "setNoNewPrivs", fn));
  NAPI_CALL(env, napi_create_function(env, "sandbox", NAPI_AUTO_LENGTH, js_sandbox, NULL, &fn));
  NAPI_CALL(env, napi_set_named_property(env, exports, "sandbox", fn));
  if (!(numbers = js_syscall_numbers(env))) return NULL;
  NAPI_CALL(env, napi_set_named_property(env, exports, "syscallNumbers", numbers));
  return exports;
}

#endif /* __linux__ */
