/** Points the core at the packaged wasm module on disk. */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { setModuleSource } from '../core/module.js';
import { PACKAGE_ROOT } from './package-root.js';

export const WASM_PATH = new URL('wasm/build/tcpip.wasm', PACKAGE_ROOT);

setModuleSource(() => {
  try {
    return readFileSync(WASM_PATH);
  } catch (err) {
    // In a checkout it is a build output; in an installed package it is always there.
    throw new Error(`tcpip-ts: cannot read ${fileURLToPath(WASM_PATH)}; in a checkout build it with "npm run build:wasm", otherwise reinstall tcpip-ts`, { cause: err });
  }
});
