#!/usr/bin/env bash
# The real peers the device tests talk to, installed when missing (Debian):
# the kernel's own tools (ip, ping, ss), curl, python3's http.server, netcat,
# tcpdump (reads our pcap files), a C compiler (the SYN flooder), busybox's udhcpd/udhcpc (a stock DHCP server
# and client, from busybox-static), dnsmasq (the DNS server behind the gateway tests' host) and
# qemu-user with an arm64 runtime (the arm64 prebuild's smoke test) and slirp4netns
# (the reference the slirp4netns-compatible command is tested against), and
# qemu-system-x86 for the QEMU guest test.
# Without root the device tests skip with a printed reason, so nothing is
# installed then.
set -euo pipefail

[ "$(id -u)" = 0 ] || exit 0
need=()
command -v ip >/dev/null || need+=(iproute2)
command -v ss >/dev/null || need+=(iproute2)
command -v ping >/dev/null || need+=(iputils-ping)
command -v curl >/dev/null || need+=(curl)
command -v nc >/dev/null || need+=(netcat-openbsd)
command -v slirp4netns >/dev/null || need+=(slirp4netns)
command -v tcpdump >/dev/null || need+=(tcpdump)
# vxlan.test.ts turns a veth's checksum offload off (inner TCP checksums
# would reach our UDP socket unfinished).
command -v ethtool >/dev/null || need+=(ethtool)
# iptables: the loss tests drop frames at random on the kernel side (statistic match) where the kernel has no netem
command -v iptables >/dev/null || need+=(iptables)
command -v python3 >/dev/null || need+=(python3)
# test/synflood.test.ts compiles its raw-socket SYN flooder (test/support/synflood.c).
command -v cc >/dev/null || need+=(gcc libc6-dev)
[ -x /usr/sbin/dnsmasq ] || need+=(dnsmasq-base)
# The packaging test runs the arm64 prebuild in an arm64 Node under qemu-user
# (Node's binary needs Debian's arm64 libc and libstdc++ as its sysroot).
command -v qemu-aarch64 >/dev/null || need+=(qemu-user)
[ -f /usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1 ] || need+=(libc6-arm64-cross)
[ -f /usr/aarch64-linux-gnu/lib/libstdc++.so.6 ] || need+=(libstdc++6-arm64-cross)
command -v podman >/dev/null || need+=(podman)
command -v runc >/dev/null || need+=(runc)
command -v conmon >/dev/null || need+=(conmon)
[ -x /usr/libexec/podman/catatonit ] || command -v catatonit >/dev/null || need+=(catatonit)
command -v rootlesskit >/dev/null || need+=(rootlesskit)
command -v newuidmap >/dev/null || need+=(uidmap)
# busybox-static gives both the udhcpd/udhcpc the DHCP tests run and the
# static binary the QEMU guest's initramfs needs; it conflicts with Debian's
# dynamic busybox (asking apt for both fails on a fresh machine), and replaces
# it where that is installed.
dpkg -s busybox-static >/dev/null 2>&1 || need+=(busybox-static)
# vxlan.test.ts runs its own ovsdb-server and ovs-vswitchd (userspace datapath)
# in a namespace; the package's own service must not start on this host.
command -v ovs-vswitchd >/dev/null || need+=(openvswitch-switch)
# test/qemu.test.ts boots a real guest (its kernel comes from
# scripts/fetch-guest-kernel.sh, its initramfs from busybox-static).
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
if [ ${#need[@]} -gt 0 ]; then
  echo "test-deps: installing ${need[*]}" >&2
  apt-get update -qq >&2
  # No service the packages bring is started by the install (policy-rc.d
  # 101: "action forbidden"), unless this host already has a policy.
  made_policy=
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    made_policy=1
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >&2
  [ -z "$made_policy" ] || { rm -f /usr/sbin/policy-rc.d; trap - EXIT; }
fi
