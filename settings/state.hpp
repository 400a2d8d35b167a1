#pragma once
// What socksify remembers between processes: for each proxy, whether it answers the messages
// sent together with the greeting (pipelining) or drops them, as microsocks does. Without
// this, every new process would pay the first stall again.
//
// One small file per proxy in the state directory: $XDG_RUNTIME_DIR/socksify, else
// /tmp/socksify-UID (made 0700 and used only if it is ours and private). A file is written
// whole to a temporary name and renamed into place, so concurrent writers never mix and a
// reader sees one whole file or none. Entries older than a day are ignored (the proxy may have
// been replaced). Plain POSIX calls: usable from the preloaded library.
#include <string>

#include "config.hpp"
#include "socks5/dialer.hpp"

namespace socksify::settings {

/// The state directory for this user ("" when none can be used safely).
std::string state_dir(const EnvLookup& env);

/// The file that holds what is known about `proxy` (for messages).
std::string pipelining_file(const std::string& dir, const socks5::ProxyUri& proxy);

/// What an earlier process learned (unknown: nothing, or a day old, or no state directory).
socks5::PipeliningVerdict recall_pipelining(const std::string& dir,
                                            const socks5::ProxyUri& proxy) noexcept;

/// Records `verdict` for later processes; false if it could not be written.
bool record_pipelining(const std::string& dir, const socks5::ProxyUri& proxy,
                       socks5::PipeliningVerdict verdict) noexcept;

}  // namespace socksify::settings
