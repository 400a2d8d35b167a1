#!/bin/sh
# Builds the Debian package from this tree: a release build with prefix /usr, then CPack.
# Prints the path of the .deb on its last line.
set -eu
cd "$(dirname "$0")/.."
build=build/package
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX=/usr \
  -DSOCKSIFY_BUILD_TESTS=OFF >/dev/null
cmake --build "$build"
(cd "$build" && cpack -G DEB >/dev/null)
ls "$PWD/$build"/socksify_*.deb
