# Warning set for all project targets. CI turns them into errors with
# CMAKE_COMPILE_WARNING_AS_ERROR (see CMakePresets.json). -Wnull-dereference is left out:
# with g++ 12 at -O2 it reports false positives inside libstdc++'s std::string.
add_library(socksify_warnings INTERFACE)
target_compile_options(socksify_warnings INTERFACE
  -Wall -Wextra -Wpedantic -Wconversion -Wsign-conversion -Wshadow -Wold-style-cast
  -Wformat=2 -Wimplicit-fallthrough -Wnon-virtual-dtor -Woverloaded-virtual -Wcast-qual
  -Wundef)
