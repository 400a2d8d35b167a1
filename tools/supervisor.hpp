#pragma once
// Runs a program the preload cannot reach (static, Go) under a seccomp user-notification
// supervisor. The child sets no_new_privs, installs a filter that
// sends connect/getpeername to the supervisor, and execs; the supervisor takes a duplicate of
// the program's own socket (pidfd_getfd), runs the SOCKS handshake on it, and lets the
// program's connect() succeed. The data path stays the program's socket. See
// doc/supervisor.md.
#include <string>
#include <vector>

#include "config.hpp"
#include "launch.hpp"

namespace socksify::tool {

/// Whether `command` runs under the supervisor with `config` (its mode, and in auto mode what
/// the program is).
bool use_supervisor(const settings::Config& config, const std::vector<std::string>& command);

/// Runs `request`'s command under the supervisor with `config`. Its dynamically linked
/// children get the preloaded library too (the settings exported, LD_PRELOAD set): their
/// connections to the proxy are direct in the policy, so the supervisor only connects them.
/// Returns the program's exit code (128 + signal when killed), or 125 with a line on stderr
/// when the supervisor cannot start.
int run_supervised(const LaunchRequest& request, const settings::Config& config);

}  // namespace socksify::tool
