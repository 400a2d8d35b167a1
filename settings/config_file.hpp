#pragma once
// The optional configuration file (TOML, see socksify.conf(5)). Its keys are the option
// table's (options.hpp) and set the same settings as the SOCKSIFY_* variables; the
// environment wins over the file, and the command line over both.
#include <optional>
#include <string>

#include "config.hpp"

namespace socksify::settings {

/// The system-wide configuration file.
inline constexpr const char* kSystemConfigFile = "/etc/socksify.conf";

/// The file to use: SOCKSIFY_CONF (from `layered`, else from `env`), else
/// $XDG_CONFIG_HOME/socksify/socksify.conf (or ~/.config/...), else `system_file`
/// (/etc/socksify.conf); nullopt when none exists. An explicitly named file that does not
/// exist is returned anyway (reading it then fails with a clear message).
std::optional<std::string> find_config_file(const EnvLookup& env, const Settings& layered = {},
                                            const std::string& system_file = kSystemConfigFile);

/// Reads and checks a file. Errors read "FILE:LINE:COL: what is wrong"; each setting's origin
/// is "FILE:LINE: KEY".
socks5::Result<Settings, ConfigError> read_config_file(const std::string& path);

/// The settings of one process: the file, then the environment, then `command_line` on top.
socks5::Result<Settings, ConfigError> load_settings(const EnvLookup& env,
                                                    const Settings& command_line = {});

/// Parses the configuration from load_settings().
socks5::Result<Config, ConfigError> load_config(const EnvLookup& env,
                                                const Settings& command_line = {});

}  // namespace socksify::settings
