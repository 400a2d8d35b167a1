#pragma once
// Proxied sockets across exec. A socket without FD_CLOEXEC survives exec, but the new image's
// shim starts with an empty fd table: without help, getpeername() on it would show the proxy.
// So the exec hooks (hooks/exec.cpp) pass the program a variable,
//   SOCKSIFY_INHERIT=COOKIE:SOCKADDR,...   (hex; at most kInheritMax records)
// naming each such socket by its identity (SO_COOKIE, unique for the life of the system) and
// the destination the program asked for. The new image adopts a socket's session the first
// time it asks about an fd it does not know, whatever number the socket has by then (dup2
// into 0/1 by a shell or posix_spawn file actions included). Records of sockets closed since
// match nothing. system() and popen() spawn with glibc-internal calls that no hook sees:
// their children get only what this process itself inherited.
#include <cstddef>

#include "session.hpp"

namespace socksify::shim {

/// The most records passed on.
constexpr std::size_t kInheritRecords = 64;
/// Room for "SOCKSIFY_INHERIT=" and the records.
constexpr std::size_t kInheritMax = 32 + kInheritRecords * 80;

/// Writes "SOCKSIFY_INHERIT=..." into `out` for the proxied sockets that an exec keeps (and
/// the records this process inherited itself). False when there is nothing to pass. No
/// allocation and no lock: safe in a vfork child.
bool inherit_variable(char* out, std::size_t cap) noexcept;

/// In an exec'd program: the session of `fd` from its parent's records, if `fd` is one of
/// those sockets (attached to `fd` from now on); else empty.
SessionRef adopt_inherited(int fd) noexcept;

}  // namespace socksify::shim
