#!/usr/bin/env bash
# The peers the gateway scenario compares tcpip-ts's gateway with, installed
# when missing (Debian): slirp4netns, pasta (package passt) and iperf3.
# Without root the scenario skips with a printed reason, so nothing is
# installed then. Called by bench/scenarios/gateway.js before it measures.
set -euo pipefail

[ "$(id -u)" = 0 ] || exit 0
need=()
command -v slirp4netns >/dev/null || need+=(slirp4netns)
command -v pasta >/dev/null || need+=(passt)
command -v iperf3 >/dev/null || need+=(iperf3)
command -v ip >/dev/null || need+=(iproute2)
command -v nsenter >/dev/null || need+=(util-linux)
if [ ${#need[@]} -gt 0 ]; then
  echo "bench-deps: installing ${need[*]}" >&2
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >&2
fi
