#!/usr/bin/env bash
# Builds the prebuilt addon binaries the package ships, for Linux on x64 and
# arm64 (glibc), with prebuildify against Node-API (NAPI_VERSION in
# native/binding.gyp), so one file serves every Node from 20 on:
#   native/prebuilds/linux-x64/tcpip-ts.glibc.node
#   native/prebuilds/linux-arm64/tcpip-ts.glibc.node
# node-gyp-build picks them at run time (src/node/native.ts).
#
# Both are compiled with clang-16 (the compiler setup.sh already installs for
# the wasm build); arm64 is cross-compiled against Debian's arm64 cross
# sysroot (/usr/aarch64-linux-gnu: libc6-dev-arm64-cross, the kernel headers
# of linux-libc-dev-arm64-cross, crtbeginS.o and libgcc from
# libgcc-12-dev-arm64-cross) and linked with lld. The apt packages are
# installed when missing. Node's headers are the running Node's (Debian's
# nodejs ships them), so nothing is downloaded; Node-API's headers are the
# same for every Node and every architecture.
#
# Each build runs in a copy of native/ so that the local build in
# native/build (what the tests use) is left alone.
#
# Usage: scripts/build-prebuilds.sh [x64] [arm64]   (default: both)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
arches=("$@")
[ ${#arches[@]} -gt 0 ] || arches=(x64 arm64)

if [ "$(uname -s)" != Linux ]; then
  echo "build-prebuilds: the prebuilt binaries are built on Linux (this is $(uname -s))" >&2
  exit 1
fi

need=()
command -v clang-16 >/dev/null || need+=(clang-16)
command -v ld.lld-16 >/dev/null || need+=(lld-16)
command -v llvm-strip-16 >/dev/null || need+=(llvm-16)
command -v make >/dev/null || need+=(make)
command -v python3 >/dev/null || need+=(python3)
for arch in "${arches[@]}"; do
  if [ "$arch" = arm64 ]; then
    [ -f /usr/aarch64-linux-gnu/include/stdio.h ] || need+=(libc6-dev-arm64-cross)
    [ -f /usr/aarch64-linux-gnu/include/linux/if_tun.h ] || need+=(linux-libc-dev-arm64-cross)
    ls /usr/lib/gcc-cross/aarch64-linux-gnu/*/crtbeginS.o >/dev/null 2>&1 || need+=(libgcc-12-dev-arm64-cross)
  fi
done
if [ ${#need[@]} -gt 0 ]; then
  echo "build-prebuilds: installing ${need[*]} with apt" >&2
  if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
  $sudo apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >&2
fi

nodedir=$(node -p "require('node:path').resolve(process.execPath, '..', '..')")
if [ ! -f "$nodedir/include/node/node_api.h" ]; then
  echo "build-prebuilds: no Node headers under $nodedir/include/node; install them (Debian: nodejs ships them) or set npm_config_nodedir" >&2
  exit 1
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for arch in "${arches[@]}"; do
  case "$arch" in
    x64) triple=x86_64-linux-gnu ;;
    arm64) triple=aarch64-linux-gnu ;;
    *) echo "build-prebuilds: unknown architecture $arch (x64 or arm64)" >&2; exit 2 ;;
  esac
  dir="$work/$arch"
  mkdir -p "$dir"
  cp -r native/binding.gyp native/src "$dir/"
  # prebuildify names the file after the package and its libc (tcpip-ts.glibc.node).
  echo '{"name":"tcpip-ts","private":true}' > "$dir/package.json"
  cc="clang-16 --target=$triple"
  # gyp links with $(LINK) (g++ by default); clang's own driver and lld link
  # for the target architecture.
  CC="$cc" CXX="$cc" LINK="$cc -fuse-ld=lld" npm_config_nodedir="$nodedir" \
    "$root/node_modules/.bin/prebuildify" --cwd "$dir" --napi --tag-libc --arch "$arch" --platform linux \
    --node-gyp "$root/node_modules/.bin/node-gyp" --strip --strip-bin llvm-strip-16 --quiet
  rm -rf "native/prebuilds/linux-$arch"
  mkdir -p native/prebuilds
  cp -r "$dir/prebuilds/linux-$arch" native/prebuilds/
  for f in native/prebuilds/linux-$arch/*.node; do
    echo "build-prebuilds: $f ($(stat -c %s "$f") bytes)" >&2
  done
done
