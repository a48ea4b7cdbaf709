/**
 * lwIP's err_t codes mapped to Node's error codes, in one table.
 *
 * Some codes depend on when they happen: a reset while connecting means the
 * port is closed (ECONNREFUSED), and an abort while connecting means the SYN
 * retransmissions ran out (ETIMEDOUT). Those are resolved by the caller
 * through `connecting`.
 */

export const ERR = {
  OK: 0, MEM: -1, BUF: -2, TIMEOUT: -3, RTE: -4, INPROGRESS: -5, VAL: -6, WOULDBLOCK: -7, USE: -8,
  ALREADY: -9, ISCONN: -10, CONN: -11, IF: -12, ABRT: -13, RST: -14, CLSD: -15, ARG: -16,
} as const;

const CODES: Record<number, string> = {
  [ERR.MEM]: 'ENOMEM',
  [ERR.BUF]: 'ENOBUFS',
  [ERR.TIMEOUT]: 'ETIMEDOUT',
  [ERR.RTE]: 'ENETUNREACH',
  [ERR.INPROGRESS]: 'EINPROGRESS',
  [ERR.VAL]: 'EINVAL',
  [ERR.WOULDBLOCK]: 'EWOULDBLOCK',
  [ERR.USE]: 'EADDRINUSE',
  [ERR.ALREADY]: 'EALREADY',
  [ERR.ISCONN]: 'EISCONN',
  [ERR.CONN]: 'ENOTCONN',
  [ERR.IF]: 'ENETDOWN',
  [ERR.ABRT]: 'ECONNABORTED',
  [ERR.RST]: 'ECONNRESET',
  [ERR.CLSD]: 'EPIPE',
  [ERR.ARG]: 'EINVAL',
};

/** The Node error code for an err_t, given whether a connect was in progress. */
export function errorCode(err: number, connecting = false): string {
  if (connecting && err === ERR.RST) return 'ECONNREFUSED';
  if (connecting && err === ERR.ABRT) return 'ETIMEDOUT';
  return CODES[err] ?? 'EIO';
}

export interface SystemError extends Error {
  code: string;
  syscall?: string;
  address?: string;
  port?: number;
}

/** An Error shaped like Node's system errors: `connect ECONNREFUSED 10.0.0.2:80`. */
export function systemError(code: string, syscall: string, address?: string, port?: number): SystemError {
  const where = address === undefined ? '' : port === undefined ? ` ${address}` : ` ${address.includes(':') ? `[${address}]` : address}:${port}`;
  const err = new Error(`${syscall} ${code}${where}`) as SystemError;
  err.code = code;
  err.syscall = syscall;
  if (address !== undefined) err.address = address;
  if (port !== undefined) err.port = port;
  return err;
}

export function lwipError(err: number, syscall: string, address?: string, port?: number, connecting = false): SystemError {
  return systemError(errorCode(err, connecting), syscall, address, port);
}

/** An error for a stack that has stopped (closed, or ended by a trap). */
export function stackClosedError(reason?: Error): SystemError {
  const err = new Error(reason ? `stack is closed: ${reason.message}` : 'stack is closed') as SystemError;
  err.code = 'ERR_STACK_CLOSED';
  return err;
}

/** TypeError naming the offending option, as Node does for bad arguments. */
export function invalidOption(name: string, expected: string, value: unknown): TypeError & { code: string } {
  let shown: string;
  try {
    shown = typeof value === 'string' ? `'${value}'` : typeof value === 'bigint' ? `${value}n` : JSON.stringify(value) ?? String(value);
  } catch {
    shown = String(value);
  }
  const err = new TypeError(`The "${name}" option must be ${expected}. Received ${shown}`) as TypeError & { code: string };
  err.code = 'ERR_INVALID_ARG_VALUE';
  return err;
}
