#pragma once
// UDP through the proxy (RFC 1928 section 7): one UDP ASSOCIATE per datagram socket, made on
// the first datagram (or connect) to a destination the policy proxies.
//
//  - The association is a control TCP connection to the proxy (ours, close-on-exec) and the
//    relay endpoint from its reply (the proxy's own address when the reply says 0.0.0.0 or ::).
//    It belongs to the socket's session (session.hpp): dup'd fds and a forked child share it,
//    and the last close of the socket closes the control connection.
//  - Every datagram goes where its own route says (policy.hpp): through the relay (sent to it
//    by address, with the section 7 header in front of the program's own iovecs: no copy), or
//    direct as it is. The kernel's view of the socket follows the program's connect(): to a
//    peer through the proxy it is connected to the relay (so the kernel delivers only the
//    relay's datagrams, and of those the library passes on only the peer's); to a direct peer
//    it is connected to that peer; unconnected it hears anyone, as without the library.
//  - Incoming datagrams from the relay are unwrapped and the program sees the real remote
//    address (or its peer as it named it) as the source; fragments (FRAG != 0) are
//    reassembled as section 7 describes (only the next position continues a sequence).
//    Datagrams from anyone else are the program's as they are.
//  - A receive allocates at most a datagram's room, whatever buffer the program passes, and
//    the program's receive timeout (SO_RCVTIMEO) bounds the whole call, datagrams the
//    library drops included.
//  - A proxy that refuses UDP ASSOCIATE (microsocks, ssh -D: "command not supported"), or
//    closes the control connection, fails the socket closed: the errno and one log line, never
//    a direct datagram.
#include <sys/socket.h>

#include <chrono>

#include "core_names.hpp"
#include "policy.hpp"
#include "runtime.hpp"
#include "session.hpp"

namespace socksify::shim {

/// Frees an association (the last close of its socket).
void release_association(Association* a) noexcept;

/// The udp session of `fd`, made (with its association) when `fd` has none yet. An empty ref
/// with errno set when the association cannot be made. A blocking socket waits for the proxy;
/// a non-blocking one (or `dontwait`, a MSG_DONTWAIT send) does not: its association is made
/// in the background and datagrams for the proxy wait for it (bounded).
SessionRef udp_session(int fd, const Runtime& rt, bool dontwait = false) noexcept;

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
/// address): through the relay, or as it is to a direct peer. EDESTADDRREQ when it connected
/// to none.
ssize_t udp_send_connected(int fd, Session& s, const Runtime& rt, const msghdr& msg,
                           int flags) noexcept;

/// Receives one datagram for the program: from the relay unwrapped (only its peer's, when it
/// is connected through the proxy), from anyone else as it is; its source in msg_name. The
/// session must be the socket's (session_of). With `until`, waits no later than then
/// (EAGAIN).
ssize_t udp_receive(int fd, Session& s, msghdr* msg, int flags,
                    const std::chrono::steady_clock::time_point* until = nullptr) noexcept;

/// connect() of a datagram socket to a destination `d` the policy proxies: the association,
/// the kernel connected to the relay, and `addr` as the peer.
int udp_connect(int fd, const Runtime& rt, const sockaddr* addr, socklen_t len,
                const Destination& d) noexcept;

/// connect() of an associated socket to a direct destination: the kernel connected to it, and
/// datagrams without an address go to it as they are.
int udp_connect_direct(int fd, Session& s, const sockaddr* addr, socklen_t len) noexcept;

/// connect(AF_UNSPEC) on an associated socket: the kernel's association dissolved, the peer
/// forgotten (the relay stays).
int udp_disconnect(int fd, Session& s, const sockaddr* addr, socklen_t len) noexcept;

/// getpeername() of an associated socket: the program's peer, or false (ENOTCONN).
bool udp_peer(Session& s, sockaddr* addr, socklen_t* len) noexcept;

/// The session of `fd` when it is an associated datagram socket (a verified reference: the
/// number still names the socket the session was made for), else an empty ref. Cheap for
/// every other fd (one or two loads).
SessionRef udp_of(int fd) noexcept;

}  // namespace socksify::shim
