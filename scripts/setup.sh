#!/usr/bin/env bash
# Brings a checkout to a runnable state on Debian, installing only what is
# missing: clang/lld 16 (apt), lwIP's source (Debian source package, pinned),
# npm dependencies, then the wasm module, the native addon and the TypeScript build.
# Idempotent and quiet when there is nothing to do; `npm start` and `npm test`
# run it first.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: installing npm dependencies" >&2
  # --ignore-scripts: the package's own install script (the addon for users of
  # the package) is not for a checkout, where the lines below build everything.
  npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >&2
fi
bash wasm/build.sh >&2
native=native/build/Release/tcpip_native.node
if [ ! -f "$native" ] || [ -n "$(find native/src native/binding.gyp -newer "$native" -print -quit)" ]; then
  echo "setup: building the native addon" >&2
  bash scripts/build-native.sh >&2
fi
npx tsc -p tsconfig.json
# The slirp4netns launcher answers --help from this file, without Node.
node dist/cli/slirp4netns-main.js --help > dist/cli/slirp4netns-usage.txt
