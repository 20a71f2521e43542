#!/usr/bin/env bash
# mtrec set-up: installs what is missing (Debian 12, as root), builds, then
#   ./bootstrap.sh demo          runs the main job (synthetic world -> train -> evaluate -> recommend)
#   ./bootstrap.sh test          runs every test, then builds an example against an installed mtrec
#   ./bootstrap.sh test --asan   the same with AddressSanitizer + UBSan (separate build folder)
#   ./bootstrap.sh build         only builds
set -euo pipefail
cd "$(dirname "$0")"
mode=${1:-demo}
asan=0
[ "${2:-}" = "--asan" ] && asan=1

PACKAGES="build-essential cmake ninja-build ccache pkg-config libtorch-dev libopenblas0-pthread libblas-dev
  libsentencepiece-dev libeigen3-dev libfmt-dev libcli11-dev libgtest-dev googletest libbenchmark-dev
  nlohmann-json3-dev libcpp-httplib-dev libssl-dev unzip chromium wrk libfaiss-dev libgloo-dev"
missing=()
for p in $PACKAGES; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "== installing: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

jobs=$(nproc)
build=build
flags=()
if [ $asan -eq 1 ]; then build=build-asan; flags+=(-DMTREC_SANITIZE=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo); fi
start=$(date +%s)
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release "${flags[@]}" >/dev/null
cmake --build "$build" -j "$jobs"
echo "== build took $(( $(date +%s) - start )) s"

case "$mode" in
  build) ;;
  demo)
    "$build/examples/mtrec" demo ;;
  test)
    export MTREC_LOG=warn
    if [ $asan -eq 1 ]; then
      export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
    fi
    ctest --test-dir "$build" --output-on-failure -j "$jobs" --timeout 600
    # The library must be usable through find_package from an installed prefix.
    prefix=$(mktemp -d)
    trap 'rm -rf "$prefix"' EXIT
    cmake --install "$build" --prefix "$prefix" >/dev/null
    echo "== building examples/consumer against the installed mtrec in $prefix"
    # A sanitized libmtrec needs a sanitized program: the ASan runtime must come first in the
    # link order (and std containers must be instrumented alike), so the consumer gets the
    # flags the library was built with. Without them it crashes against the installed library.
    consumer_flags=()
    if [ $asan -eq 1 ]; then
      consumer_flags+=("-DCMAKE_CXX_FLAGS=-fsanitize=address,undefined -fno-omit-frame-pointer"
                       "-DCMAKE_EXE_LINKER_FLAGS=-fsanitize=address,undefined")
    fi
    cmake -S examples/consumer -B "$prefix/consumer-build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
      -DCMAKE_PREFIX_PATH="$prefix" "${consumer_flags[@]}" >/dev/null
    cmake --build "$prefix/consumer-build" | tail -n 20
    LD_LIBRARY_PATH="$prefix/lib:${LD_LIBRARY_PATH:-}" "$prefix/consumer-build/mtrec_consumer"
    echo "== all tests passed" ;;
  *) echo "usage: $0 demo|test|build [--asan]" >&2; exit 64 ;;
esac
