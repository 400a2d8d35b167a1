#pragma once
// Handlers shared between hook families.
#include <sys/socket.h>

namespace socksify::shim {

struct Destination;
struct Verdict;

/// One log line for a refusal: "refused WHAT to DEST port N (why): what it means".
void log_refusal(const Verdict& v, const Destination& d, const char* what) noexcept;

/// The socket's type (SO_TYPE), or -1 when `fd` is not a socket.
int socket_type(int fd) noexcept;

/// connect() as the hook does it. With `direct_fastopen` (TCP Fast Open), a destination that
/// goes direct is not connected: *direct_fastopen is set and 0 returned, so that the caller
/// lets the kernel send the data with the SYN.
int on_connect(int fd, const sockaddr* addr, socklen_t len, bool* direct_fastopen) noexcept;

}  // namespace socksify::shim
