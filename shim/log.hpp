#pragma once
// Logging with write(2): no stdio locks, no allocation, safe in any thread. Silent unless the
// configuration asks. Never given secrets (callers print URIs with passwords masked).
#include "config.hpp"

namespace socksify::shim {

/// True if lines at `level` are written: check it before building costly arguments.
bool log_enabled(LogLevel level) noexcept;

/// printf-style line at `level`, prefixed "socksify[pid]: ".
void log_line(LogLevel level, const char* fmt, ...) noexcept __attribute__((format(printf, 2, 3)));

/// Unconditional one-line error on stderr (bad configuration, fatal conditions).
void log_error(const char* fmt, ...) noexcept __attribute__((format(printf, 1, 2)));

}  // namespace socksify::shim
