/**
 * The compiled lwIP module, shared by every stack (each stack still gets its
 * own instance and memory). Compiled once, lazily, on first use, from bytes
 * supplied by the platform layer (src/node/ reads them from disk) or by the
 * caller, so the core needs no file system.
 */

let source: (() => Uint8Array | WebAssembly.Module) | null = null;
let compiled: WebAssembly.Module | null = null;

/** Sets where the module comes from (bytes or an already compiled module). */
export function setModuleSource(load: () => Uint8Array | WebAssembly.Module): void {
  source = load;
  compiled = null;
}

export function getModule(): WebAssembly.Module {
  if (compiled) return compiled;
  if (!source) {
    throw new Error('tcpip-ts: no wasm module source; import "tcpip-ts" (Node) or call setModuleSource() first');
  }
  const loaded = source();
  compiled = loaded instanceof WebAssembly.Module ? loaded : new WebAssembly.Module(loaded as Uint8Array<ArrayBuffer>);
  return compiled;
}
