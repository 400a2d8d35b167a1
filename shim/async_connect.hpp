#pragma once
// The event-loop connect: a non-blocking connect() through the proxy returns EINPROGRESS at
// once, and the handshake goes on in a driver thread while the program's loop runs
// (doc/protected-streams.md, "Readiness, once, for both").
//
//  - The program's socket itself is the proxy connection (never swapped: epoll registrations
//    stay valid). The driver works on a dup of it.
//  - Until the outcome is known the socket must not look writable or readable. epoll
//    registrations of the socket are held at no events and given back (EPOLL_CTL_MOD, one
//    edge even for EPOLLET and EPOLLONESHOT) when the outcome is known. poll/ppoll/select/
//    pselect wait on an outcome latch in place of the socket: an AF_UNIX seqpacket pair, made
//    for the first such waiter or before a fork (the driver sends the outcome and closes its
//    end; the other end stays readable, read with MSG_PEEK, in every process that holds it,
//    a forked child too).
//  - send/recv/read/write on it give EAGAIN meanwhile: the program's octets never reach the
//    proxy before the SOCKS reply, and no read takes the reply.
#include <poll.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>

#include "core_names.hpp"
#include "policy.hpp"
#include "runtime.hpp"
#include "session.hpp"
#include "socks5/dialer.hpp"

namespace socksify::shim {

/// Pending event-loop connects in this process (readiness hooks pass straight through at 0).
extern std::atomic<int> g_async_pending;

/// Starts the proxied connect of non-blocking `fd` in the background: 0 never (EINPROGRESS
/// with -1), or -1 with the errno of an immediate failure. `protect` (GSSAPI above clear):
/// the dial runs on sockets of its own and its last step starts the relay (protected.hpp);
/// meanwhile the program's socket is parked on a listener of the library's.
int async_connect(const Runtime& rt, int fd, socks5::DialSocket socket, socks5::DialRequest request,
                  socks5::Deadline deadline, const sockaddr* addr, socklen_t len,
                  const Verdict& verdict, bool protect) noexcept;

/// Starts a background dial of the library's own (on sockets of its own): `on_done` gets its
/// outcome in the driver thread (pending_connect.hpp). `work_fd` (owned; -1 for none) is a
/// descriptor the job needs then (closed when the job goes). nullptr when there is no driver
/// (no thread could be started): the caller does the work itself.
PendingConnect* async_job(const Runtime& rt, socks5::DialRequest request, socks5::Deadline deadline,
                          bool (*on_done)(PendingConnect&, int, bool), void* job, int work_fd,
                          std::chrono::steady_clock::time_point start_at = {}) noexcept;
/// A job with no dial: the driver watches `fd` (the job's: closed with it) and calls
/// on_ready (p.mu held) when it is readable, until on_ready returns true. nullptr (fd
/// untouched) when there is no driver.
PendingConnect* async_watch(const Runtime& rt, int fd, bool (*on_ready)(PendingConnect&, short),
                            void* job) noexcept;
/// From on_done (p.mu held): the job goes on, watching `fd` (now the job's) for on_ready.
void watch(PendingConnect& p, int fd, bool (*on_ready)(PendingConnect&, short)) noexcept;
/// From on_ready (p.mu held): the watched socket leaves the driver (its registration goes;
/// the descriptor is the caller's now).
void unwatch(PendingConnect& p) noexcept;
/// The job's owner lets go (what it works on is going): on_done is not called after this.
void cancel_job(PendingConnect* p) noexcept;

/// True when `fd` has a pending event-loop connect (errno untouched).
bool async_pending(int fd) noexcept;

/// The outcome of an event-loop connect on `s`: -1 while pending, else 0 or the errno.
/// -2 when `s` has no event-loop connect.
int async_outcome(Session& s) noexcept;

struct PendingConnect;
/// The session of an event-loop connect went (close): the driver lets go of its dial.
void release_async(PendingConnect* p) noexcept;
/// fork() handlers: before it, every pending connect gets its outcome latch (the child learns
/// the outcome from it); in the child, the driver thread did not come along.
void async_before_fork() noexcept;
void async_after_fork_parent() noexcept;
void async_after_fork_child() noexcept;

/// epoll_ctl() as the hook does it: registrations are recorded, and held while pending.
int async_epoll_ctl(int epfd, int op, int fd, epoll_event* ev) noexcept;
/// close(): forgets the epoll registrations recorded for `fd`.
void async_forget(int fd) noexcept;

/// poll()/ppoll() with pending sockets replaced by their latches.
int async_poll(pollfd* fds, nfds_t n, const timespec* timeout, const sigset_t* mask,
               bool use_ppoll) noexcept;
/// select()/pselect() the same way (through poll).
int async_select(int nfds, fd_set* rd, fd_set* wr, fd_set* ex, timespec* timeout,
                 const sigset_t* mask, bool update_timeout) noexcept;

}  // namespace socksify::shim
