#pragma once
// What a user is told when a proxied connection fails: one line that names the proxy and the
// cause in words (unreachable, authentication rejected, a user without a password, timed out,
// not a SOCKS5 server), shared by the preloaded library's log and `socksify check`.
#include <string>

#include "config.hpp"
#include "socks5/dialer.hpp"

namespace socksify::settings {

/// Why `dial` (failed) failed, naming the proxy (or chain hop) at fault:
/// "proxy socks5://127.0.0.1:1080 rejected user 'alice': wrong user name or password".
std::string failure_text(const socks5::Dial& dial, const Config& config);

/// What a server that is not SOCKS5 sent (or a TLS library's words), as printable text: its
/// first line, at most `most` characters, other octets as '.'.
std::string printable_prefix(const std::string& octets, std::size_t most = 40);

/// The advice for a proxy that drops pipelined messages (names the setting that avoids it).
std::string pipelining_advice();

}  // namespace socksify::settings
