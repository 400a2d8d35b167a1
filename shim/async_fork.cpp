// What fork() does to the event-loop connect (async_internal.hpp): before it every pending
// dial gets its latch; a child has no driver thread and closes the driver's descriptors.
#include <pthread.h>

#include "async_connect.hpp"
#include "async_internal.hpp"
#include "core_names.hpp"
#include "mutex_lock.hpp"
#include "real_libc.hpp"

namespace socksify::shim {

using namespace async_detail;  // NOLINT(google-build-using-namespace)

// Before fork(): every pending dial gets its latch, and the list stays locked until the
// fork is done, so a dial started meanwhile by another thread cannot miss one.
void async_before_fork() noexcept {
  pthread_mutex_lock(&g_driver.mu);
  for (std::size_t i = 0; i < g_driver.n; ++i) {
    PendingConnect* p = g_driver.items[i];
    MutexLock plock(&p->mu);
    if (!p->ended && p->outcome.load(std::memory_order_acquire) < 0) make_latch(*p);
  }
}

void async_after_fork_parent() noexcept {
  pthread_mutex_unlock(&g_driver.mu);
}

// A forked child: the driver's thread did not come along. Its descriptors in the child are
// closed (the parent's driver still drives those sockets); the child starts its own driver
// for its own new connects.
void async_after_fork_child() noexcept {
  for (std::size_t i = 0; i < g_driver.n; ++i) {
    PendingConnect* p = g_driver.items[i];
    if (p->work_fd >= 0) real().close(p->work_fd);
    p->work_fd = -1;
    close_fd(p->latch_tx);
    close_fd(p->parked.listener);
    // A GSSAPI dial's own socket: the parent's driver works on it, not the child.
    if ((p->protect || p->on_done != nullptr) && p->dial.fd() >= 0) {
      real().close(p->dial.release_fd());
    }
    if (p->watch_fd >= 0) real().close(p->watch_fd);
    p->watch_fd = -1;
    // A job of the library's: the parent's driver finishes it for the parent; the child's
    // copy of what it works on learns that it will not be finished here.
    if (p->on_done != nullptr && p->job != nullptr && !p->ended) p->on_done(*p, ECONNABORTED, true);
  }
  if (g_driver.ep >= 0) real().close(g_driver.ep);
  if (g_driver.wake >= 0) real().close(g_driver.wake);
  g_driver.ep = g_driver.wake = -1;
  g_driver.n = 0;
  g_driver.pid.store(0, std::memory_order_relaxed);
  pthread_mutex_t fresh = PTHREAD_MUTEX_INITIALIZER;
  g_driver.mu = fresh;
  g_regs_mu = fresh;
}

}  // namespace socksify::shim
