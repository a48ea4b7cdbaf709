#!/usr/bin/env bash
# The QEMU test's guest kernel (test/qemu.test.ts): Debian's linux-image-amd64
# (the version apt has), downloaded with `apt-get download` and unpacked with
# dpkg-deb; only vmlinuz and the virtio-net modules are kept, in
# ~/.cache/tcpip-ts/qemu-guest/PACKAGE/ (TCPIP_TS_CACHE moves ~/.cache/tcpip-ts),
# so later runs download nothing. Prints that directory.
set -euo pipefail

cache=${TCPIP_TS_CACHE:-$HOME/.cache/tcpip-ts}/qemu-guest
pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
if [ -z "$pkg" ]; then
  # Offline, or apt's lists are gone: any kernel fetched before will do.
  dir=$(ls -d "$cache"/linux-image-* 2>/dev/null | tail -1 || true)
  [ -n "$dir" ] && [ -f "$dir/vmlinuz" ] && { echo "$dir"; exit 0; }
  echo "fetch-guest-kernel: apt knows no linux-image-amd64; run apt-get update" >&2
  exit 1
fi
dir=$cache/$pkg
# What virtio-net needs (the test's initramfs loads them in its own order).
modules=(virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci failover net_failover virtio_net)
if [ ! -f "$dir/vmlinuz" ]; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  chmod 755 "$tmp" # apt's _apt user downloads into it
  (cd "$tmp" && apt-get download -q "$pkg" >&2)
  dpkg-deb -x "$tmp"/*.deb "$tmp/x"
  rm -rf "$dir.part"
  mkdir -p "$dir.part/modules"
  cp "$tmp"/x/boot/vmlinuz-* "$dir.part/vmlinuz"
  for m in "${modules[@]}"; do
    ko=$(find "$tmp/x/lib/modules" -name "$m.ko" | head -1)
    [ -n "$ko" ] || { echo "fetch-guest-kernel: $pkg has no $m.ko" >&2; exit 1; }
    cp "$ko" "$dir.part/modules/"
  done
  rm -rf "$dir"
  mv "$dir.part" "$dir"
fi
echo "$dir"
