#pragma once
// Reading proxychains-ng's configuration (proxychains.conf, proxychains4.conf), so that a user
// coming from proxychains4 can run `socksify -c /etc/proxychains4.conf COMMAND` as is. Its
// keywords become the same settings a socksify.conf gives (the mapping is in
// socksify.conf(5)); what socksify cannot do (SOCKS4 and HTTP proxies, random chains, dnat) is
// an error that names the line.
#include <string>
#include <string_view>

#include "config.hpp"

namespace socksify::settings {

/// True if `text` is in proxychains' format (it has a [ProxyList] section).
bool looks_like_proxychains(std::string_view text);

/// The settings `text` (read from `path`, for messages) gives.
socks5::Result<Settings, ConfigError> read_proxychains(const std::string& path,
                                                       std::string_view text);

}  // namespace socksify::settings
