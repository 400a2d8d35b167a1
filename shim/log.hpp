#pragma once
// Logging with write(2): no stdio locks, no allocation, safe in any thread. Silent unless the
// configuration asks. Never given secrets (callers print URIs with passwords masked).
//
// Lines go to the log file if one is configured, else to standard error, but only while fd 2
// is still the standard error the process was started with (its device and inode, taken
// before the program can have replaced it: at the first close/dup2/dup3/close_range/closefrom
// that touches fd 2, or at init) and that is not a socket: a program that closed its stderr
// and got a socket (or any other file) back as fd 2 never receives our lines in its data.
#include "config.hpp"

namespace socksify::shim {

using settings::LogLevel;

/// Remembers what fd 2 is, the first time only (one fstat).
void log_capture_stderr() noexcept;
/// Sets the level and the file (called once at init; `file` must outlive the process).
void log_configure(LogLevel level, const char* file) noexcept;

/// True if lines at `level` are written: check it before building costly arguments.
bool log_enabled(LogLevel level) noexcept;

/// printf-style line at `level`, prefixed "socksify[pid]: ".
void log_line(LogLevel level, const char* fmt, ...) noexcept __attribute__((format(printf, 2, 3)));

/// Unconditional one-line error (bad configuration, fatal conditions).
void log_error(const char* fmt, ...) noexcept __attribute__((format(printf, 1, 2)));

}  // namespace socksify::shim
