#!/usr/bin/env bash
# Downloads the .deb files of mtrec's non-LibTorch dependencies into DIR (default .gpu-deps) for
# an offline build: on the target, `for f in DIR/*.deb; do dpkg -x "$f" /tmp/deps; done` and point
# CMAKE_PREFIX_PATH/CMAKE_INCLUDE_PATH/CMAKE_LIBRARY_PATH at /tmp/deps/usr (docs/GPU.md).
set -euo pipefail
dir=${1:-.gpu-deps}
mkdir -p "$dir"
cd "$dir"
apt-get download libfmt-dev libfmt9 libsentencepiece-dev libsentencepiece0 libeigen3-dev libcli11-dev \
  nlohmann-json3-dev libcpp-httplib-dev libcpp-httplib0.11 libssl-dev libgtest-dev libbenchmark-dev libbenchmark1debian
ls -1 "$PWD"
