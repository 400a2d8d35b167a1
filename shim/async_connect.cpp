#include "async_connect.hpp"
#include "async_internal.hpp"
#include "core_names.hpp"

#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <new>

#include "guard.hpp"
#include "log.hpp"
#include "mutex_lock.hpp"
#include "pending_connect.hpp"
#include "protected.hpp"
#include "proxy_connect.hpp"
#include "real_libc.hpp"

// The kernel's epoll hands a dial from the thread that armed it to the driver: a
// happens-before that ThreadSanitizer cannot see by itself, so it is told.
#if defined(__SANITIZE_THREAD__)
#define SOCKSIFY_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SOCKSIFY_TSAN 1
#endif
#endif
#ifdef SOCKSIFY_TSAN
extern "C" void __tsan_acquire(void* addr);
extern "C" void __tsan_release(void* addr);
#define SOCKSIFY_HANDOFF_RELEASE(p) __tsan_release(p)
#define SOCKSIFY_HANDOFF_ACQUIRE(p) __tsan_acquire(p)
#else
#define SOCKSIFY_HANDOFF_RELEASE(p) ((void)(p))
#define SOCKSIFY_HANDOFF_ACQUIRE(p) ((void)(p))
#endif

namespace socksify::shim {

std::atomic<int> g_async_pending{0};

namespace async_detail {

constinit Driver g_driver;

// ---------------------------------------------------------------------------------------------
// The driver: one thread per process, started with the first pending connect, all signals
// blocked, running only the library's code. It drives each dial through its non-blocking
// steps on a dup of the program's socket.

void unref(PendingConnect* p) {
  // Told to ThreadSanitizer too: it does not see atomics (nor locks) taken inside some
  // intercepted calls, and the last reference may go inside one.
  SOCKSIFY_HANDOFF_RELEASE(&p->refs);
  if (p->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) {
    SOCKSIFY_HANDOFF_ACQUIRE(&p->refs);
    delete p;
  }
}

void close_fd(int& fd) {
  if (fd >= 0) real().close(fd);
  fd = -1;
}

void close_fd(std::atomic<int>& fd) {
  const int was = fd.exchange(-1);
  if (was >= 0) real().close(was);
}

// Sends the outcome on the latch, if there is one, and closes the sending end: once.
void fire_latch(PendingConnect& p, int outcome) {
  const int tx = p.latch_tx.exchange(-1);
  if (tx < 0) return;
  (void)!real().send(tx, &outcome, sizeof outcome, MSG_DONTWAIT | MSG_NOSIGNAL);
  real().close(tx);
}

// Publishes the outcome: the session's view, the program's epoll registrations back, and the
// latch (every poll/select waiter, in every process that holds it). Called with p->mu held.
void publish(PendingConnect& p, int outcome) {
  if (p.session != nullptr) {
    if (outcome == 0) {
      record_local(*p.session, p.dial, p.family);
      p.session->kind.store(SessionKind::proxied, std::memory_order_release);
    }
  }
  p.result = outcome;
  {
    MutexLock lock(&g_regs_mu);
    p.outcome.store(outcome);  // sequentially consistent: make_latch() reads it after its store
    if (p.session != nullptr) set_held(p.program_fd, false);
  }
  g_async_pending.fetch_sub(1, std::memory_order_relaxed);
  fire_latch(p, outcome);
}

// The outcome latch of `p`, made when first needed, in the owner: by a poll/select waiter
// (in any thread, without p.mu: a poll hook runs where ThreadSanitizer does not see locks),
// or before a fork (the child learns the outcome from it). Atomics only: whoever sets up the
// latch, and whoever publishes the outcome, each look at the other's store afterwards, so
// the outcome is sent exactly once (the exchange of latch_tx) whatever the order.
int make_latch(PendingConnect& p) {
  int have = p.latch.load(std::memory_order_acquire);
  if (have >= 0) return have;
  int pair[2];
  // Sequenced packets: one message, and an end of stream if the sender goes without one.
  if (real().socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0) return -1;
  if (!p.latch.compare_exchange_strong(have, pair[0])) {  // another thread's came first
    real().close(pair[0]);
    real().close(pair[1]);
    return have;
  }
  p.latch_tx.store(pair[1]);
  const int v = p.outcome.load();
  if (v >= 0) fire_latch(p, v);  // known already: publish() found no latch to send on
  return pair[0];
}

// The dial's socket in the driver's epoll set, one-shot for `events`. A dial on sockets of its
// own (GSSAPI) may replace its socket: the old one's registration went with it.
void arm(PendingConnect& p, short events) {
  epoll_event ev{};
  ev.events = static_cast<std::uint32_t>(events) | EPOLLONESHOT;
  ev.data.ptr = &p;
  const int fd = p.watch_fd >= 0 ? p.watch_fd : p.dial.fd();
  if (p.registered && p.armed_fd != fd) p.registered = false;
  // Its own address: p's first member is its mutex, whose state TSan keeps at that address.
  SOCKSIFY_HANDOFF_RELEASE(&p.want);
  int rc = real().epoll_ctl(g_driver.ep, p.registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, &ev);
  if (rc != 0 && (errno == ENOENT || errno == EEXIST)) {  // a new socket under the same number
    rc = real().epoll_ctl(g_driver.ep, errno == ENOENT ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, fd, &ev);
  }
  p.registered = rc == 0;
  p.armed_fd = fd;
}

void disarm(PendingConnect& p) {
  if (p.registered) real().epoll_ctl(g_driver.ep, EPOLL_CTL_DEL, p.armed_fd, nullptr);
  p.registered = false;
}

// Runs the dial from step `s` until it waits or ends. Called with p->mu held; true when the
// dial ended (the caller drops it).
bool advance(PendingConnect& p, socks5::Dial::Step s) {
  for (;;) {
    switch (s.next) {
      case socks5::Dial::Next::connect: {
        const int rc = real().connect(p.dial.fd(), p.dial.address(), p.dial.address_length());
        s = p.dial.on_connect(rc == 0 ? 0 : errno);
        continue;
      }
      case socks5::Dial::Next::wait:
        p.want = s.events;
        p.until = s.until;
        arm(p, s.events);
        return false;
      case socks5::Dial::Next::done:
      case socks5::Dial::Next::failed: {
        if (p.on_done != nullptr) {  // a job of the library's: its own outcome
          disarm(p);
          p.result = outcome_errno(p.dial);
          // Kept: it watches a socket of its own now (watch() armed it).
          if (p.job != nullptr && p.on_done(p, p.result, false)) return false;
          p.outcome.store(p.result, std::memory_order_release);
          return true;
        }
        log_outcome(p.dial, p.verdict, p.t0);
        int e = outcome_errno(p.dial);
        if (p.protect) {
          // GSSAPI: the relay takes the proxy connection and the parked program socket.
          disarm(p);  // before the socket leaves: its number may be reused at once
          if (e == 0) e = start_parked(p.dial, p.parked, p.deadline);
        }
        publish(p, e);
        return true;
      }
    }
  }
}

// Takes `p` out of the driver's list and lets go of it. Called with g_driver.mu held.
void drop(std::size_t i) {
  PendingConnect* p = g_driver.items[i];
  g_driver.items[i] = g_driver.items[--g_driver.n];
  g_driver.items[i]->slot = i;
  {
    MutexLock plock(&p->mu);
    disarm(*p);
    // A program's connect that did not succeed (cancelled: the session went, its socket may
    // live on in a forked child): the half-made proxy connection is dissolved, so that no
    // process can send into the handshake.
    if (p->on_done == nullptr && !p->protect && p->work_fd >= 0 &&
        p->outcome.load(std::memory_order_acquire) != 0) {
      sockaddr unspec{};
      unspec.sa_family = AF_UNSPEC;
      real().connect(p->work_fd, &unspec, sizeof unspec);
    }
    close_fd(p->work_fd);
    close_fd(p->watch_fd);
    close_fd(p->parked.listener);
    close_fd(p->latch_tx);
  }
  unref(p);
}

void* driver_main(void*) {
  ++t_depth;  // everything this thread calls is the library's own work
  epoll_event evs[64];
  PendingConnect* finished[64];
  int wait_ms = -1;
  auto nearest = Clock::time_point::max();  // the earliest wait that may run out
  for (;;) {
    const int n = real().epoll_wait(g_driver.ep, evs, 64, wait_ms);
    if (g_driver.exiting.load(std::memory_order_acquire)) {
      // The process is ending: wait for it, touching nothing.
      for (;;) real().epoll_wait(g_driver.ep, evs, 1, -1);
    }
    // Readiness first, without the list's lock: a dial stays alive while it is in the list,
    // and only this thread takes dials out, so a connect() adding one never waits for this.
    bool woken = n == 0;  // the wait ran out: look at every deadline
    int nfinished = 0;
    for (int k = 0; k < n; ++k) {
      if (evs[k].data.ptr == nullptr) {  // the wake eventfd: new dials, or cancelled ones
        std::uint64_t v;
        (void)!real().read(g_driver.wake, &v, sizeof v);
        woken = true;
        continue;
      }
      auto* p = static_cast<PendingConnect*>(evs[k].data.ptr);
      SOCKSIFY_HANDOFF_ACQUIRE(&p->want);
      MutexLock plock(&p->mu);
      if (!p->ended && !p->cancelled.load(std::memory_order_acquire) &&
          !g_driver.exiting.load(std::memory_order_acquire)) {
        const auto events = static_cast<short>(evs[k].events);
        if (p->on_ready != nullptr && p->watch_fd >= 0) {
          p->ended = p->on_ready(*p, events);
          if (!p->ended && p->watch_fd >= 0) arm(*p, POLLIN);
        } else {
          p->ended = advance(*p, p->dial.on_ready(events));
        }
        if (p->ended) {
          finished[nfinished++] = p;
        } else if (p->until < nearest) {
          nearest = p->until;
        }
      }
    }
    MutexLock lock(&g_driver.mu);
    const auto now = Clock::now();
    if (!woken && now < nearest) {
      // Only the dials that just ended leave the list: no lock of every other one.
      for (int k = 0; k < nfinished; ++k) drop(finished[k]->slot);
    } else {
      // The whole list: ended dials out, cancelled ones (their sockets closed) too, waits
      // that ran out, and the nearest deadline for the next wait.
      nearest = Clock::time_point::max();
      for (std::size_t i = 0; i < g_driver.n;) {
        PendingConnect* p = g_driver.items[i];
        bool ended;
        {
          MutexLock plock(&p->mu);
          if (!p->started) {
            // Listed, but its connect() has not started it yet: that connect() wakes the
            // driver, which then counts it.
            p->missed = true;
            ++i;
            continue;
          }
          if (!p->ended && p->cancelled.load(std::memory_order_acquire)) {
            if (p->outcome.load(std::memory_order_acquire) < 0) {
              if (p->on_done == nullptr) g_async_pending.fetch_sub(1, std::memory_order_relaxed);
              p->outcome.store(ECONNABORTED, std::memory_order_release);
            }
            p->ended = true;
          } else if (!p->ended && p->until <= now &&
                     !g_driver.exiting.load(std::memory_order_acquire)) {
            if (p->delayed) {  // a retry's time came: its dial starts now
              p->delayed = false;
              p->ended = advance(*p, p->dial.start());
            } else {
              p->ended = advance(*p, p->dial.on_timeout());
            }
          }
          ended = p->ended;
          if (!ended && p->until < nearest) nearest = p->until;
        }
        if (ended) {
          drop(i);
          continue;
        }
        ++i;
      }
    }
    // A connect() that adds a dial due before this wakes the driver (the eventfd), and the
    // full scan that follows counts it.
    g_driver.sleeps_until.store(nearest.time_since_epoch().count(), std::memory_order_relaxed);
    if (nearest == Clock::time_point::max()) {
      wait_ms = -1;
    } else {
      const auto left = std::chrono::ceil<std::chrono::milliseconds>(nearest - now).count();
      wait_ms = left <= 0 ? 0 : (left > 60000 ? 60000 : static_cast<int>(left));
    }
  }
  return nullptr;
}

// Starts the driver in this process if it is not running. Called with g_driver.mu held.
// exit(): after this returns the driver has finished any step it was in and starts no other,
// so the destructors that run next (the C++ runtime's, Kerberos') never race with it.
void driver_at_exit() {
  g_driver.exiting.store(true, std::memory_order_release);
  MutexLock lock(&g_driver.mu);
  for (std::size_t i = 0; i < g_driver.n; ++i) {
    MutexLock plock(&g_driver.items[i]->mu);  // waits for a step under way
  }
}

bool ensure_driver() {
  const pid_t pid = getpid();
  if (g_driver.pid.load(std::memory_order_relaxed) == pid) return true;
  static bool at_exit = false;  // under g_driver.mu; a forked child inherits the registration
  if (!at_exit) at_exit = atexit(driver_at_exit) == 0;
  g_driver.ep = real().epoll_create1(EPOLL_CLOEXEC);
  g_driver.wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (g_driver.ep < 0 || g_driver.wake < 0) return false;
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = nullptr;
  real().epoll_ctl(g_driver.ep, EPOLL_CTL_ADD, g_driver.wake, &ev);
  // The descriptor table grows by doubling, and in a process with more than one thread each
  // growth waits for an RCU grace period (milliseconds). Grown once here, while the driver
  // does not exist yet, the connects that follow do not pay it (up to 4096 descriptors).
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
    const rlim_t top = rl.rlim_cur < 4096 ? rl.rlim_cur : 4096;
    if (top > 64) {
      const int high = real().fcntl(g_driver.wake, F_DUPFD_CLOEXEC, static_cast<int>(top - 1));
      if (high >= 0) real().close(high);
    }
  }
  // All signals blocked: the program's handlers never run on this thread.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&attr, 256 * 1024);
  pthread_t t;
  const int rc = pthread_create(&t, &attr, driver_main, nullptr);
  pthread_attr_destroy(&attr);
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (rc != 0) return false;
  g_driver.pid.store(pid, std::memory_order_relaxed);
  return true;
}

void wake_driver() {
  const std::uint64_t one = 1;
  (void)!real().write(g_driver.wake, &one, sizeof one);
}

// The pending connect of `fd`'s session (a reference the caller holds via `ref`), or null.
PendingConnect* pending_of(int fd, SessionRef& ref) {
  SessionKind hint{};
  if (!session_kind_hint(fd, hint) || hint != SessionKind::connecting) return nullptr;
  ref = session_peek(fd);
  if (!ref) return nullptr;
  PendingConnect* p = ref->pending.load(std::memory_order_acquire);
  return p != nullptr && p->async ? p : nullptr;
}

bool owned_here(const PendingConnect& p) {
  return p.owner == g_driver.pid.load(std::memory_order_relaxed);
}

// The outcome as this process can know it: its own driver sets it; a forked child reads
// its parent's driver's answer off the latch (made before the fork).
int outcome_of(PendingConnect& p) {
  int v = p.outcome.load(std::memory_order_acquire);
  const int latch = p.latch.load(std::memory_order_acquire);
  if (v >= 0 || owned_here(p) || latch < 0) return v;
  int got = 0;
  const ssize_t n = real().recv(latch, &got, sizeof got, MSG_PEEK | MSG_DONTWAIT);
  if (n == static_cast<ssize_t>(sizeof got)) {
    v = got;
  } else if (n == 0) {
    v = ECONNABORTED;  // the parent's driver went (it exited) before the outcome
  } else {
    return v;
  }
  p.outcome.store(v, std::memory_order_release);
  return v;
}

// Lists a job in the driver (started, or not, by the caller). False when there is no driver.
bool list_job(PendingConnect* p) {
  MutexLock lock(&g_driver.mu);
  if (!ensure_driver()) return false;
  if (g_driver.n == g_driver.cap) {
    const std::size_t cap = g_driver.cap == 0 ? 64 : g_driver.cap * 2;
    auto** grown = static_cast<PendingConnect**>(
        std::realloc(static_cast<void*>(g_driver.items), cap * sizeof(PendingConnect*)));
    if (grown == nullptr) return false;
    g_driver.items = grown;
    g_driver.cap = cap;
  }
  p->owner = g_driver.pid.load(std::memory_order_relaxed);
  p->slot = g_driver.n;
  g_driver.items[g_driver.n++] = p;
  return true;
}

// After a job was started (p.mu released): the driver wakes if it sleeps past the job's next
// time, or missed it.
void wake_for(bool missed, Clock::time_point until) {
  const Clock::rep due = until.time_since_epoch().count();
  if (missed || due < g_driver.sleeps_until.load(std::memory_order_relaxed)) {
    MutexLock lock(&g_driver.mu);
    if (due < g_driver.sleeps_until.load(std::memory_order_relaxed)) {
      g_driver.sleeps_until.store(due, std::memory_order_relaxed);
      wake_driver();
    } else if (missed) {
      wake_driver();  // its wake-up is a full scan, which counts the job
    }
  }
}
}  // namespace async_detail

using namespace async_detail;  // NOLINT(google-build-using-namespace)

int async_connect(const Runtime& rt, int fd, socks5::DialSocket socket, socks5::DialRequest request,
                  socks5::Deadline deadline, const sockaddr* addr, socklen_t len,
                  const Verdict& verdict, bool protect) noexcept {
  // The driver works on a dup of the program's socket, or (GSSAPI) on sockets of the dial's.
  const int work = protect ? -1 : real().fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (!protect && work < 0) return -1;
  SessionRef s = session_create(SessionKind::connecting, socket_cookie(fd), addr, len);
  // The dial is made in place (it is large: no moves).
  auto* p = s ? new (std::nothrow) PendingConnect(rt.plan(), socket, std::move(request), deadline,
                                                  verdict, Clock::now())
              : nullptr;
  if (p == nullptr) {
    if (work >= 0) real().close(work);
    errno = ENOBUFS;
    return -1;
  }
  p->async = true;
  p->protect = protect;
  p->program_fd = fd;
  p->family = addr->sa_family;
  p->work_fd = work;
  p->session = s.get();
  p->refs.store(2, std::memory_order_relaxed);  // the session's and the driver's
  if (!protect) p->dial.rebind(work);
  {
    // Held before the socket starts to connect: no registration may see it writable early.
    MutexLock lock(&g_regs_mu);
    set_held(fd, true);
  }
  if (protect) {
    // Parked on a listener of the library's until the relay takes it over.
    const int e = park_program(fd, addr->sa_family, p->parked, deadline);
    if (e != 0) {
      {
        MutexLock lock(&g_regs_mu);
        set_held(fd, false);
      }
      delete p;
      errno = e == ETIMEDOUT ? ETIMEDOUT : ECONNABORTED;
      return -1;
    }
  }
  g_async_pending.fetch_add(1, std::memory_order_relaxed);
  // In the driver's list before the session shows it, so that a fork (which holds the list's
  // lock) gives every pending dial a latch. The driver leaves it alone until it has started.
  const bool driver = list_job(p);
  s->pending.store(p, std::memory_order_release);
  session_attach(fd, s.get());
  pthread_mutex_lock(&p->mu);
  if (!driver) {
    // No thread (a sandbox, a limit) or no room: the handshake runs here, as before.
    socks5::run_blocking(p->dial);
    log_outcome(p->dial, p->verdict, p->t0);
    int e0 = outcome_errno(p->dial);
    if (protect && e0 == 0) e0 = start_parked(p->dial, p->parked, deadline);
    publish(*p, e0);
    close_fd(p->work_fd);
    close_fd(p->parked.listener);
    const int e = p->result;
    pthread_mutex_unlock(&p->mu);
    unref(p);  // the driver's reference: there is none
    if (e != 0) {
      session_detach(fd);
      errno = e;
      return -1;
    }
    return 0;
  }
  const bool ended = p->ended = advance(*p, p->dial.start());
  p->started = true;
  const bool missed = p->missed;  // a scan of the driver's saw it unstarted
  const int e = p->result;
  const Clock::time_point until = p->until;
  pthread_mutex_unlock(&p->mu);
  if (ended) {
    // Failed at once (the proxy's address unusable from this socket, say), as the kernel's
    // connect() fails at once. Out of the driver's list here: no event of it can come.
    {
      MutexLock lock(&g_driver.mu);
      drop(p->slot);
    }
    if (e != 0) {
      session_detach(fd);
      errno = e;
      return -1;
    }
    return 0;
  }
  // A driver asleep until after this dial's deadline must wake to count it (usually it
  // sleeps until an earlier one, and this costs nothing: no lock, no system call). A scan
  // that ran before the dial started did not count it ("missed"): it wakes the driver. A
  // scan after it counts it. Without either, a partial pass of the driver only ever moves
  // its wake-up earlier, so the value read here is no later than the one it will use.
  wake_for(missed, until);
  errno = EINPROGRESS;
  return -1;
}

void watch(PendingConnect& p, int fd, bool (*on_ready)(PendingConnect&, short)) noexcept {
  p.watch_fd = fd;
  p.on_ready = on_ready;
  p.until = Clock::time_point::max();
  arm(p, POLLIN);
}

void unwatch(PendingConnect& p) noexcept {
  disarm(p);
  p.watch_fd = -1;
  p.on_ready = nullptr;
}

PendingConnect* async_watch(const Runtime& rt, int fd, bool (*on_ready)(PendingConnect&, short),
                            void* job) noexcept {
  auto* p = new (std::nothrow)
      PendingConnect(rt.plan(), socks5::DialSocket{}, socks5::DialRequest{},
                     socks5::Deadline::after(rt.config.timeout), Verdict{}, Clock::now());
  if (p == nullptr) return nullptr;
  p->async = true;
  p->on_done = [](PendingConnect&, int, bool) { return false; };
  p->job = job;
  p->refs.store(2, std::memory_order_relaxed);
  if (!list_job(p)) {
    delete p;
    return nullptr;
  }
  pthread_mutex_lock(&p->mu);
  watch(*p, fd, on_ready);
  p->started = true;
  const bool missed = p->missed;
  pthread_mutex_unlock(&p->mu);
  wake_for(missed, Clock::time_point::max());
  return p;
}

PendingConnect* async_job(const Runtime& rt, socks5::DialRequest request, socks5::Deadline deadline,
                          bool (*on_done)(PendingConnect&, int, bool), void* job, int work_fd,
                          Clock::time_point start_at) noexcept {
  auto* p = new (std::nothrow) PendingConnect(rt.plan(), socks5::DialSocket{}, std::move(request),
                                              deadline, Verdict{}, Clock::now());
  if (p == nullptr) return nullptr;
  p->async = true;
  p->on_done = on_done;
  p->job = job;
  p->work_fd = work_fd;
  p->refs.store(2, std::memory_order_relaxed);  // the owner's and the driver's
  if (start_at > Clock::now()) {
    // A retry: the driver starts its dial at start_at.
    if (!list_job(p)) {
      p->work_fd = -1;
      delete p;
      return nullptr;
    }
    pthread_mutex_lock(&p->mu);
    p->delayed = true;
    p->until = start_at;
    p->started = true;
    const bool missed = p->missed;
    pthread_mutex_unlock(&p->mu);
    wake_for(missed, start_at);
    return p;
  }
  const bool driver = list_job(p);
  if (!driver) {
    p->work_fd = -1;  // the caller's again
    delete p;
    return nullptr;
  }
  pthread_mutex_lock(&p->mu);
  const bool ended = p->ended = advance(*p, p->dial.start());
  p->started = true;
  const bool missed = p->missed;
  const Clock::time_point until = p->until;
  pthread_mutex_unlock(&p->mu);
  if (ended) {
    MutexLock lock(&g_driver.mu);
    drop(p->slot);
    return p;
  }
  wake_for(missed, until);
  return p;
}

void cancel_job(PendingConnect* p) noexcept {
  if (p == nullptr) return;
  if (!owned_here(*p)) {
    // A forked child's copy: its parent's driver runs the job; nothing here refers to it.
    delete p;
    return;
  }
  bool under_way = false;
  {
    MutexLock lock(&p->mu);
    p->job = nullptr;
    p->cancelled.store(true, std::memory_order_release);
    under_way = !p->ended;
  }
  if (under_way && owned_here(*p)) {
    MutexLock lock(&g_driver.mu);
    if (g_driver.pid.load(std::memory_order_relaxed) != 0) wake_driver();
  }
  unref(p);
}

bool async_pending(int fd) noexcept {
  if (g_async_pending.load(std::memory_order_relaxed) == 0) return false;
  SessionRef ref;
  PendingConnect* p = pending_of(fd, ref);
  return p != nullptr && outcome_of(*p) < 0;
}

int async_outcome(Session& s) noexcept {
  PendingConnect* p = s.pending.load(std::memory_order_acquire);
  if (p == nullptr || !p->async) return -2;
  return outcome_of(*p);
}

void release_async(PendingConnect* p) noexcept {
  if (!owned_here(*p)) {
    // A forked child's copy: its parent's driver drives the socket. Only the child's copies
    // of the descriptors go (the driver's were closed at fork).
    close_fd(p->latch);
    delete p;
    return;
  }
  bool under_way;
  {
    MutexLock lock(&p->mu);
    p->session = nullptr;
    p->cancelled.store(true, std::memory_order_release);
    under_way = !p->ended;  // an ended dial leaves the driver's list by itself
  }
  close_fd(p->latch);
  if (under_way) {
    MutexLock lock(&g_driver.mu);
    if (g_driver.pid.load(std::memory_order_relaxed) != 0) wake_driver();
  }
  unref(p);
}

}  // namespace socksify::shim
