#pragma once
// The dial of a connect() still under way, owned by the socket's "connecting" session:
//  - blocking connects interrupted by a signal or the socket's send timeout (resumed by the
//    next connect() or getsockopt(SO_ERROR), proxy_connect.hpp);
//  - event-loop connects of non-blocking sockets (driven by the driver thread,
//    async_connect.hpp).
#include <pthread.h>
#include <sys/types.h>

#include <atomic>
#include <chrono>

#include "core_names.hpp"
#include "policy.hpp"
#include "protected.hpp"
#include "session.hpp"
#include "socks5/dialer.hpp"

namespace socksify::shim {

struct PendingConnect {
  // Constructors, not aggregate initialisation: that zero-fills the whole object first,
  // the dial's 4 KiB buffer included (about 700 instructions per connect).
  PendingConnect(socks5::Dial d, const Verdict& v, std::chrono::steady_clock::time_point t)
      : dial(std::move(d)), verdict(v), t0(t) {}
  PendingConnect(const socks5::DialPlan& plan, socks5::DialSocket s, socks5::DialRequest r,
                 socks5::Deadline dl, const Verdict& v, std::chrono::steady_clock::time_point t)
      : dial(plan, s, std::move(r), dl), verdict(v), t0(t), deadline(dl) {}

  pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;  // one resumer (or the driver) at a time
  socks5::Dial dial;
  Verdict verdict;
  std::chrono::steady_clock::time_point t0;
  int result = -1;  // -1 while under way; then 0 or the errno it ended with
  // --- the event-loop connect (async) ---
  bool async = false;
  std::atomic<int> outcome{-1};        // -1 pending, then 0 or errno: readable without the lock
  std::atomic<int> refs{1};            // the session's, and the driver's while it drives
  std::atomic<bool> cancelled{false};  // the session went (close): the driver lets go
  pid_t owner = 0;                     // the process whose driver drives it
  int program_fd = -1;                 // the program's fd number (its epoll registrations)
  int family = 0;
  int work_fd = -1;               // the driver's dup of the program's socket
  std::atomic<int> latch{-1};     // the session's end of the outcome latch (made on demand)
  std::atomic<int> latch_tx{-1};  // the sending end
  Session* session = nullptr;     // cleared (under mu) when the session goes
  short want = 0;                 // events the dial waits for
  std::chrono::steady_clock::time_point until{};  // ... until then
  bool registered = false;                        // work_fd is in the driver's epoll set
  bool ended = false;                             // the driver's: done, to be dropped
  bool protect = false;  // GSSAPI: the dial's own sockets; the relay is its last step
  Parked parked;         // ... and the program's socket waits for it there
  socks5::Deadline deadline{socks5::Deadline::Clock::time_point{}};  // the connect's
  int armed_fd = -1;     // the socket registered in the driver's epoll set
  bool started = false;  // its connect() has started it (the driver leaves it alone before)
  bool missed = false;   // a scan of the driver's saw it unstarted (its connect() wakes it)
  std::size_t slot = 0;  // its place in the driver's list
  // --- a background job of the library's (not a program's connect): a UDP ASSOCIATE for a
  // non-blocking socket (udp.cpp), a BIND (bind.cpp). The driver calls on_done with the
  // outcome instead of publishing one (with p.mu held; `forked_child`: in a child forked
  // while it ran, whose driver is not the one running it), and never counts it in
  // g_async_pending. on_done returns true to keep the job: it then watches a socket of its
  // own (watch()), and on_ready gets its readiness until it returns true (ended).
  bool (*on_done)(PendingConnect& p, int e, bool forked_child) = nullptr;
  void* job = nullptr;  // what on_done works on; cleared (under mu) when it goes
  bool (*on_ready)(PendingConnect& p, short events) = nullptr;
  int watch_fd = -1;     // the socket on_ready waits for (the job's own: closed with it)
  bool delayed = false;  // its dial starts at `until` (a retry after a failure), not yet
};

}  // namespace socksify::shim
