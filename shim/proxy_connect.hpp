#pragma once
// A connect() that the policy sends through the proxies: the dialer (socks5/dialer.hpp) runs on
// the program's own socket (no fd swapping: epoll registrations stay valid, O_NONBLOCK is never
// touched), within one deadline for the whole call, whatever happens inside.
//
// The program's own limits are kept as the kernel keeps them:
//  - a signal whose handler lacks SA_RESTART interrupts a blocking connect(): EINTR;
//  - SO_SNDTIMEO on a blocking socket bounds connect(): EINPROGRESS after it.
// Either way the connection is still under way, as with the kernel: the socket's session is
// "connecting" and owns the dial. connect() again resumes it (0 when it succeeds, EALREADY if
// the send timeout passes again, EINTR again); getsockopt(SO_ERROR) finishes it and reports
// its outcome; close() drops it. A non-blocking connect() is the event-loop connect's
// (async_connect.hpp): EINPROGRESS at once, the handshake in the library's helper thread.
#include <sys/socket.h>

#include <chrono>

#include "core_names.hpp"
#include "policy.hpp"
#include "runtime.hpp"
#include "session.hpp"
#include "socks5/dialer.hpp"

namespace socksify::shim {

/// Frees the dial of an interrupted connect (the session's last reference is gone).
void release_pending_connect(PendingConnect* p) noexcept;

/// One line for the outcome of a finished dial (a failure by default, a success with -v).
void log_outcome(const socks5::Dial& dial, const Verdict& v,
                 std::chrono::steady_clock::time_point t0);
/// The errno a finished dial gives the program (0: connected).
int outcome_errno(const socks5::Dial& dial);
/// The proxy's BND address into the session, for getsockname() (unless unspecified).
void record_local(Session& s, const socks5::Dial& dial, int family);
/// One line for a failed dial.
void log_failure(const socks5::Dial& dial, const Verdict& v);

/// Returns 0, or -1 with errno as connect(2) would set it. `addr` is what the program passed
/// (getpeername() returns it).
int proxied_connect(const Runtime& rt, int fd, const Destination& dst, const sockaddr* addr,
                    socklen_t len, const Verdict& verdict) noexcept;

/// connect() on a socket whose session is connecting: resumes the dial.
int resume_connect(int fd, Session& s) noexcept;

/// getsockopt(SO_ERROR) on a socket whose session is connecting: finishes the dial; returns
/// the error to report (0: connected).
int finish_connect(int fd, Session& s) noexcept;

/// Before any data call on `fd` (send, recv and every relative, read, write, sendfile,
/// splice): true with errno EAGAIN while a proxied connect on it is under way, so that nothing
/// reaches the proxy before its reply and no read takes it (a blocking socket whose connect a
/// signal interrupted finishes the connect first, as the kernel's send waits for it). False
/// (go on) for every other descriptor: one or two loads for one that is not the library's.
bool data_held(int fd) noexcept;

}  // namespace socksify::shim
