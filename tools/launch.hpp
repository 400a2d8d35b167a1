#pragma once
// `socksify [options] COMMAND...`: configuration into the environment, the shim's absolute path
// first in LD_PRELOAD, then exec.
#include <string>
#include <vector>

#include "config.hpp"

namespace socksify::tool {

/// What the wrapper was asked to do.
struct LaunchRequest {
  std::vector<std::string> command;  ///< program and arguments
  settings::Settings settings;       ///< from the command line: exported as SOCKSIFY_*
  bool strict = false;               ///< refuse programs the shim cannot reach
};

/// `name` as execvp() would find it in $PATH (unchanged when it holds a '/'), or "".
std::string resolve_in_path(const std::string& name);

/// Why the shim cannot see a program's connections, or "" if it can.
std::string unreachable_reason(const std::string& path);

/// This executable's absolute path, or "".
std::string self_path();

/// Finds the shim next to this executable (build tree or installed layout), or
/// $SOCKSIFY_SHIM. Returns an absolute path or "".
std::string find_shim();

/// The new LD_PRELOAD: sanitizer runtimes first, then `shim` (absolute), then the rest of `old`
/// (which may be null); `shim` is never listed twice.
std::string preload_list(const std::string& shim, const char* old);

/// Exports and execs; returns only on failure (the exit code to use).
int launch(const LaunchRequest& request);

/// What makes a valid configuration unusable here (an unwritable log file), or "".
std::string usable(const settings::Config& config);

/// A proxy whose host name certainly does not resolve (the resolver says there is no such
/// name), as a line; or "". Run before a program starts, so that a typo fails here (exit 2),
/// not in the program's first connect.
std::string proxies_resolve(const settings::Config& config);

/// The environment variables that carry the command line's settings to a program (and what
/// `socksify env` prints): each SOCKSIFY_* setting as given, except a password read from
/// --password-file, which goes as SOCKSIFY_PASSWORD_FILE=PATH.
std::vector<std::pair<std::string, std::string>> exported(const settings::Settings& cli);
/// Warnings about a configuration that will probably fail (a user without a password).
void warn_about(const settings::Config& config);

/// `socksify env`: prints the export lines (LD_PRELOAD with the library's absolute path first,
/// then the SOCKSIFY_* settings of the options). Returns the exit code.
int print_activation(const settings::Settings& settings);
/// `socksify off`: prints the lines that undo it. Returns the exit code.
int print_deactivation();

}  // namespace socksify::tool
