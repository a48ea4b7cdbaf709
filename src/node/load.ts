/** Points the core at the packaged wasm module on disk. */
import { readFileSync } from 'node:fs';
import { setModuleSource } from '../core/module.js';

export const WASM_PATH = new URL('../../wasm/build/tcpip.wasm', import.meta.url);

setModuleSource(() => {
  try {
    return readFileSync(WASM_PATH);
  } catch (err) {
    throw new Error(`tcpip-ts: cannot read ${WASM_PATH.pathname}; build it with "npm run build:wasm"`, { cause: err });
  }
});
