#!/usr/bin/env node
// Builds dist/cjs: the CommonJS face of the package, compiled by tsc from the
// same source as dist/ (one implementation; `require('tcpip-ts')` and
// `import 'tcpip-ts'` give the same API). Why a second build rather than
// require(esm): the package supports Node >= 20, and require() of an ES
// module is only unflagged from 20.19 and 22.12; and TypeScript's node16
// resolution cannot type a require of an ES module at all.
//
// After tsc it writes dist/cjs/package.json ({"type":"commonjs"}, so Node and
// TypeScript read the .js and .d.ts files there as CommonJS), and replaces
// import.meta.url, which CommonJS cannot parse, in src/node/package-root.ts's
// output by the URL of __filename. Any other import.meta left in dist/cjs is
// an error: it would be a SyntaxError at require() time.
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const out = join(root, 'dist', 'cjs');
const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');

function fail(message) {
  process.stderr.write(`build-cjs: ${message}\n`);
  process.exit(1);
}

// TS1343 (import.meta under module CommonJS) is expected in package-root.ts and silenced there.
execFileSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.cjs.json')], { stdio: 'inherit' });
writeFileSync(join(out, 'package.json'), '{\n  "type": "commonjs"\n}\n');

const rootFile = join(out, 'node', 'package-root.js');
const source = readFileSync(rootFile, 'utf8');
const HERE = /^const HERE = import\.meta\.url;$/m;
if (!HERE.test(source)) fail(`${rootFile} has no line "const HERE = import.meta.url;" to replace`);
writeFileSync(rootFile, source.replace(HERE, 'const HERE = require("node:url").pathToFileURL(__filename).href;'));

// Code lines only: comments may name it.
const usesImportMeta = (text) => text.split('\n').some((line) => line.includes('import.meta') && !/^\s*(\/\/|\/?\*)/.test(line));

for (const entry of readdirSync(out, { recursive: true, withFileTypes: true })) {
  if (!entry.isFile() || !entry.name.endsWith('.js')) continue;
  const file = join(entry.parentPath, entry.name);
  if (usesImportMeta(readFileSync(file, 'utf8'))) fail(`${file} uses import.meta, which CommonJS cannot parse; move it into src/node/package-root.ts`);
}
