// The program's waits while an event-loop connect is pending (async_internal.hpp): its epoll
// registrations held at no events, and poll and select waiting on the outcome latch.
#include <poll.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/select.h>

#include <cerrno>
#include <memory>
#include <new>

#include "async_connect.hpp"
#include "async_internal.hpp"
#include "core_names.hpp"
#include "mutex_lock.hpp"
#include "real_libc.hpp"

namespace socksify::shim {
namespace async_detail {

constinit pthread_mutex_t g_regs_mu = PTHREAD_MUTEX_INITIALIZER;

namespace {

// ---------------------------------------------------------------------------------------------
// The program's epoll registrations, by fd: what it asked for, so that a pending socket's can
// be held at no events and given back. Recorded by the epoll_ctl hook (a few stores);
// protected by one lock, which the driver also takes to set an outcome, so that a
// registration is never held after its socket's outcome was published.

struct Reg {
  int epfd;
  std::uint32_t events;
  std::uint64_t data;
};
constexpr int kRegsPerFd = 4;
struct FdRegs {
  Reg r[kRegsPerFd];
  std::atomic<int> n;  // written under g_regs_mu; read without it by close()'s quick check
};
constexpr int kRegChunkBits = 10;
constexpr int kRegChunk = 1 << kRegChunkBits;
constexpr int kRegChunks = 1 << 11;
constinit std::atomic<FdRegs*> g_regs[kRegChunks] = {};

// What a held registration keeps: its mode bits, no readiness (EPOLLERR and EPOLLHUP are
// always reported by the kernel; a connect that failed ends with them anyway).
constexpr std::uint32_t kModeBits = EPOLLET | EPOLLONESHOT | EPOLLWAKEUP | EPOLLEXCLUSIVE;

FdRegs* regs_of(int fd, bool create) {
  if (fd < 0 || fd >= kRegChunk * kRegChunks) return nullptr;
  auto& chunk = g_regs[fd >> kRegChunkBits];
  FdRegs* c = chunk.load(std::memory_order_acquire);
  if (c == nullptr) {
    if (!create) return nullptr;
    void* m = mmap(nullptr, sizeof(FdRegs) * kRegChunk, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) return nullptr;
    c = static_cast<FdRegs*>(m);
    chunk.store(c, std::memory_order_release);
  }
  return &c[fd & (kRegChunk - 1)];
}

// Called with g_regs_mu held.
void record(int op, int epfd, int fd, const epoll_event* ev) {
  FdRegs* f = regs_of(fd, op == EPOLL_CTL_ADD);
  if (f == nullptr) return;
  int n = f->n.load(std::memory_order_relaxed);
  int at = -1;
  for (int i = 0; i < n; ++i) {
    if (f->r[i].epfd == epfd) at = i;
  }
  if (op == EPOLL_CTL_DEL) {
    if (at >= 0) {
      f->r[at] = f->r[n - 1];
      f->n.store(n - 1, std::memory_order_relaxed);
    }
    return;
  }
  if (ev == nullptr) return;
  if (at < 0) {
    if (n == kRegsPerFd) return;  // more sets than that: the rest are not held
    at = n;
    f->n.store(n + 1, std::memory_order_relaxed);
  }
  f->r[at] = Reg{epfd, ev->events, ev->data.u64};
}

}  // namespace

// Called with g_regs_mu held: every registration of `fd` at no events (`hold`), or back at
// the program's own events. A registration that is gone (its epoll fd closed) is dropped.
void set_held(int fd, bool hold) {
  FdRegs* f = regs_of(fd, false);
  if (f == nullptr) return;
  int n = f->n.load(std::memory_order_relaxed);
  for (int i = 0; i < n;) {
    epoll_event ev{};
    ev.events = hold ? (f->r[i].events & kModeBits) : f->r[i].events;
    ev.data.u64 = f->r[i].data;
    if (real().epoll_ctl(f->r[i].epfd, EPOLL_CTL_MOD, fd, &ev) != 0 && errno != EINVAL) {
      f->r[i] = f->r[--n];
      continue;
    }
    ++i;
  }
  f->n.store(n, std::memory_order_relaxed);
}

}  // namespace async_detail

using namespace async_detail;  // NOLINT(google-build-using-namespace)

int async_epoll_ctl(int epfd, int op, int fd, epoll_event* ev) noexcept {
  MutexLock lock(&g_regs_mu);
  int rc;
  if (op != EPOLL_CTL_DEL && ev != nullptr && async_pending(fd)) {
    epoll_event held = *ev;
    held.events &= kModeBits;
    rc = real().epoll_ctl(epfd, op, fd, &held);
  } else {
    rc = real().epoll_ctl(epfd, op, fd, ev);
  }
  if (rc == 0) record(op, epfd, fd, ev);
  return rc;
}

void async_forget(int fd) noexcept {
  FdRegs* f = regs_of(fd, false);
  if (f == nullptr || f->n.load(std::memory_order_relaxed) == 0) return;
  MutexLock lock(&g_regs_mu);
  f->n.store(0, std::memory_order_relaxed);
}

namespace {

int ms_of(const timespec* t) {
  if (t == nullptr) return -1;
  const long long ms = static_cast<long long>(t->tv_sec) * 1000 + (t->tv_nsec + 999999) / 1000000;
  return ms > 0x7fffffff ? 0x7fffffff : static_cast<int>(ms);
}

}  // namespace

int async_poll(pollfd* fds, nfds_t n, const timespec* timeout, const sigset_t* mask,
               bool use_ppoll) noexcept {
  auto call = [&](pollfd* f, nfds_t k, const timespec* t) {
    return use_ppoll ? real().ppoll(f, k, t, mask) : real().poll(f, k, ms_of(t));
  };
  if (g_async_pending.load(std::memory_order_relaxed) == 0 || fds == nullptr) {
    return call(fds, n, timeout);
  }
  // Small sets on the stack; large ones on the heap.
  pollfd stack[64];
  pollfd* copy = stack;
  std::unique_ptr<pollfd[]> heap;
  if (n > 64) {
    heap.reset(new (std::nothrow) pollfd[n]);
    if (!heap) return call(fds, n, timeout);
    copy = heap.get();
  }
  const auto until = timeout == nullptr ? Clock::time_point::max()
                                        : Clock::now() + std::chrono::seconds(timeout->tv_sec) +
                                              std::chrono::nanoseconds(timeout->tv_nsec);
  for (;;) {
    bool any = false;
    for (nfds_t i = 0; i < n; ++i) {
      copy[i] = fds[i];
      SessionRef ref;
      PendingConnect* p = fds[i].fd >= 0 ? pending_of(fds[i].fd, ref) : nullptr;
      if (p != nullptr && outcome_of(*p) < 0) {
        // In a forked child, the latch made before the fork.
        const int latch = owned_here(*p) ? make_latch(*p) : p->latch.load();
        if (latch < 0) {
          errno = ENOMEM;
          return -1;
        }
        copy[i].fd = latch;  // readable once the outcome is known
        copy[i].events = POLLIN;
        any = true;
      }
    }
    if (!any) return call(fds, n, timeout);
    timespec left{};
    const timespec* t = nullptr;
    if (timeout != nullptr) {
      const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(until - Clock::now());
      const long long v = ns.count() > 0 ? ns.count() : 0;
      left.tv_sec = static_cast<time_t>(v / 1000000000);
      left.tv_nsec = static_cast<long>(v % 1000000000);
      t = &left;
    }
    const int rc = call(copy, n, t);
    if (rc <= 0) {
      for (nfds_t i = 0; i < n; ++i) fds[i].revents = 0;
      return rc;
    }
    bool latched = false;
    int count = 0;
    for (nfds_t i = 0; i < n; ++i) {
      if (copy[i].fd != fds[i].fd) {
        if (copy[i].revents != 0) latched = true;  // an outcome arrived: ask again for real
        fds[i].revents = 0;
        continue;
      }
      fds[i].revents = copy[i].revents;
      if (fds[i].revents != 0) ++count;
    }
    if (count > 0 || !latched) return count;
  }
}

int async_select(int nfds, fd_set* rd, fd_set* wr, fd_set* ex, timespec* timeout,
                 const sigset_t* mask, bool update_timeout) noexcept {
  // Through poll: the same substitution, and no FD_SETSIZE limit on the latches.
  pollfd stack[64];
  pollfd* fds = stack;
  std::unique_ptr<pollfd[]> heap;
  nfds_t n = 0;
  for (int fd = 0; fd < nfds; ++fd) {
    const bool r = rd != nullptr && FD_ISSET(fd, rd);
    const bool w = wr != nullptr && FD_ISSET(fd, wr);
    const bool e = ex != nullptr && FD_ISSET(fd, ex);
    if (r || w || e) ++n;
  }
  if (n > 64) {
    heap.reset(new (std::nothrow) pollfd[n]);
    if (!heap) {
      errno = ENOMEM;
      return -1;
    }
    fds = heap.get();
  }
  nfds_t k = 0;
  for (int fd = 0; fd < nfds; ++fd) {
    short ev = 0;
    if (rd != nullptr && FD_ISSET(fd, rd)) ev |= POLLIN;
    if (wr != nullptr && FD_ISSET(fd, wr)) ev |= POLLOUT;
    if (ex != nullptr && FD_ISSET(fd, ex)) ev |= POLLPRI;
    if (ev != 0) fds[k++] = pollfd{fd, ev, 0};
  }
  const auto start = Clock::now();
  const int rc = async_poll(fds, n, timeout, mask, true);
  if (update_timeout && timeout != nullptr) {
    const auto used = std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - start);
    const long long total = static_cast<long long>(timeout->tv_sec) * 1000000000 + timeout->tv_nsec;
    const long long left = total > used.count() ? total - used.count() : 0;
    timeout->tv_sec = static_cast<time_t>(left / 1000000000);
    timeout->tv_nsec = static_cast<long>(left % 1000000000);
  }
  if (rc < 0) return rc;
  if (rd != nullptr) FD_ZERO(rd);
  if (wr != nullptr) FD_ZERO(wr);
  if (ex != nullptr) FD_ZERO(ex);
  int count = 0;
  for (nfds_t i = 0; i < n; ++i) {
    const short re = fds[i].revents;
    if (re == 0) continue;
    if (fds[i].fd >= FD_SETSIZE) continue;
    // As select reports them: errors and hang-ups make a socket readable and writable.
    if (rd != nullptr && (fds[i].events & POLLIN) && (re & (POLLIN | POLLHUP | POLLERR))) {
      FD_SET(fds[i].fd, rd);
      ++count;
    }
    if (wr != nullptr && (fds[i].events & POLLOUT) && (re & (POLLOUT | POLLERR))) {
      FD_SET(fds[i].fd, wr);
      ++count;
    }
    if (ex != nullptr && (fds[i].events & POLLPRI) && (re & POLLPRI)) {
      FD_SET(fds[i].fd, ex);
      ++count;
    }
  }
  return count;
}

}  // namespace socksify::shim
