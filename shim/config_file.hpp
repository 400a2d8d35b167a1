#pragma once
// The optional configuration file (TOML, see socksify.conf(5)). Its keys map onto the same
// settings as the SOCKSIFY_* variables; the environment (and so the command line) wins.
#include <map>
#include <optional>
#include <string>

#include "config.hpp"

namespace socksify::shim {

/// Settings read from a file, as SOCKSIFY_* variable names and values.
using FileSettings = std::map<std::string, std::string>;

/// The file to use: $SOCKSIFY_CONF, else $XDG_CONFIG_HOME/socksify/socksify.conf (or
/// ~/.config/...), else /etc/socksify.conf; nullopt when none exists. An explicitly named file
/// that does not exist is returned anyway (reading it then fails with a clear message).
std::optional<std::string> find_config_file(const EnvLookup& env);

/// Reads and checks a file. Errors read "FILE:LINE:COL: what is wrong".
socks5::Result<FileSettings, ConfigError> read_config_file(const std::string& path);

/// Parses the configuration from the environment overlaid on the configuration file (if any).
socks5::Result<Config, ConfigError> load_config(const EnvLookup& env);

}  // namespace socksify::shim
