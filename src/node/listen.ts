// Listening on a Unix socket path the way a restarted daemon expects: a
// socket file left by a process that is gone is replaced, a live one is not.

import { lstatSync, rmSync } from 'node:fs';
import { connect, type Server } from 'node:net';

/** Where a server listens: a Unix socket path, or a TCP port (host defaults to 127.0.0.1). */
export type ListenTarget = { path: string } | { port: number; host?: string };

/**
 * Listens `server` at `target`; resolves once it listens. At a Unix socket
 * path where listen(2) finds something: a socket file nobody accepts on (a
 * stopped instance's, as after a crash) is removed and the listen retried;
 * a socket another process serves rejects with EADDRINUSE; anything that is
 * not a socket (a regular file) is left alone and rejects with EEXIST. Other
 * errors reject as listen(2) gave them.
 */
export async function listenReplacingStale(server: Server, target: ListenTarget): Promise<void> {
  try {
    await listenOnce(server, target);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE' || !('path' in target)) throw err;
    const { path } = target;
    if (!lstatSync(path, { throwIfNoEntry: false })?.isSocket()) {
      throw Object.assign(new Error('something that is not a socket is there; remove it or choose another path'), { code: 'EEXIST' });
    }
    if (await accepts(path)) throw Object.assign(new Error('another process listens there'), { code: 'EADDRINUSE' });
    rmSync(path, { force: true });
    await listenOnce(server, target);
  }
}

function listenOnce(server: Server, target: ListenTarget): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onError = (err: Error) => {
      server.off('listening', onListening);
      reject(err);
    };
    const onListening = () => {
      server.off('error', onError);
      resolve();
    };
    server.once('error', onError);
    server.once('listening', onListening);
    if ('path' in target) server.listen(target.path);
    else server.listen(target.port, target.host ?? '127.0.0.1');
  });
}

/** Whether some process accepts connections on the Unix socket at path. */
function accepts(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = connect(path);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
}
