// Readiness while an event-loop connect is pending (async_connect.hpp): poll, ppoll, select
// and pselect wait on a pending socket's outcome latch in its place; epoll_ctl records each
// registration (and holds a pending socket's at no events until its outcome is known).
// With no connect pending in the process (the usual case) they pass straight through after
// one load; epoll_ctl also records, under one lock.
#include <poll.h>
#include <sys/epoll.h>
#include <sys/select.h>

#include "async_connect.hpp"
#include "guard.hpp"
#include "real_libc.hpp"

namespace sh = socksify::shim;
using socksify::shim::real;

namespace {

bool passthrough() {
  return sh::g_async_pending.load(std::memory_order_relaxed) == 0 || sh::inside();
}

}  // namespace

extern "C" {

SOCKSIFY_EXPORT int poll(pollfd* fds, nfds_t n, int timeout) {
  if (passthrough()) return real().poll(fds, n, timeout);
  timespec t{timeout / 1000, static_cast<long>(timeout % 1000) * 1000000};
  return sh::async_poll(fds, n, timeout < 0 ? nullptr : &t, nullptr, false);
}

SOCKSIFY_EXPORT int ppoll(pollfd* fds, nfds_t n, const timespec* timeout, const sigset_t* mask) {
  if (passthrough()) return real().ppoll(fds, n, timeout, mask);
  return sh::async_poll(fds, n, timeout, mask, true);
}

SOCKSIFY_EXPORT int select(int nfds, fd_set* rd, fd_set* wr, fd_set* ex, timeval* timeout) {
  if (passthrough()) return real().select(nfds, rd, wr, ex, timeout);
  timespec t{};
  if (timeout != nullptr) {
    t.tv_sec = timeout->tv_sec;
    t.tv_nsec = timeout->tv_usec * 1000;
  }
  const int r = sh::async_select(nfds, rd, wr, ex, timeout != nullptr ? &t : nullptr, nullptr,
                                 timeout != nullptr);
  if (timeout != nullptr) {  // Linux's select reports the time left
    timeout->tv_sec = t.tv_sec;
    timeout->tv_usec = t.tv_nsec / 1000;
  }
  return r;
}

SOCKSIFY_EXPORT int pselect(int nfds, fd_set* rd, fd_set* wr, fd_set* ex, const timespec* timeout,
                            const sigset_t* mask) {
  if (passthrough()) return real().pselect(nfds, rd, wr, ex, timeout, mask);
  timespec t{};
  if (timeout != nullptr) t = *timeout;
  return sh::async_select(nfds, rd, wr, ex, timeout != nullptr ? &t : nullptr, mask, false);
}

SOCKSIFY_EXPORT int epoll_ctl(int epfd, int op, int fd, epoll_event* ev) {
  if (sh::inside()) return real().epoll_ctl(epfd, op, fd, ev);
  return sh::async_epoll_ctl(epfd, op, fd, ev);
}

}  // extern "C"
