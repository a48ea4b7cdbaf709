/**
 * Where the installed package lies, for the files it reads at run time (the
 * wasm module, the native addon, its own package.json).
 *
 * The same source builds the ES module (dist/) and the CommonJS build
 * (dist/cjs/); import.meta.url is the one expression CommonJS cannot parse, so
 * scripts/build-cjs.mjs replaces it there, in this file only, with the URL of
 * __filename (and fails if it finds it anywhere else). Since the two builds,
 * and src/ under vitest, sit at different depths, the root is found by
 * walking up to the package.json that names this package rather than by a
 * fixed '../..'.
 */
import { readFileSync } from 'node:fs';

const PACKAGE_NAME = 'tcpip-ts';
/** src/node, dist/node and dist/cjs/node are at most three levels below the root. */
const MAX_DEPTH = 4;

function findRoot(from: URL): URL {
  let dir = new URL('./', from);
  for (let i = 0; i < MAX_DEPTH; i++) {
    try {
      const pkg = JSON.parse(readFileSync(new URL('package.json', dir), 'utf8')) as { name?: unknown };
      if (pkg.name === PACKAGE_NAME) return dir;
    } catch {
      // No package.json here (or not one of ours, e.g. dist/cjs/package.json): go up.
    }
    dir = new URL('../', dir);
  }
  throw new Error(`tcpip-ts: cannot find the package's own package.json above ${from.href}; reinstall tcpip-ts`);
}

// @ts-ignore TS1343 in the CommonJS build, whose output gets __filename's URL here instead (scripts/build-cjs.mjs).
const HERE: string = import.meta.url;

/** The package's root directory as a file: URL ending in '/'. */
export const PACKAGE_ROOT: URL = findRoot(new URL(HERE));

/** The package's version, from its package.json. */
export function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('package.json', PACKAGE_ROOT), 'utf8')) as { version: string };
  return pkg.version;
}
