#pragma once
// `socksify check`: probe a proxy, optionally CONNECT through it, report precisely.
#include <chrono>
#include <optional>
#include <string>

#include "socks5/client.hpp"

namespace socksify::tool {

/// Inputs of one check, already gathered from argv, environment and files.
struct CheckRequest {
  socks5::ProxyUri proxy;
  std::optional<std::string> target;  ///< HOST:PORT
  socks5::ClientOptions options;
};

/// Runs the check, printing a report on stdout and failures on stderr. Returns the exit code.
int run_check(const CheckRequest& request);

}  // namespace socksify::tool
