#pragma once
// Whether a program can be reached by the preloaded library at all: a static binary has no
// dynamic loader (so no LD_PRELOAD), Go's runtime makes its socket system calls itself, and
// the loader ignores LD_PRELOAD for setuid, setgid and setcap programs. Used by the wrapper
// before it runs a program and by the library when a socksified program starts another.
// Allocation-free (stack only): safe in a vfork child.
#include <cstdint>

namespace socksify::settings {

enum class Reach : std::uint8_t {
  preloadable,    ///< the library will be loaded into it (or it is a script, or not there)
  static_binary,  ///< no PT_INTERP
  go_runtime,     ///< a Go build-ID note
  setuid,         ///< set-user-ID to another user
  setgid,         ///< set-group-ID to another group
  capabilities,   ///< file capabilities (setcap)
};

/// What the ELF headers and the file's mode say about `path`.
Reach program_reach(const char* path) noexcept;

/// "is statically linked (Go, musl-static...): the preloaded library cannot see its
/// connections, which will NOT go through the proxy", or "" for preloadable.
const char* reach_text(Reach r) noexcept;

}  // namespace socksify::settings
