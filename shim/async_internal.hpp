#pragma once
// What the parts of the event-loop connect share (async_connect.hpp is the interface):
//  - async_connect.cpp: the driver thread and the jobs it drives;
//  - async_readiness.cpp: the program's waits: epoll registrations held while a connect is
//    pending, poll and select waiting on the outcome latch;
//  - async_fork.cpp: what fork() does to the driver and its jobs.
#include <pthread.h>
#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstddef>

#include "pending_connect.hpp"
#include "session.hpp"

namespace socksify::shim::async_detail {

using Clock = std::chrono::steady_clock;

// The driver: one thread per process, started with the first pending connect, all signals
// blocked, running only the library's code. It drives each dial through its non-blocking
// steps on a dup of the program's socket.
struct Driver {
  pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
  std::atomic<pid_t> pid{0};  // the process it runs in (0: none); written under mu
  int ep = -1;
  int wake = -1;  // eventfd: new work, or a cancelled one
  PendingConnect** items = nullptr;
  std::size_t n = 0, cap = 0;
  // When the driver's current wait ends by itself (max: never): a new dial with a later
  // deadline needs no wake-up.
  // Written under mu; read without it by connect(), which takes mu only to wake the driver.
  std::atomic<Clock::rep> sleeps_until{Clock::time_point::max().time_since_epoch().count()};
  // exit() has begun: the driver drives nothing more (the libraries a dial uses, Kerberos
  // among them, are about to run their destructors).
  std::atomic<bool> exiting{false};
};
extern Driver g_driver;

/// The lock of the program's epoll registrations (async_readiness.cpp); the driver takes it to
/// publish an outcome, so that a registration is never held after its socket's outcome.
extern pthread_mutex_t g_regs_mu;
/// Called with g_regs_mu held: every registration of `fd` at no events (`hold`), or back at
/// the program's own events.
void set_held(int fd, bool hold);

void close_fd(int& fd);
void close_fd(std::atomic<int>& fd);
/// The outcome latch of `p`, made when first needed (see async_connect.cpp).
int make_latch(PendingConnect& p);
/// The pending connect of `fd`'s session (a reference the caller holds via `ref`), or null.
PendingConnect* pending_of(int fd, SessionRef& ref);
/// True if this process's driver owns `p` (a forked child's copy is not).
bool owned_here(const PendingConnect& p);
/// The outcome as this process can know it (-1 while unknown).
int outcome_of(PendingConnect& p);
void wake_driver();

}  // namespace socksify::shim::async_detail
