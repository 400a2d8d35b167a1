#pragma once
// `socksify check`: probe the configured proxies, optionally CONNECT through them, report
// precisely. The configuration is the one a socksified program would get (the same file,
// environment and command-line options).
#include <optional>
#include <string>

#include "config.hpp"

namespace socksify::tool {

/// Inputs of one check.
struct CheckRequest {
  settings::Config config;
  std::optional<std::string> target;  ///< HOST:PORT
};

/// Runs the check, printing a report on stdout and failures on stderr. Returns the exit code:
/// 0 when every proxy (failover) or the whole chain (strict) works, 1 otherwise, 2 for a bad
/// target.
int run_check(const CheckRequest& request);

}  // namespace socksify::tool
