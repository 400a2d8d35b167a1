#pragma once
// Handlers shared between hook families.
#include <sys/socket.h>
#include <time.h>

namespace socksify::core {
struct Destination;
struct Verdict;
struct SocketFacts;
struct AddressReading;
}  // namespace socksify::core

namespace socksify::shim {

using namespace socksify::core;  // NOLINT(google-build-using-namespace): see core_names.hpp
struct Runtime;

/// One log line for a refusal: "refused WHAT to DEST port N (why): what it means".
void log_refusal(const Verdict& v, const Destination& d, const char* what) noexcept;

/// The socket's type (SO_TYPE), or -1 when `fd` is not a socket.
int socket_type(int fd) noexcept;

/// The socket's SO_DOMAIN, SO_TYPE (low bits) and, with `protocol`, SO_PROTOCOL; false when
/// `fd` is not a socket.
bool socket_facts(int fd, SocketFacts& facts, bool protocol) noexcept;

/// A v4-mapped destination on an IPV6_V6ONLY socket: the kernel's ENETUNREACH.
bool v6only_refuses(int fd, const AddressReading& r) noexcept;

/// True for a UDP socket (SOCK_DGRAM of protocol UDP; `type` from socket_type()): the only
/// datagrams SOCKS carries.
bool is_udp(int fd, int type) noexcept;

/// connect() as the hook does it. With `direct_fastopen` (TCP Fast Open), a destination that
/// goes direct is not connected: *direct_fastopen is set and 0 returned, so that the caller
/// lets the kernel send the data with the SYN.
int on_connect(int fd, const sockaddr* addr, socklen_t len, bool* direct_fastopen) noexcept;

/// True for a DNS query to a local stub resolver (UDP port 53 on loopback) in remote-DNS
/// mode: the library answers it (udp.hpp, stub mode) instead of letting the name out.
bool local_stub_query(const Runtime& rt, const Destination& d) noexcept;

/// The datagram hooks' work (also reached from syscall(2), see syscall.cpp).
ssize_t send_to(int fd, const void* buf, size_t n, int flags, const sockaddr* to,
                socklen_t len) noexcept;
ssize_t send_message(int fd, const msghdr* msg, int flags) noexcept;
int send_mmsg(int fd, mmsghdr* vec, unsigned int vlen, int flags) noexcept;
ssize_t receive_from(int fd, void* buf, size_t n, int flags, sockaddr* from,
                     socklen_t* fromlen) noexcept;
ssize_t receive_message(int fd, msghdr* msg, int flags) noexcept;
int receive_mmsg(int fd, mmsghdr* vec, unsigned int vlen, int flags, timespec* timeout) noexcept;

}  // namespace socksify::shim
