#pragma once
// Listening through the proxy (SOCKS BIND, RFC 1928 section 4).
//
// A socket the policy sends through the proxy (SOCKSIFY_LISTEN: by default one bound to the
// local address of a proxied connection, as an active-FTP client's data socket is: at bind()
// time; in `proxy` mode any other non-loopback one, at listen() time) gets a BIND on a
// connection of the library's own, put in the program's descriptor (dup3) with its
// close-on-exec and O_NONBLOCK flags:
//  - getsockname() returns the first reply's address: where the proxy listens for the program;
//  - poll/select/epoll report the descriptor readable when the second reply (the peer that
//    connected) arrives, which is when accept() will not block;
//  - accept()/accept4() read the second reply and hand over the connection itself as the new
//    descriptor (getpeername(): the peer from the reply). A BIND takes one connection: the
//    listening descriptor then gets a new BIND (and so, possibly, a new address).
#include <sys/socket.h>

#include "runtime.hpp"
#include "session.hpp"

namespace socksify::shim {

/// Frees a binding (the last close of its descriptor).
void release_binding(Binding* b) noexcept;

/// After a successful bind(): a socket bound to the local address of a proxied connection
/// gets its BIND now (so that getsockname() already names the proxy's address, which an
/// active-FTP client reads before it listens). 0, or -1 with errno.
int bind_bound(int fd, const sockaddr* addr, socklen_t len) noexcept;

/// bind() to an address the program read from getsockname() of a proxied connection (the
/// proxy's own): not a local address, so the kernel is not asked; the BIND is sent now.
/// 1 when `addr` is not such an address, else 0 or -1 with errno.
int bind_proxy_address(int fd, const sockaddr* addr, socklen_t len) noexcept;

/// listen(): returns 1 when the socket is left to the kernel (not for the proxy), else the
/// outcome (0, or -1 with errno).
int bind_listen(int fd, int backlog) noexcept;

/// connect() on a socket that got a BIND at bind() time but never listened: a plain socket
/// bound to the same address takes its place. 0 (also when `fd` is not such a socket), or -1.
int bind_undo(int fd) noexcept;

/// getsockname() of a listening socket through the proxy (the proxy's BIND address) or of a
/// proxied connection (the proxy's BND address); false for any other fd.
bool bind_sockname(int fd, sockaddr* addr, socklen_t* len) noexcept;

/// accept4() on a listening socket through the proxy; returns -2 when `fd` is not one.
int bind_accept(int fd, sockaddr* addr, socklen_t* len, int flags) noexcept;

}  // namespace socksify::shim
