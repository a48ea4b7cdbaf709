/**
 * Network namespaces made by a test and removed after it (also on failure,
 * and on process exit), so device tests talk only to hosts they created.
 */
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';

const run = promisify(execFile);

export const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;

/** Why device tests cannot run here, or null when they can. */
export function deviceTestsUnavailable(): string | null {
  if (!isRoot) return 'device tests need root (TAP devices and network namespaces); run as root to include them';
  return null;
}

const live = new Set<Netns>();
process.on('exit', () => {
  for (const ns of live) {
    try {
      // Last resort for a crashed test: synchronous, best effort.
      execFileSync('ip', ['netns', 'delete', ns.name], { stdio: 'ignore' });
    } catch {
      /* already gone */
    }
  }
});

export class Netns {
  readonly path: string;
  #children = new Set<ChildProcess>();

  private constructor(readonly name: string) {
    this.path = `/run/netns/${name}`;
  }

  static async create(prefix = 'tt'): Promise<Netns> {
    const name = `${prefix}-${randomBytes(3).toString('hex')}`;
    await run('ip', ['netns', 'add', name]);
    const ns = new Netns(name);
    live.add(ns);
    await ns.exec('ip', ['link', 'set', 'lo', 'up']);
    return ns;
  }

  /** Runs a command inside the namespace; resolves with its stdout. */
  async exec(cmd: string, args: string[], options: { timeout?: number; input?: string } = {}): Promise<string> {
    const { stdout } = await run('ip', ['netns', 'exec', this.name, cmd, ...args], {
      timeout: options.timeout ?? 60_000,
      maxBuffer: 64 * 1024 * 1024,
    });
    return stdout;
  }

  /** Starts a long-running process inside the namespace (killed on delete). */
  spawn(cmd: string, args: string[]): ChildProcess {
    const child = spawn('ip', ['netns', 'exec', this.name, cmd, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.#children.add(child);
    child.on('exit', () => this.#children.delete(child));
    return child;
  }

  async delete(): Promise<void> {
    for (const child of this.#children) child.kill('SIGKILL');
    this.#children.clear();
    live.delete(this);
    await run('ip', ['netns', 'delete', this.name]).catch(() => undefined);
  }
}

/** Resolves once `probe` succeeds, polling every 50 ms up to `ms`. */
export async function waitFor(probe: () => Promise<boolean> | boolean, ms = 10_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await probe()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
