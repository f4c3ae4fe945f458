#!/usr/bin/env bash
# Builds fabtests' fi_rma_bw (libfabric's RMA bandwidth benchmark, a second bandwidth anchor beside
# mpi_bandwidth) for the libfabric that is installed, into a cache outside the repository:
#   ${FABTESTS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/chanpool/fabtests}/<version>/bin/fi_rma_bw
# Debian ships no fabtests package (libfabric-bin has fi_info, fi_pingpong and fi_strerror only),
# but the libfabric source package's orig tarball is upstream's tag archive, fabtests/ included
# (for 1.17.0-3: byte for byte `git archive --prefix=libfabric-1.17.0/ v1.17.0 | xz -6`). So:
#   1. the source package of the installed libfabric1 (dpkg), its orig tarball's SHA-256 from
#      apt's source index; without deb-src entries, root adds them (chanpool-deb-src.sources,
#      copied from the system's own deb entries) and runs apt-get update;
#   2. the orig tarball: apt-get source --download-only, or LIBFABRIC_ORIG_TARBALL (a copy got
#      elsewhere), checked against that SHA-256 either way;
#   3. fabtests/ from it: autogen.sh, configure --with-libfabric=/usr, make benchmarks/fi_rma_bw only
#      (build tools and libfabric-dev installed with apt-get when missing).
# Idempotent: a build for the same libfabric source version is kept and only its path printed.
# Usage: scripts/fetch_fabtests.sh     prints the path of fi_rma_bw on its last line; exit 1 if
#        it cannot be had (the reason on stderr).
set -euo pipefail

say() { echo "fetch_fabtests: $*" >&2; }
die() { say "$*"; exit 1; }

as_root=()
[ "$(id -u)" -eq 0 ] || as_root=(sudo)

cache="${FABTESTS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/chanpool/fabtests}"
read -r source_package source_version < <(dpkg-query -W -f='${source:Package} ${source:Version}\n' libfabric1 2>/dev/null) ||
  die "libfabric1 is not installed (scripts/install-deps.sh installs it)"
upstream="${source_version#*:}"
upstream="${upstream%-*}"
out="$cache/$upstream"
binary="$out/bin/fi_rma_bw"
if [ -x "$binary" ] && [ "$(cat "$out/libfabric-source-version" 2>/dev/null)" = "$source_version" ]; then
  echo "$binary"
  exit 0
fi

# Build tools and headers.
needed=(autoconf automake libtool make gcc libc6-dev libfabric-dev xz-utils)
missing=()
for p in "${needed[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

# The orig tarball's SHA-256 and name for this source version, from apt's source index (empty
# when apt has none: apt-cache's failure is not the script's).
orig_checksum() {
  { apt-cache showsrc "$source_package" 2>/dev/null || true; } |
    awk -v want="$source_version" '/^Version:/ { v = $2 } /^Checksums-Sha256:/ { c = 1; next } /^[^ ]/ { c = 0 }
                                   c && v == want && $3 ~ /\.orig\.tar\./ && !found { print $1, $3; found = 1 }'
}
# deb-src twins of the system's Debian archive entries: the deb822 stanzas signed with Debian's
# archive keyring, and the one-line "deb" entries of /debian and /debian-security archives.
add_deb_src() {
  local f
  say "no source index for $source_package $source_version: adding deb-src entries" \
    "(/etc/apt/sources.list.d/chanpool-deb-src.*) and running apt-get update"
  for f in /etc/apt/sources.list.d/*.sources; do
    if [ ! -e "$f" ] || [ "${f##*/}" = chanpool-deb-src.sources ]; then continue; fi
    awk 'BEGIN { RS = ""; ORS = "\n\n" }
         /Signed-By:[^\n]*debian-archive-keyring/ && /Types:[^\n]*deb/ { sub(/Types:[^\n]*/, "Types: deb-src"); print }' "$f"
  done | "${as_root[@]}" tee /etc/apt/sources.list.d/chanpool-deb-src.sources >/dev/null
  local lines
  lines="$(for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    if [ ! -e "$f" ] || [ "${f##*/}" = chanpool-deb-src.list ]; then continue; fi
    sed -n -E 's#^deb (.*/debian(-security)?/? .*)#deb-src \1#p' "$f"
  done)"
  [ -z "$lines" ] || echo "$lines" | "${as_root[@]}" tee /etc/apt/sources.list.d/chanpool-deb-src.list >/dev/null
  "${as_root[@]}" apt-get update -qq >&2
}
checksum="$(orig_checksum)"
if [ -z "$checksum" ]; then
  add_deb_src
  checksum="$(orig_checksum)"
fi
[ -n "$checksum" ] || die "apt has no source record of $source_package $source_version (apt-cache showsrc $source_package)"
read -r sha256 orig_name <<<"$checksum"

src="$cache/src"
mkdir -p "$src"
tarball="${LIBFABRIC_ORIG_TARBALL:-$src/$orig_name}"
if [ ! -f "$tarball" ]; then
  say "downloading $source_package $source_version's source package (apt-get source --download-only)"
  (cd "$src" && apt-get source --download-only "$source_package=$source_version" >&2) ||
    die "apt-get source could not download $orig_name; set LIBFABRIC_ORIG_TARBALL to a copy of it (SHA-256 $sha256)"
fi
echo "$sha256  $tarball" | sha256sum --check --quiet - >&2 ||
  die "$tarball is not $orig_name (SHA-256 $sha256 expected)"

# fabtests/ only, then the one benchmark.
work="$(mktemp -d "$cache/build.XXXXXX")"
trap 'rm -rf "$work"' EXIT
top="$(tar -tJf "$tarball" | sed -n 1p)"  # sed reads it all: no SIGPIPE for tar under pipefail
top="${top%%/*}"
tar -xJf "$tarball" -C "$work" "$top/fabtests"
fabtests="$work/$top/fabtests"
[ -x "$fabtests/autogen.sh" ] || die "$orig_name has no fabtests/autogen.sh"
say "building fi_rma_bw from $orig_name against the installed libfabric-dev"
(cd "$fabtests" && ./autogen.sh >"$work/autogen.log" 2>&1) || die "autogen.sh failed: $(tail -n 5 "$work/autogen.log")"
mkdir "$work/build"
(cd "$work/build" && "$fabtests/configure" --with-libfabric=/usr >"$work/configure.log" 2>&1) ||
  die "configure failed: $(tail -n 5 "$work/configure.log")"
(cd "$work/build" && make -j "$(nproc)" benchmarks/fi_rma_bw >"$work/make.log" 2>&1) ||
  die "make benchmarks/fi_rma_bw failed: $(tail -n 5 "$work/make.log")"
install -D -m 0755 "$work/build/benchmarks/fi_rma_bw" "$binary"
echo "$source_version" >"$out/libfabric-source-version"
say "built $binary"
echo "$binary"
