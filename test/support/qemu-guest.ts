/**
 * A real QEMU guest for the VM-runtime tests: Debian's kernel (fetched by
 * scripts/fetch-guest-kernel.sh), an initramfs built here from
 * busybox-static and a small init script, and a shell on the serial console
 * that the test drives one command at a time.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { accessSync, constants, existsSync, mkdirSync, readFileSync, writeFileSync, renameSync } from 'node:fs';
import type { Socket } from 'node:net';
import { homedir } from 'node:os';
import { join } from 'node:path';

export const QEMU = 'qemu-system-x86_64';
/** The kernel modules virtio-net needs (Debian builds them as modules), each after those it uses. */
const MODULES = ['virtio_ring', 'virtio', 'virtio_pci_legacy_dev', 'virtio_pci_modern_dev', 'virtio_pci', 'failover', 'net_failover', 'virtio_net'];
const BUSYBOX = '/bin/busybox';

/** Why the guest cannot run here, or null when it can. */
export function guestUnavailable(): string | null {
  if (process.platform !== 'linux' || process.arch !== 'x64') return `needs linux-x64 (this is ${process.platform}-${process.arch})`;
  if (spawnSync(QEMU, ['--version']).status !== 0) return `${QEMU} is missing (apt-get install qemu-system-x86; scripts/test-deps.sh does it as root)`;
  if (!existsSync(BUSYBOX) || !readFileSync(BUSYBOX).subarray(0, 4).equals(Buffer.from([0x7f, 0x45, 0x4c, 0x46]))) return `${BUSYBOX} is missing (apt-get install busybox-static)`;
  return null;
}

/** 'kvm' when /dev/kvm can be opened, else 'tcg' (QEMU's emulator: slower, the same guest). */
export function accelerator(): 'kvm' | 'tcg' {
  try {
    accessSync('/dev/kvm', constants.R_OK | constants.W_OK);
    return 'kvm';
  } catch {
    return 'tcg';
  }
}

// ---------------------------------------------------------------- initramfs

/** One entry of a newc cpio archive (what the kernel unpacks as its initramfs). */
interface CpioEntry {
  name: string;
  mode: number;
  data?: Buffer;
}

function cpio(entries: CpioEntry[]): Buffer {
  const parts: Buffer[] = [];
  const pad = (n: number) => Buffer.alloc((4 - (n % 4)) % 4);
  let ino = 1;
  for (const e of [...entries, { name: 'TRAILER!!!', mode: 0 }]) {
    const data = 'data' in e && e.data ? e.data : Buffer.alloc(0);
    const name = Buffer.from(`${e.name}\0`);
    const fields = [ino++, e.mode, 0, 0, 1, 0, data.length, 0, 0, 0, 0, name.length, 0];
    const header = Buffer.from(`070701${fields.map((f) => f.toString(16).padStart(8, '0')).join('')}`);
    parts.push(header, name, pad(header.length + name.length), data, pad(data.length));
  }
  return Buffer.concat(parts);
}

const INIT = `#!/bin/busybox sh
/bin/busybox mkdir -p /proc /sys /dev /tmp /etc /usr/bin /usr/sbin /sbin
/bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in $(cat /lib/modules/order); do insmod /lib/modules/$m.ko || dmesg | tail -3; done
ip link set lo up
for i in /sys/class/net/eth*; do ip link set \${i##*/} up; done
stty -echo -F /dev/ttyS0 2>/dev/null
echo TCPIP_TS_GUEST_READY >/dev/ttyS0
exec setsid sh -c 'exec sh </dev/ttyS0 >/dev/ttyS0 2>&1'
`;

// udhcpc calls this with the lease in its environment.
const UDHCPC_SCRIPT = `#!/bin/sh
case "$1" in
  bound|renew)
    ip addr flush dev "$interface"
    ip addr add "$ip/$mask" dev "$interface"
    [ -n "$mtu" ] && ip link set "$interface" mtu "$mtu"
    [ -n "$router" ] && ip route replace default via "\${router%% *}" dev "$interface"
    : > /etc/resolv.conf
    for d in $dns; do echo "nameserver $d" >> /etc/resolv.conf; done
    echo "LEASE $ip/$mask router $router dns $dns mtu $mtu"
    ;;
esac
exit 0
`;

export interface GuestFiles {
  kernel: string;
  initrd: string;
}

/** The kernel (downloaded once) and the initramfs (built once per content), under ~/.cache/tcpip-ts. */
export function guestFiles(root: string): GuestFiles {
  const r = spawnSync('bash', [join(root, 'scripts/fetch-guest-kernel.sh')], { encoding: 'utf8', timeout: 300_000 });
  if (r.status !== 0) throw new Error(`scripts/fetch-guest-kernel.sh failed: ${r.stderr.trim().split('\n').pop()}`);
  const dir = r.stdout.trim();
  const order = MODULES;
  const entries: CpioEntry[] = [
    { name: 'bin', mode: 0o40755 },
    { name: 'bin/busybox', mode: 0o100755, data: readFileSync(BUSYBOX) },
    { name: 'init', mode: 0o100755, data: Buffer.from(INIT) },
    { name: 'etc', mode: 0o40755 },
    { name: 'etc/udhcpc.script', mode: 0o100755, data: Buffer.from(UDHCPC_SCRIPT) },
    { name: 'lib', mode: 0o40755 },
    { name: 'lib/modules', mode: 0o40755 },
    { name: 'lib/modules/order', mode: 0o100644, data: Buffer.from(order.join('\n')) },
    ...order.map((m) => ({ name: `lib/modules/${m}.ko`, mode: 0o100644, data: readFileSync(join(dir, 'modules', `${m}.ko`)) })),
  ];
  const archive = cpio(entries);
  const cache = join(process.env.TCPIP_TS_CACHE ?? join(homedir(), '.cache/tcpip-ts'), 'qemu-guest');
  mkdirSync(cache, { recursive: true });
  const initrd = join(cache, `initrd-${createHash('sha256').update(archive).digest('hex').slice(0, 16)}.cpio`);
  if (!existsSync(initrd)) {
    writeFileSync(`${initrd}.part`, archive);
    renameSync(`${initrd}.part`, initrd);
  }
  return { kernel: join(dir, 'vmlinuz'), initrd };
}

// ---------------------------------------------------------------- the guest

export interface GuestOptions {
  files: GuestFiles;
  /** -netdev arguments, one per NIC (without id=), e.g. 'stream,server=off,addr.type=unix,addr.path=/x'. */
  netdevs: string[];
  /** MACs of the NICs, in order. */
  macs: string[];
  /** virtio-net's host_mtu (the guest's MTU limit). Default 1500. */
  mtu?: number;
  /** Sockets handed to QEMU as fds 3, 4, ... (what socket_vmnet_client does for `-netdev socket,fd=3`). */
  fds?: Socket[];
  memoryMiB?: number;
}

/** A running guest whose serial console is a shell. */
export class Guest {
  readonly process: ChildProcess;
  #out = '';
  #seq = 0;
  #exited: Promise<number | null>;
  readonly accel = accelerator();

  constructor(options: GuestOptions) {
    const args = [
      '-accel', this.accel, '-m', String(options.memoryMiB ?? 256), '-smp', '1',
      '-nodefaults', '-no-user-config', '-display', 'none', '-serial', 'stdio', '-no-reboot',
      '-kernel', options.files.kernel, '-initrd', options.files.initrd,
      '-append', 'console=ttyS0 quiet loglevel=1 panic=-1 ipv6.disable=0 net.ifnames=0',
    ];
    if (this.accel === 'kvm') args.push('-cpu', 'host');
    options.netdevs.forEach((nd, i) => {
      const mtu = options.mtu ?? 1500;
      args.push('-netdev', `${nd},id=n${i}`,
        '-device', `virtio-net-pci,netdev=n${i},mac=${options.macs[i]},romfile=${mtu > 1500 ? `,host_mtu=${mtu}` : ''}`);
    });
    this.process = spawn(QEMU, args, { stdio: ['pipe', 'pipe', 'pipe', ...(options.fds ?? [])] });
    this.process.stdout!.on('data', (d: Buffer) => (this.#out += d.toString('latin1')));
    this.process.stderr!.on('data', (d: Buffer) => (this.#out += d.toString('latin1')));
    this.#exited = new Promise((resolve) => this.process.once('exit', (code) => resolve(code)));
  }

  /** Everything the console printed (for failure messages). */
  get output(): string {
    return this.#out;
  }

  get exited(): Promise<number | null> {
    return this.#exited;
  }

  async #waitFor(re: RegExp, ms: number, what: string, from = 0): Promise<RegExpExecArray> {
    const until = Date.now() + ms;
    for (;;) {
      const m = re.exec(this.#out.slice(from));
      if (m) return m;
      if (this.process.exitCode !== null) throw new Error(`guest exited (${this.process.exitCode}) waiting for ${what}:\n${this.#out.slice(-3000)}`);
      if (Date.now() > until) throw new Error(`timed out after ${ms} ms waiting for ${what}:\n${this.#out.slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Resolves once init has brought the NICs up and the shell listens. */
  async booted(ms = 90_000): Promise<void> {
    await this.#waitFor(/TCPIP_TS_GUEST_READY/, ms, 'the guest to boot');
  }

  /** Runs a shell command in the guest; resolves with its exit status and output. */
  async run(command: string, ms = 30_000): Promise<{ rc: number; out: string }> {
    const n = ++this.#seq;
    const from = this.#out.length;
    // The marker's digits come from the shell, so an echoed command line never matches it.
    this.process.stdin!.write(`${command}; echo "@@END${n}@@ $?"\n`);
    const m = await this.#waitFor(new RegExp(`([\\s\\S]*?)@@END${n}@@ (\\d+)`), ms, `\`${command}\``, from);
    return { rc: Number(m[2]), out: m[1]! };
  }

  /** As run(), but a non-zero status throws with the output. */
  async ok(command: string, ms = 30_000): Promise<string> {
    const r = await this.run(command, ms);
    if (r.rc !== 0) throw new Error(`guest: \`${command}\` exited ${r.rc}:\n${r.out}`);
    return r.out;
  }

  /** Kills QEMU at once (SIGKILL: the VM vanishes, as when a runtime's process dies). */
  async kill(): Promise<void> {
    if (this.process.exitCode === null) this.process.kill('SIGKILL');
    await this.#exited;
  }
}
