#pragma once
// The supervisor's seccomp filter (see supervisor.cpp and doc/supervisor.md): which system
// calls of the program go to the supervisor, which are refused and which the kernel handles
// as usual. Built before the fork; the child only installs it.
#include <linux/filter.h>

#include <vector>

namespace socksify::tool {

/// The filter program: connect, getpeername, sendmsg, sendmmsg, recvmsg and recvmmsg always
/// to the supervisor, sendto and recvfrom when they carry an address; io_uring_setup refused;
/// only the x86-64 ABI (x32 numbers ENOSYS, i386 network calls ENETUNREACH).
std::vector<sock_filter> filter_program();

/// Installs `code` in this process (no new privileges first) with a notification listener;
/// false on failure (errno set).
bool install_filter(std::vector<sock_filter>& code, int& listener);

}  // namespace socksify::tool
