/**
 * What both front ends (`tcpip-ts gateway` and the slirp4netns command) check
 * the same way. It imports nothing heavy: the slirp4netns command answers
 * --help, which podman runs before every container, without loading the
 * gateway.
 */
/** A mistake on the command line: one line on stderr, exit 2. */
export class UsageError extends Error {}

/** A name the kernel takes for an interface (IFNAMSIZ - 1 bytes, no '/', not '.' or '..'). `what` names it in the error. */
export function checkTapName(tap: string, what: string): void {
  if (!/^[A-Za-z0-9_.-]{1,15}$/.test(tap) || tap === '.' || tap === '..') {
    throw new UsageError(`${what} must be an interface name of 1-15 letters, digits, '_', '.' or '-', got ${JSON.stringify(tap)}`);
  }
}

/**
 * The API socket's path must be a path; what is there already is looked at
 * when binding (serveApiSocket): a stale socket is replaced, as slirp4netns
 * replaces it (its --enable-sandbox leaves the file behind, and so does
 * ours, so a runtime restarting a container finds one), a live one refused.
 */
export function checkApiSocketPath(path: string | undefined): void {
  if (path === '') throw new UsageError('--api-socket must be a path');
}
