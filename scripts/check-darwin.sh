#!/usr/bin/env bash
# Checks that the addon's macOS sources compile for macOS (arm64 and x86_64)
# without a Mac: clang -fsyntax-only against native/test/darwin-sdk, headers
# written from Apple's vmnet/dispatch/XPC documentation, and the real
# node_api.h of the Node that runs this. It proves the C is well-formed and
# calls what those declarations say; it does not prove vmnet works on a Mac
# (untested there). Prints one line per target; exits non-zero on any error.
set -euo pipefail
cd "$(dirname "$0")/.."
clang=${CLANG:-clang-16}
if ! command -v "$clang" >/dev/null; then
  echo "check-darwin: $clang not found; run scripts/setup.sh (installs clang-16) or set CLANG" >&2
  exit 1
fi
nodedir=$(node -p "require('node:path').resolve(process.execPath, '..', '..')")
napi="$nodedir/include/node"
if [ ! -f "$napi/node_api.h" ]; then
  echo "check-darwin: no node_api.h under $napi; install Node's headers (Debian: nodejs ships them)" >&2
  exit 1
fi
# Only node_api.h and what it includes, so Linux's own uv.h and libc there are never picked up.
api=$(mktemp -d)
trap 'rm -rf "$api"' EXIT
cp "$napi"/node_api*.h "$napi"/js_native_api*.h "$api"/
# The files built on macOS (binding.gyp's 'mac' sources and the shared ones
# vmnet_darwin.c relies on); the POSIX device files are checked by the Linux build.
sources=(native/src/vmnet_darwin.c native/src/napi_class.c native/src/addon.c native/src/util.c)
for target in arm64-apple-macos13 x86_64-apple-macos13; do
  # -nostdlibinc: no host libc; clang's own stddef/stdint/stdbool/stdatomic/stdarg remain.
  "$clang" -target "$target" -fsyntax-only -fblocks -std=gnu11 -Wall -Wextra -Wno-unused-parameter -Werror \
    -nostdlibinc -isystem native/test/darwin-sdk -isystem "$api" -DNAPI_VERSION=8 "${sources[@]}"
  echo "check-darwin: ${sources[*]} compile for $target"
done
