#!/bin/sh
# Runs ALL the tests: the README's second command and what .ci/run calls.
#  - g++ 12, warnings as errors: unit, fault, interop (danted, microsocks, ssh -D), fuzz-corpus
#    replay, package tests
#  - clang 14, warnings as errors: the same suite
#  - AddressSanitizer + UBSan build, and ThreadSanitizer build: the same suite, with the shim
#    lab limited to the cases that run only our own (sanitized) programs
#  - the libFuzzer targets (clang): built, each run once over its seed corpus
#  - libsocks5client alone: configured from its own directory, built and installed
#  - the Debian package: built from the tree, installed with apt-get, used, removed
#  - the GSSAPI tests use a Dante server rebuilt from Debian's source with GSSAPI (cached)
set -eu
cd "$(dirname "$0")/.."
scripts/install-deps.sh
export CI="${CI:-false}"
# A GSSAPI-capable Dante for the GSSAPI tests and benchmarks (Debian's is built without it):
# built once from Debian's own source package, then cached in build/dante-gssapi.
scripts/build-dante-gssapi.sh build/dante-gssapi >/dev/null
for preset in ci clang asan tsan; do
  echo "=== workflow preset: $preset ==="
  cmake --workflow --preset "$preset"
done
# The libFuzzer targets themselves (clang, -fsanitize=fuzzer): built, and each run once over
# its seed corpus (-runs=0: no fuzzing, only proof that it links, starts and reads inputs).
echo "=== workflow preset: fuzz (build, then each fuzzer over its corpus once) ==="
cmake --workflow --preset fuzz
for fuzzer in build/fuzz/fuzz/*_fuzzer; do
  name=$(basename "$fuzzer" _fuzzer)
  "$fuzzer" -runs=0 "fuzz/corpus/$name" >"build/fuzz/$name.log" 2>&1 ||
    { cat "build/fuzz/$name.log"; echo "fuzzer $name failed over its corpus" >&2; exit 1; }
done
echo "=== libsocks5client on its own (its directory as the top of a CMake tree) ==="
rm -rf build/lib-only
cmake -S libsocks5client -B build/lib-only -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_CXX_FLAGS="-Wall -Wextra -Werror" >/dev/null
cmake --build build/lib-only >/dev/null
DESTDIR="$PWD/build/lib-only/root" cmake --install build/lib-only --prefix /usr >/dev/null
test -f build/lib-only/root/usr/include/socks5/dialer.hpp
echo "=== the Debian package ==="
scripts/package-test.sh
