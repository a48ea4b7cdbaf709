#!/usr/bin/env bash
# Prints the path of a Node.js binary of the given major version and
# architecture, from npm's node-linux-<arch> package (the official binaries,
# the ones the `node` package installs), cached in $TCPIP_TS_CACHE/node
# (default ~/.cache/tcpip-ts/node). The packaging test runs the installed
# package under each supported Node, and under arm64 Node in qemu-user.
# `npm pack` rather than `npm install`: the package's os/cpu fields refuse an
# install on another architecture, and nothing of it is needed but bin/node.
#
# Usage: scripts/fetch-node.sh MAJOR [x64|arm64]
set -euo pipefail
major=${1:?usage: fetch-node.sh MAJOR [x64|arm64]}
arch=${2:-x64}
case "$arch" in x64|arm64) ;; *) echo "fetch-node: unknown architecture $arch (x64 or arm64)" >&2; exit 2 ;; esac
cache=${TCPIP_TS_CACHE:-$HOME/.cache/tcpip-ts}/node
dir="$cache/$major-$arch"
if [ ! -x "$dir/bin/node" ]; then
  mkdir -p "$cache"
  tmp=$(mktemp -d "$cache/.fetch.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && npm pack --silent "node-linux-$arch@$major" >/dev/null)
  tar -xzf "$tmp"/node-linux-*.tgz -C "$tmp"
  [ -x "$tmp/package/bin/node" ] || { echo "fetch-node: node-linux-$arch@$major has no bin/node" >&2; exit 1; }
  rm -rf "$dir"
  mv "$tmp/package" "$dir"
fi
echo "$dir/bin/node"
