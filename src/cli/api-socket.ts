/**
 * `tcpip-ts gateway --api-socket PATH`: port forwards added and removed at
 * run time over a Unix socket, in slirp4netns's API shape so that tools
 * written for it (RootlessKit's port driver, scripts using socat) work:
 *
 *   {"execute": "add_hostfwd", "arguments": {"proto": "tcp"|"udp",
 *      "host_addr"?: "127.0.0.1", "host_port": N, "guest_addr"?: A, "guest_port": N}}
 *        -> {"return": {"id": ID}}
 *   {"execute": "list_hostfwd"}
 *        -> {"return": {"entries": [{"id", "proto", "host_addr", "host_port", "guest_addr", "guest_port"}]}}
 *           (slirp4netns mode: {"entries": [...]}, unwrapped, as slirp4netns replies)
 *   {"execute": "remove_hostfwd", "arguments": {"id": ID}}
 *        -> {"return": {}}
 *   {"execute": "get_info"}
 *        -> {"return": {"net": {"mtu", "cidr", "ip", "gateway", "dns", ...}, ...}}
 *   anything else -> {"error": {"desc": "..."}}
 *
 * One request per connection: the reply is written and the connection
 * ended. A request is complete when the client half-closes or the bytes so
 * far parse as JSON, whichever comes first (clients differ in whether they
 * shut down their write side).
 */
import { rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { listenReplacingStale } from '../node/listen.js';
import type { Forward, ForwardOptions, Gateway } from '../gateway/gateway.js';

const MAX_REQUEST = 64 * 1024;

interface HostFwdEntry {
  id: number;
  proto: 'tcp' | 'udp';
  host_addr: string;
  host_port: number;
  guest_addr: string;
  guest_port: number;
}

type Reply = { return: unknown } | { entries: HostFwdEntry[] } | { error: { desc: string } };

/** The forwards table behind the socket: ids are handed out in order, never reused. */
export class HostForwardApi {
  readonly #entries = new Map<number, Forward>();
  #nextId = 1;

  /**
   * `defaultHostAddr` is the host address of an add_hostfwd that names none
   * (slirp4netns's is 0.0.0.0; the gateway's own command keeps 127.0.0.1);
   * `info` is get_info's reply. `bareList`: list_hostfwd answers
   * {"entries": [...]} without the "return" wrapper, as slirp4netns 1.2
   * really does (its api.c), for clients written against it.
   */
  constructor(
    readonly gateway: Gateway,
    readonly options: { defaultHostAddr?: string; info?: () => Record<string, unknown>; bareList?: boolean } = {},
  ) {}

  /** Registers a forward made elsewhere (the -p flags) so that list/remove see it. */
  adopt(forward: Forward): number {
    const id = this.#nextId++;
    this.#entries.set(id, forward);
    return id;
  }

  async handle(request: unknown): Promise<Reply> {
    if (request === null || typeof request !== 'object' || Array.isArray(request)) return failure('request must be a JSON object');
    const { execute, arguments: args } = request as { execute?: unknown; arguments?: unknown };
    try {
      switch (execute) {
        case 'add_hostfwd':
          return { return: { id: await this.#add(args) } };
        case 'list_hostfwd': {
          const entries = [...this.#entries].map(([id, f]) => entry(id, f));
          return this.options.bareList ? { entries } : { return: { entries } };
        }
        case 'remove_hostfwd':
          return this.#remove(args);
        case 'get_info':
          return { return: this.options.info?.() ?? {} };
        default:
          return failure(`unknown command ${JSON.stringify(execute)}: expected add_hostfwd, list_hostfwd, remove_hostfwd or get_info`);
      }
    } catch (err) {
      return failure(err instanceof Error ? err.message : String(err));
    }
  }

  async #add(args: unknown): Promise<number> {
    if (args === null || typeof args !== 'object') throw new Error('add_hostfwd needs "arguments": {proto, host_port, guest_port}');
    const a = args as Record<string, unknown>;
    const proto = a.proto ?? 'tcp';
    if (proto !== 'tcp' && proto !== 'udp') throw new Error(`"proto" must be "tcp" or "udp", got ${JSON.stringify(proto)}`);
    const options: ForwardOptions = {
      protocol: proto,
      hostPort: a.host_port as number,
      guestPort: a.guest_port as number,
      // slirp4netns's default host_addr is 0.0.0.0; ours stays 127.0.0.1
      // unless asked, so a forward is never exposed beyond the host by accident.
      hostAddress: a.host_addr === undefined || a.host_addr === '' ? this.options.defaultHostAddr : (a.host_addr as string),
      guestAddress: a.guest_addr === undefined || a.guest_addr === '' ? undefined : (a.guest_addr as string),
    };
    return this.adopt(await this.gateway.addForward(options));
  }

  #remove(args: unknown): Reply {
    const id = (args as { id?: unknown } | null)?.id;
    if (!Number.isInteger(id)) return failure('remove_hostfwd needs "arguments": {"id": ID}');
    const forward = this.#entries.get(id as number);
    if (!forward) return failure(`no forward with id ${id}`);
    this.#entries.delete(id as number);
    this.gateway.removeForward(forward);
    return { return: {} };
  }
}

function entry(id: number, f: Forward): HostFwdEntry {
  return { id, proto: f.protocol, host_addr: f.hostAddress, host_port: f.hostPort, guest_addr: f.guestAddress, guest_port: f.guestPort };
}

function failure(desc: string): Reply {
  return { error: { desc } };
}

/**
 * Serves `api` on a Unix socket at `path`; resolves once listening. close()
 * removes the file. A socket file nobody accepts on (a stopped instance's)
 * is replaced; one that another process serves is refused with EADDRINUSE,
 * and anything else at the path (a regular file) is left alone, refused.
 */
export async function serveApiSocket(path: string, api: HostForwardApi): Promise<{ close(): void }> {
  const server: Server = createServer({ allowHalfOpen: true }, (conn) => serveOne(conn, api));
  await listenReplacingStale(server, { path });
  return {
    close() {
      server.close();
      rmSync(path, { force: true });
    },
  };
}

function serveOne(conn: Socket, api: HostForwardApi): void {
  let text = '';
  let answered = false;
  const answer = (request: unknown) => {
    answered = true;
    conn.removeAllListeners('data');
    void api.handle(request).then((reply) => conn.end(`${JSON.stringify(reply)}\n`));
  };
  const tryParse = (final: boolean) => {
    if (answered) return;
    let request: unknown;
    try {
      request = JSON.parse(text);
    } catch {
      if (final) {
        answered = true;
        conn.end(`${JSON.stringify(failure('request is not valid JSON'))}\n`);
      }
      return;
    }
    answer(request);
  };
  conn.setEncoding('utf8');
  conn.on('data', (chunk: string) => {
    text += chunk;
    if (text.length > MAX_REQUEST) {
      answered = true;
      conn.end(`${JSON.stringify(failure(`request longer than ${MAX_REQUEST} bytes`))}\n`);
      return;
    }
    tryParse(false);
  });
  conn.on('end', () => tryParse(true));
  conn.on('error', () => conn.destroy());
}
