#!/usr/bin/env bash
# Builds mtrec on the GPU machine (LibTorch from the PyTorch wheel, other dependencies unpacked
# from the .deb files that third_party/gather-debs.sh collected into .gpu-deps). See docs/GPU.md.
set -euo pipefail
cd "$(dirname "$0")/.."
deps=/tmp/deps
mkdir -p $deps && for f in .gpu-deps/*.deb; do dpkg -x "$f" $deps; done
TP=$(python3 -c 'import torch;print(torch.utils.cmake_prefix_path)' 2>/dev/null || /opt/torch/.venv/bin/python -c 'import torch;print(torch.utils.cmake_prefix_path)')
cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$TP;$deps/usr;$deps/usr/lib/x86_64-linux-gnu/cmake" \
  -DCMAKE_INCLUDE_PATH=$deps/usr/include -DCMAKE_LIBRARY_PATH=$deps/usr/lib/x86_64-linux-gnu "$@"
cmake --build build-gpu -j "$(nproc)"
