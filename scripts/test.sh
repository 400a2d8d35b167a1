#!/bin/sh
# Runs ALL the tests: the README's second command and what .ci/run calls.
#  - g++ 12, warnings as errors: unit, fault, interop (danted, microsocks, ssh -D), fuzz-corpus
#    replay, package tests
#  - clang 14, warnings as errors: the same suite
#  - AddressSanitizer + UBSan build, and ThreadSanitizer build: the same suite, with the shim
#    lab limited to the cases that run only our own (sanitized) programs
#  - the Debian package: built from the tree, installed with apt-get, used, removed
set -eu
cd "$(dirname "$0")/.."
scripts/install-deps.sh
export CI="${CI:-false}"
for preset in ci clang asan tsan; do
  echo "=== workflow preset: $preset ==="
  cmake --workflow --preset "$preset"
done
echo "=== the Debian package ==="
scripts/package-test.sh
