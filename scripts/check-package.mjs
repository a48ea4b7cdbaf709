#!/usr/bin/env node
// Checks a package tarball for the files it must have, and fails (exit 1,
// one line per problem) when one is missing:
// - every file package.json names: main, types, bin, each exports target,
//   each typesVersions target;
// - what the loaders open: wasm/build/tcpip.wasm (src/node/load.ts), a
//   prebuilt addon for each platform src/node/native.ts promises
//   (PREBUILT_PLATFORMS), and, for the install script's build from source,
//   native/binding.gyp and every source file it lists;
// - the licences: LICENSE, and lwIP's beside tcpip.wasm;
// - every relative import in the shipped .js and .d.ts files;
// and no source maps (src/ is not shipped, so they would point nowhere).
//
// Usage: check-package.mjs [TARBALL]   without one it packs the tree as it
// is (npm pack --ignore-scripts, so from prepack too) and checks that.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, normalize, posix } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'tcpip-ts-check-'));
try {
  let tarball = process.argv[2];
  if (!tarball) {
    const out = execFileSync('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', work], { cwd: root, encoding: 'utf8' });
    tarball = join(work, JSON.parse(out)[0].filename);
  }
  execFileSync('tar', ['-xzf', tarball, '-C', work]);
  const problems = check(join(work, 'package'));
  if (problems.length) {
    for (const p of problems.slice(0, 20)) process.stderr.write(`check-package: ${p}\n`);
    if (problems.length > 20) process.stderr.write(`check-package: and ${problems.length - 20} more\n`);
    process.exit(1);
  }
  process.stdout.write(`check-package: ${tarball.startsWith(work) ? 'the packed tree' : tarball} has every file it names\n`);
} finally {
  rmSync(work, { recursive: true, force: true });
}

function listFiles(dir, prefix = '') {
  const files = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const rel = prefix ? `${prefix}/${e.name}` : e.name;
    if (e.isDirectory()) files.push(...listFiles(join(dir, e.name), rel));
    else files.push(rel);
  }
  return files;
}

function leaves(value, out = []) {
  if (typeof value === 'string') out.push(value);
  else if (Array.isArray(value)) value.forEach((v) => leaves(v, out));
  else if (value && typeof value === 'object') Object.values(value).forEach((v) => leaves(v, out));
  return out;
}

function check(pkgDir) {
  const files = new Set(listFiles(pkgDir));
  const problems = [];
  const need = (path, why) => {
    const rel = posix.normalize(path.replace(/^\.\//, ''));
    if (!files.has(rel)) problems.push(`missing ${rel} (${why})`);
  };
  const pkg = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8'));
  if (pkg.main) need(pkg.main, 'package.json main');
  if (pkg.types) need(pkg.types, 'package.json types');
  for (const [name, path] of Object.entries(typeof pkg.bin === 'string' ? { [pkg.name]: pkg.bin } : pkg.bin ?? {})) need(path, `bin ${name}`);
  for (const [subpath, target] of Object.entries(pkg.exports ?? {})) for (const t of leaves(target)) need(t, `exports["${subpath}"]`);
  for (const targets of Object.values(pkg.typesVersions ?? {})) for (const t of leaves(targets)) need(t, 'typesVersions');

  need('dist/cjs/package.json', 'marks dist/cjs as CommonJS for Node and TypeScript');
  need('dist/cli/slirp4netns-usage.txt', 'bin/tcpip-ts-slirp4netns answers --help from it');
  need('bin/tcpip-ts-slirp4netns.js', 'bin/tcpip-ts-slirp4netns hands everything but --help to it');
  need('wasm/build/tcpip.wasm', 'read by src/node/load.ts');
  const native = readFileSync(join(root, 'src/node/native.ts'), 'utf8');
  const platforms = native.match(/PREBUILT_PLATFORMS[^=]*=\s*\[([^\]]*)\]/)?.[1].match(/'[^']+'/g)?.map((s) => s.slice(1, -1));
  if (!platforms?.length) problems.push('cannot read PREBUILT_PLATFORMS from src/node/native.ts');
  for (const platform of platforms ?? []) {
    if (![...files].some((f) => f.startsWith(`native/prebuilds/${platform}/`) && f.endsWith('.node'))) {
      problems.push(`missing native/prebuilds/${platform}/*.node (src/node/native.ts promises a prebuilt binary for ${platform})`);
    }
  }
  need('native/binding.gyp', 'the install script builds from it where no prebuilt binary fits');
  const gyp = readFileSync(join(pkgDir, 'native/binding.gyp'), 'utf8');
  for (const [, src] of gyp.matchAll(/"(src\/[^"]+\.[ch])"/g)) need(`native/${src}`, 'listed in native/binding.gyp');
  need('LICENSE', 'the project licence');
  need('wasm/build/LICENSE-lwip.txt', "lwIP's licence, which must travel with tcpip.wasm");
  need('README.md', 'the documentation');

  for (const file of files) {
    if (file.endsWith('.map')) problems.push(`${file} is a source map, and src/ is not shipped`);
    if (!/\.(js|d\.ts)$/.test(file)) continue;
    const text = readFileSync(join(pkgDir, file), 'utf8');
    if (/^\/\/# sourceMappingURL=/m.test(text)) problems.push(`${file} names a source map, and none is shipped`);
    const specifiers = [...text.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|\brequire\s*\(\s*|^\s*import\s+)['"](\.{1,2}\/[^'"]+)['"]/gm)].map((m) => m[1]);
    for (const spec of specifiers) {
      const target = normalize(join(dirname(file), spec)).split('\\').join('/');
      const candidates = file.endsWith('.d.ts') ? [target.replace(/\.js$/, '.d.ts'), `${target}.d.ts`, target] : [target];
      if (!candidates.some((c) => files.has(c))) problems.push(`${file} imports ${spec}, which is not in the package`);
    }
  }
  // Catch a package.json "files" list that drops half a directory.
  for (const dir of ['dist', 'dist/cjs']) {
    try {
      statSync(join(pkgDir, dir));
    } catch {
      problems.push(`missing ${dir}/`);
    }
  }
  return problems;
}
