#!/bin/bash
# Formats the C++ tree with .clang-format (Debian's clang-format 14): scripts/format.sh, or
# scripts/format.sh --check to list the files that differ (exit 1 if any).
set -euo pipefail
cd "$(dirname "$0")/.."
files=$(git ls-files include src tests bench examples | grep -E '\.(h|cpp)$')
if [ "${1:-}" = "--check" ]; then
  bad=0
  for f in $files; do clang-format "$f" | cmp -s - "$f" || { echo "$f"; bad=1; }; done
  exit $bad
fi
echo "$files" | xargs clang-format -i
