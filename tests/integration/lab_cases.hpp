#pragma once
// What the shim-lab test cases share: one lab per process (each ctest case is its own
// process), the probe, and checks that wait for other processes' logs with a bound.
#include <catch2/catch.hpp>
#include <string>

#include "integration/lab.hpp"

namespace testing {

inline const std::string kDanted = "socks5h://192.0.2.1:1080";

inline std::string probe() {
  return SOCKSIFY_PROBE;
}

/// The lab of this process.
Lab& lab();

/// DNS queries that reached the client-side sink since `mark` (a leak, in remote-DNS mode),
/// once the sink has logged everything sent before now; the sync markers are left out.
std::string leaks_since(std::size_t mark);

/// The sink's log since `mark`, once it holds `text` (or the wait's bound passed).
std::string dns_since(std::size_t mark, const std::string& text);

/// The proxy-side servers' log, once it holds `text` (or the wait's bound passed).
std::string server_log_with(const std::string& text);

/// A python asyncio client in the lab's directory (asyncioN.py) that opens `n` connections to
/// target.lab:7000 at once, each echoing a line, and prints "echoed K". Returns its path.
std::string asyncio_script(int n);

/// A Go program from tests/integration/go (SOURCE.go), built once per lab with cgo on or off;
/// returns its path.
std::string go_build(const std::string& source, bool cgo);

/// Runs a command in the client namespace; REQUIREs exit status 0 / not 0.
std::string run_ok(const std::string& command);
std::string run_fail(const std::string& command);

/// Starts sshd on the proxy side at 198.51.100.1:PORT with throwaway keys; returns the
/// client key.
std::string start_sshd(int port);

/// ssh client options for the lab's throwaway keys.
inline const char* kSshOptions =
    " -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes"
    " -o LogLevel=ERROR";

}  // namespace testing
