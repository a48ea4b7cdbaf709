#!/usr/bin/env bash
# Builds wasm/build/tcpip.wasm. Installs clang/lld 16 through apt when they
# are missing, and fetches lwIP (fetch-lwip.sh) unless LWIP_SRC is set.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

if ! command -v clang-16 >/dev/null || ! command -v wasm-ld-16 >/dev/null; then
  echo "build: installing clang-16 and lld-16 with apt" >&2
  if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq clang-16 lld-16 >&2
fi

lwip=$(bash "$here/fetch-lwip.sh")
make -C "$here" -j"$(nproc)" --no-print-directory LWIP="$lwip" "$@"
# lwIP's licence (BSD) must travel with every copy of tcpip.wasm: the
# package ships this file beside it.
install -D -m 644 "$lwip/COPYING" "$here/build/LICENSE-lwip.txt"
