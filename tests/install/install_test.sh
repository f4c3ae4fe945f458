#!/usr/bin/env bash
# Installs the build tree into a temporary prefix, then builds and runs a consumer against it
# both ways a user would: CMake find_package(chanpool) and pkg-config.
# usage: install_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build_dir=$1
source_dir=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cmake --install "$build_dir" --prefix "$work/prefix" >/dev/null
test -f "$work/prefix/lib/cmake/chanpool/chanpoolConfig.cmake"
test -f "$work/prefix/lib/cmake/chanpool/chanpoolConfigVersion.cmake"
test -f "$work/prefix/lib/pkgconfig/chanpool.pc"
test -f "$work/prefix/lib/pkgconfig/chanpool-transport.pc"
test -f "$work/prefix/lib/pkgconfig/chanpool-pool.pc"
test -f "$work/prefix/include/chanpool/version.h"
test -f "$work/prefix/include/chanpool/transport.h"
test -L "$work/prefix/lib/libchanpool_c.so.$(sed -n 's/^#define CHANPOOL_VERSION_MAJOR //p' "$work/prefix/include/chanpool/version.h")"
test -x "$work/prefix/bin/pool_map"
test -x "$work/prefix/bin/fanin_bench"
test -x "$work/prefix/bin/latency_bench"
test -x "$work/prefix/bin/chanpool_cleanup"

echo "--- find_package(chanpool)"
cmake -S "$source_dir/tests/install/consumer" -B "$work/cmake-consumer" -DCMAKE_PREFIX_PATH="$work/prefix" >/dev/null
cmake --build "$work/cmake-consumer" >/dev/null
"$work/cmake-consumer/consumer"
"$work/cmake-consumer/transport_consumer"
"$work/cmake-consumer/pool_consumer"
"$work/cmake-consumer/c_consumer"

echo "--- pkg-config chanpool"
export PKG_CONFIG_PATH="$work/prefix/lib/pkgconfig"
# shellcheck disable=SC2046  # pkg-config output is meant to split into arguments
c++ -std=c++20 "$source_dir/tests/install/consumer/main.cpp" -o "$work/pkg-consumer" \
  $(pkg-config --cflags chanpool) $(pkg-config --libs chanpool)
"$work/pkg-consumer"

echo "--- pkg-config chanpool-transport"
# shellcheck disable=SC2046
c++ -std=c++20 "$source_dir/tests/install/consumer/transport_main.cpp" -o "$work/pkg-transport-consumer" \
  $(pkg-config --cflags chanpool-transport) $(pkg-config --libs chanpool-transport)
"$work/pkg-transport-consumer"

echo "--- pkg-config chanpool-pool"
# shellcheck disable=SC2046
c++ -std=c++20 "$source_dir/tests/install/consumer/pool_main.cpp" -o "$work/pkg-pool-consumer" \
  $(pkg-config --cflags chanpool-pool) $(pkg-config --libs chanpool-pool)
"$work/pkg-pool-consumer"
