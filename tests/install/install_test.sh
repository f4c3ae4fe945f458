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
test -x "$work/prefix/bin/latency_bench"
test -x "$work/prefix/bin/chanpool_cleanup"

echo "--- find_package(chanpool)"
cmake -S "$source_dir/tests/install/consumer" -B "$work/cmake-consumer" -DCMAKE_PREFIX_PATH="$work/prefix" >/dev/null
cmake --build "$work/cmake-consumer" >/dev/null
"$work/cmake-consumer/consumer"

echo "--- pkg-config chanpool"
export PKG_CONFIG_PATH="$work/prefix/lib/pkgconfig"
# shellcheck disable=SC2046  # pkg-config output is meant to split into arguments
c++ -std=c++20 "$source_dir/tests/install/consumer/main.cpp" -o "$work/pkg-consumer" \
  $(pkg-config --cflags chanpool) $(pkg-config --libs chanpool)
"$work/pkg-consumer"
