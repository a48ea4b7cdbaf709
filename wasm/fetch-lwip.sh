#!/usr/bin/env bash
# Prints the path of an lwIP source tree, fetching and caching it when needed.
#
# lwIP is a build-time dependency and is never committed. Its source is:
#   1. $LWIP_SRC, when set (must contain src/include/lwip/init.h), copied into
#      the cache; or
#   2. Debian's `lwip` source package, downloaded with apt through a private apt
#      state directory (a deb-src entry of its own, so the system's sources are
#      untouched), its sha256 checked against the pins below, then unpacked with
#      Debian's patch series applied.
# Either way our own fixes (apply_fixes below) are applied to the cached copy.
# The cache is $TCPIP_TS_CACHE (default ~/.cache/tcpip-ts).
set -euo pipefail

# Bump when apply_fixes changes, so cached trees are rebuilt. The cache key
# also carries a hash of this script, so two branches that both bump FIXES
# (or a forgotten bump) never share a tree patched differently.
FIXES=5
# Larger changes live as our own unified diffs in wasm/patches/, applied in
# name order after the edits of apply_fixes; they are part of the key too.
patches_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/patches"
shopt -s nullglob
patch_files=("$patches_dir"/*.patch)
shopt -u nullglob
FIXES_KEY="$FIXES-$(cat "${BASH_SOURCE[0]}" ${patch_files[@]+"${patch_files[@]}"} | sha256sum | cut -c1-8)"

LWIP_VERSION=2.2.1
DEBIAN_SUITE=trixie
DEBIAN_VERSION=2.2.1+dfsg1-1+deb13u1
# sha256 of the files of Debian's source package, pinned.
ORIG_SHA256=83729c274c499d3348e9fbbe043a3113f3fa8953e7efddc7c21c7fcbb1f2b7b1
DEBIAN_SHA256=faa343b3c76d69080240ae1323932b7348fa1d0042f6ad29bd286246660720a9

log() { echo "fetch-lwip: $*" >&2; }

# 1. lwIP 2.2.1's ip4_forward() zeroes the IP, TCP, UDP and ICMP checksums of
# every forwarded packet whenever checksum *generation* is on (its test is
# inverted: it means to clear them only for interfaces that offload checksums
# to hardware), so a router stack would emit packets that every receiver
# drops. Clear them only when the outgoing interface offloads generation.
apply_fixes() {
  local file="$1/src/core/ipv4/ip4.c"
  local n
  n=$(grep -c 'if (CHECKSUM_GEN_[A-Z]* || NETIF_CHECKSUM_ENABLED(inp, NETIF_CHECKSUM_GEN_' "$file" || true)
  if [ "$n" != 4 ]; then
    log "expected 4 forwarding checksum tests in $file, found $n: lwIP changed, review apply_fixes"
    exit 1
  fi
  sed -i 's/if (CHECKSUM_GEN_\([A-Z]*\) || NETIF_CHECKSUM_ENABLED(inp, /if (!CHECKSUM_GEN_\1 || !NETIF_CHECKSUM_ENABLED(netif, /' "$file"

  # Gateway mode (src/glue_gateway.c): lwIP has no hook to accept packets for
  # addresses that are not the interface's, which a slirp-style gateway must
  # (it stands in for every host behind the sandbox). Add one to
  # ip4_input_accept(), after its broadcast test.
  local accept='^\(        ip4_addr_isbroadcast(ip4_current_dest_addr(), netif)\)$'
  n=$(grep -c "$accept" "$file" || true)
  if [ "$n" != 1 ]; then
    log "expected 1 broadcast test in ip4_input_accept of $file, found $n: lwIP changed, review apply_fixes"
    exit 1
  fi
  sed -i "s/$accept/\1 || tt_hook_ip4_accept(netif)/" "$file"

  # The same for IPv6: ip6_input_accept() asks the hook first, so a
  # gateway-mode interface takes unicast packets for every address.
  file="$1/src/core/ipv6/ip6.c"
  n=$(grep -c '^  if (netif_is_up(netif)) {$' "$file" || true)
  if [ "$n" != 1 ]; then
    log "expected 1 up test (ip6_input_accept) in $file, found $n: lwIP changed, review apply_fixes"
    exit 1
  fi
  sed -i 's/^  if (netif_is_up(netif)) {$/  if (tt_hook_ip6_accept(netif)) {\n    return 1;\n  }\n&/' "$file"

  # tcp_output() walks the whole unacked list to find its tail each time it
  # may send: with a 1 MiB window at MTU 1500 that is ~700 segments per
  # incoming ACK, 21 % of the time with 8 streams in process. Segments leave
  # unacked only at its head (acked, retransmitted, or all at once) and join
  # it only in tcp_output, so the tail stays valid while the list is not
  # empty: keep it in the PCB and assert it.
  expect_one "$1/src/include/lwip/tcp.h" '^  struct tcp_seg \*unacked;  /\* Sent but unacknowledged segments. \*/$'
  sed -i 's|^  struct tcp_seg \*unacked;  /\* Sent but unacknowledged segments. \*/$|&\n  struct tcp_seg *tt_unacked_tail; /* tcpip-ts: the last of unacked when it is not empty */|' "$1/src/include/lwip/tcp.h"
  file="$1/src/core/tcp_out.c"
  expect_one "$file" '^    for (; useg->next != NULL; useg = useg->next);$'
  expect_one "$file" '^        useg = seg;$'
  expect_one "$file" '^          useg = useg->next;$'
  sed -i 's|^    for (; useg->next != NULL; useg = useg->next);$|    useg = pcb->tt_unacked_tail;\n    LWIP_ASSERT("tt_unacked_tail is the tail of unacked", useg != NULL \&\& useg->next == NULL);|' "$file"
  sed -i 's|^        useg = seg;$|&\n        pcb->tt_unacked_tail = useg;|' "$file"
  sed -i 's|^          useg = useg->next;$|&\n          pcb->tt_unacked_tail = useg;|' "$file"

  # Ephemeral ports per RFC 6056 section 3.3.1 (Algorithm 1): each new port
  # starts from a random point of the range (LWIP_RAND, a keyed generator:
  # src/glue_random.c) and walks on from there past ports in use. lwIP
  # counts up from one random start, so a peer that saw one port knows the
  # next. TCP's choice moves to src/glue_tcp.c (tt_tcp_new_port), which
  # finds a free port in one pass over the PCB lists however many are taken;
  # lwIP's body stays behind the new return, unreached. (Its walk also
  # increments before testing for the end of the range: from 65535 the u16
  # wraps to port 0, which tcp_connect reports as ENOBUFS.) UDP keeps lwIP's
  # walk from a random start: a stack has few UDP PCBs.
  file="$1/src/core/tcp.c"
  expect_one "$file" '^tcp_new_port(void)$'
  sed -i '/^tcp_new_port(void)$/{n;s|^{$|{\n  return tt_tcp_new_port(); /* tcpip-ts: RFC 6056, src/glue_tcp.c */|}' "$file"
  expect_one "$file" 'return tt_tcp_new_port();'
  file="$1/src/core/udp.c"
  expect_one "$file" '^again:$'
  sed -i 's|^again:$|  udp_port = UDP_ENSURE_LOCAL_PORT_RANGE(LWIP_RAND()); /* tcpip-ts: RFC 6056 Algorithm 1 */\n&|' "$file"

  # IPv4 identification: lwIP numbers every packet from one counter, which
  # tells an off-path host how many packets the stack sends and lets it
  # guess the ID of the next fragment (RFC 6274 section 3.5, RFC 7739).
  # lwIP never sets DF, so any packet may be fragmented on the way: draw
  # every ID at random. RFC 6864 section 4.1 asks that an ID not repeat for
  # a source, destination and protocol within a datagram's lifetime; no
  # 16-bit counter keeps that beyond 65,536 packets per lifetime either, and
  # this stack sends that many in well under a second.
  file="$1/src/core/ipv4/ip4.c"
  expect_one "$file" '^    IPH_ID_SET(iphdr, lwip_htons(ip_id));$'
  sed -i 's|^    IPH_ID_SET(iphdr, lwip_htons(ip_id));$|    ip_id = (u16_t)LWIP_RAND(); /* tcpip-ts: random IDs, RFC 7739 */\n&|' "$file"

  # IPv6 fragment identification, the same (RFC 7739 section 5.1; the
  # 32-bit ID makes a repeat within a reassembly lifetime negligible).
  file="$1/src/core/ipv6/ip6_frag.c"
  expect_one "$file" '^  identification++;$'
  sed -i 's|^  identification++;$|  identification = LWIP_RAND(); /* tcpip-ts: random IDs, RFC 7739 */|' "$file"

  # Our patch files, in name order. No fuzz: a patch that no longer applies
  # exactly means lwIP or an earlier patch changed under it, and must be
  # reviewed, not guessed.
  local p
  for p in ${patch_files[@]+"${patch_files[@]}"}; do
    patch -d "$1" -p1 -s -N --fuzz=0 --no-backup-if-mismatch < "$p" >&2 || {
      log "$(basename "$p") does not apply to lwIP $LWIP_VERSION: review it"
      exit 1
    }
  done
}

# Fails unless exactly one line of file matches the sed pattern.
expect_one() {
  local n
  n=$(grep -c "$2" "$1" || true)
  if [ "$n" != 1 ]; then
    log "expected 1 line matching $2 in $1, found $n: lwIP changed, review apply_fixes"
    exit 1
  fi
}

cache="${TCPIP_TS_CACHE:-$HOME/.cache/tcpip-ts}"
if [ -n "${LWIP_SRC:-}" ]; then
  if [ ! -f "$LWIP_SRC/src/include/lwip/init.h" ]; then
    log "LWIP_SRC=$LWIP_SRC does not look like an lwIP tree (no src/include/lwip/init.h)"
    exit 1
  fi
  tree="$cache/lwip-local-$(realpath "$LWIP_SRC" | sha256sum | cut -c1-12)-fixes$FIXES_KEY"
  if [ ! -f "$tree/.verified" ]; then
    rm -rf "$tree"
    mkdir -p "$cache"
    cp -r "$LWIP_SRC" "$tree"
    apply_fixes "$tree"
    echo "local" > "$tree/.verified"
  fi
  echo "$tree"
  exit 0
fi

tree="$cache/lwip-$DEBIAN_VERSION-fixes$FIXES_KEY"
if [ -f "$tree/.verified" ]; then
  echo "$tree"
  exit 0
fi

command -v apt-get >/dev/null || { log "apt-get not found: set LWIP_SRC to an lwIP $LWIP_VERSION source tree"; exit 1; }
mkdir -p "$cache"
work=$(mktemp -d "$cache/fetch.XXXXXX")
trap 'rm -rf "$work"' EXIT

state="$work/apt"
mkdir -p "$state/lists/partial" "$state/cache/archives/partial" "$state/etc/sources.list.d" "$state/etc/preferences.d" "$state/dl"
touch "$state/status"
echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian $DEBIAN_SUITE main" > "$state/etc/sources.list"
apt_opts=(
  -o "Dir::Etc=$state/etc" -o "Dir::Etc::sourcelist=$state/etc/sources.list"
  -o "Dir::Etc::sourceparts=$state/etc/sources.list.d" -o "Dir::Etc::preferencesparts=$state/etc/preferences.d"
  -o "Dir::State=$state" -o "Dir::State::status=$state/status" -o "Dir::Cache=$state/cache"
  -o "Debug::NoLocking=1" -o "APT::Sandbox::User=root" -qq
)
log "downloading Debian source package lwip=$DEBIAN_VERSION ($DEBIAN_SUITE)"
apt-get "${apt_opts[@]}" update >&2
(cd "$state/dl" && apt-get "${apt_opts[@]}" source --download-only "lwip=$DEBIAN_VERSION" >&2)

orig="$state/dl/lwip_${DEBIAN_VERSION%%-*}.orig.tar.xz"
deb="$state/dl/lwip_$DEBIAN_VERSION.debian.tar.xz"
echo "$ORIG_SHA256  $orig" | sha256sum -c --quiet - >&2 || { log "sha256 mismatch for $orig"; exit 1; }
echo "$DEBIAN_SHA256  $deb" | sha256sum -c --quiet - >&2 || { log "sha256 mismatch for $deb"; exit 1; }

unpack="$work/unpack"
mkdir -p "$unpack"
tar -C "$unpack" -xf "$orig"
tar -C "$unpack" -xf "$deb"
src="$unpack/lwip-$LWIP_VERSION"
# Apply Debian's patch series (bug and CVE fixes) in order, as dpkg-source would.
while read -r patch; do
  case "$patch" in ''|'#'*) continue ;; esac
  patch -d "$src" -p1 -s -N < "$unpack/debian/patches/$patch" >&2
done < "$unpack/debian/patches/series"

apply_fixes "$src"
rm -rf "$tree"
mv "$src" "$tree"
echo "$DEBIAN_VERSION" > "$tree/.verified"
log "cached in $tree"
echo "$tree"
