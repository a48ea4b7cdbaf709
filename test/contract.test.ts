import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { EXPORT_ARITY, IMPORT_ARITY } from '../src/core/abi.js';
import { WASM_PATH } from '../src/node/load.js';

describe('wasm contract', () => {
  const module = new WebAssembly.Module(readFileSync(WASM_PATH));

  it('exports exactly what src/core/abi.ts declares, with those parameter counts', () => {
    const exports = WebAssembly.Module.exports(module);
    const functions = exports.filter((e) => e.kind === 'function').map((e) => e.name).sort();
    expect(functions).toEqual(Object.keys(EXPORT_ARITY).sort());
    expect(exports.filter((e) => e.kind !== 'function').map((e) => `${e.kind}:${e.name}`).sort()).toEqual(['global:__heap_base', 'memory:memory']);

    const noop = () => 0;
    const imports = Object.fromEntries(Object.keys(IMPORT_ARITY).map((k) => [k, noop]));
    const instance = new WebAssembly.Instance(module, { tcpip: imports });
    for (const [name, arity] of Object.entries(EXPORT_ARITY)) {
      expect({ name, arity: (instance.exports[name] as (...a: unknown[]) => unknown).length }).toEqual({ name, arity });
    }
  });

  it('imports exactly what src/core/abi.ts declares', () => {
    const imports = WebAssembly.Module.imports(module);
    expect(imports.every((i) => i.module === 'tcpip' && i.kind === 'function')).toBe(true);
    expect(imports.map((i) => i.name).sort()).toEqual(Object.keys(IMPORT_ARITY).sort());
  });
});
