#pragma once
// UDP through the proxy (RFC 1928 section 7): one UDP ASSOCIATE per datagram socket, made on
// the first datagram (or connect) to a destination the policy proxies.
//
//  - The association is a control TCP connection to the proxy (ours, close-on-exec) and the
//    relay endpoint from its reply (the proxy's own address when the reply says 0.0.0.0 or ::).
//    It belongs to the socket's session (session.hpp): dup'd fds and a forked child share it,
//    and the last close of the socket closes the control connection.
//  - The program's socket is connected to the relay, so the kernel delivers only the relay's
//    datagrams: poll/select/epoll readiness on it is about datagrams for the program.
//  - Outgoing datagrams get the section 7 header (IPv4, IPv6 or, behind a fake address, the
//    name) in front of the program's own iovecs (no copy); incoming ones are unwrapped and the
//    program sees the real remote address (or, on a connected socket, the peer it connected
//    to) as the source. Fragments (FRAG != 0) are reassembled as section 7 describes.
//  - The program's own connect() on the socket records its peer (getpeername, send/write
//    without an address); AF_UNSPEC forgets it.
//  - A proxy that refuses UDP ASSOCIATE (microsocks, ssh -D: "command not supported"), or
//    closes the control connection, fails the socket closed: the errno and one log line, never
//    a direct datagram.
#include <sys/socket.h>

#include "policy.hpp"
#include "runtime.hpp"
#include "session.hpp"

namespace socksify::shim {

/// Frees an association (the last close of its socket).
void release_association(Association* a) noexcept;

/// The udp session of `fd`, made (with its association) when `fd` has none yet. An empty ref
/// with errno set when the association cannot be made.
SessionRef udp_session(int fd, const Runtime& rt) noexcept;

/// Stub mode (remote DNS, a query to a local stub resolver): the udp session of `fd` whose
/// queries to `stub` are answered by the library (dns_answer.hpp), made when `fd` has none.
SessionRef stub_session(int fd, const sockaddr* stub, socklen_t stub_len) noexcept;
/// connect() of a datagram socket to a local stub in remote-DNS mode: stub mode, `addr` as
/// the peer.
int stub_connect(int fd, const sockaddr* addr, socklen_t len) noexcept;
/// True if the session's association is in stub mode.
bool is_stub(Session& s) noexcept;

/// Sends the datagram `msg` (its msg_name is ignored) to `d` through the association (in stub
/// mode: answers the query).
ssize_t udp_send(int fd, Session& s, const Runtime& rt, const Destination& d, const msghdr& msg,
                 int flags) noexcept;

/// Sends to the peer the program connected the socket to (send, write, sendmsg without an
/// address). EDESTADDRREQ when it connected to none.
ssize_t udp_send_connected(int fd, Session& s, const Runtime& rt, const msghdr& msg,
                           int flags) noexcept;

/// Receives one datagram for the program: unwrapped, its source in msg_name. `verified`: the
/// session was checked against the socket (else a datagram that is not from the relay makes
/// it check).
ssize_t udp_receive(int fd, Session& s, msghdr* msg, int flags, bool verified = true) noexcept;

/// connect() of a datagram socket to a destination the policy proxies: the association, and
/// `addr` as the peer.
int udp_connect(int fd, const Runtime& rt, const sockaddr* addr, socklen_t len) noexcept;

/// connect(AF_UNSPEC) on an associated socket: forgets the peer (the relay stays).
void udp_disconnect(Session& s) noexcept;

/// getpeername() of an associated socket: the program's peer, or false (ENOTCONN).
bool udp_peer(Session& s, sockaddr* addr, socklen_t* len) noexcept;

/// The session of `fd` when it is an associated datagram socket (a verified reference), else
/// an empty ref. Cheap for every other fd (one or two loads).
SessionRef udp_of(int fd) noexcept;
/// The same without checking the socket's identity (no system call): for receiving, where
/// udp_receive() checks it when a datagram is not from the relay.
SessionRef udp_of_unverified(int fd) noexcept;

}  // namespace socksify::shim
