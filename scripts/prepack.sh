#!/usr/bin/env bash
# npm pack / npm publish run this first: it builds everything the tarball
# holds from a clean checkout (the wasm module and lwIP's licence, the
# prebuilt addons for linux-x64 and linux-arm64, the ES module and CommonJS
# builds without source maps), then checks that the package has every file
# that package.json, the loaders and the install script name.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -d node_modules ]; then
  echo "prepack: installing npm dependencies" >&2
  npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >&2
fi
bash wasm/build.sh >&2
bash scripts/build-prebuilds.sh >&2
rm -rf dist
node node_modules/typescript/bin/tsc -p tsconfig.build.json
node scripts/build-cjs.mjs
node dist/cli/slirp4netns-main.js --help > dist/cli/slirp4netns-usage.txt
node scripts/check-package.mjs >&2
