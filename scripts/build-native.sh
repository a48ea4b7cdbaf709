#!/usr/bin/env bash
# Builds native/build/Release/tcpip_native.node against the headers of the
# Node that runs it (Debian's node ships them in /usr/include/node), so
# node-gyp never downloads anything.
set -euo pipefail
cd "$(dirname "$0")/.."
nodedir=$(node -p "require('node:path').resolve(process.execPath, '..', '..')")
if [ ! -f "$nodedir/include/node/node_api.h" ]; then
  echo "build-native: no Node headers under $nodedir/include/node; install them (Debian: nodejs ships them) or set npm_config_nodedir" >&2
  exit 1
fi
exec npx node-gyp rebuild -C native --nodedir="$nodedir" --loglevel=warn "$@"
