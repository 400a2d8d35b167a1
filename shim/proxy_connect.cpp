#include "proxy_connect.hpp"
#include "core_names.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <new>
#include <string>

#include "async_connect.hpp"
#include "guard.hpp"
#include "log.hpp"
#include "mutex_lock.hpp"
#include "pending_connect.hpp"
#include "protected.hpp"
#include "real_libc.hpp"
#include "report.hpp"
#include "socks5/dialer.hpp"
#include "socks5/error.hpp"
#include "state.hpp"

namespace socksify::shim {

namespace {

using Clock = std::chrono::steady_clock;
using socks5::Address;

// Was the interrupting signal's handler installed without SA_RESTART? The shim cannot see
// which signal arrived, so: if any caught asynchronous signal lacks SA_RESTART, the program is
// prepared for EINTR and gets it; if every handler asks for restarts, the call goes on as the
// kernel's would. Handlers for the synchronous faults (SIGSEGV and the like: crash reporters,
// sanitizers, language runtimes) are left out: those signals are caused by the thread itself
// and never interrupt a wait. (Runs only after a wait was interrupted.)
bool stop_on_signal() {
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig == SIGKILL || sig == SIGSTOP || sig == SIGSEGV || sig == SIGBUS || sig == SIGFPE ||
        sig == SIGILL || sig == SIGTRAP || sig == SIGSYS) {
      continue;
    }
    struct sigaction sa {};
    if (real().sigaction(sig, nullptr, &sa) != 0) continue;
    const bool caught = (sa.sa_flags & SA_SIGINFO) != 0
                            ? sa.sa_sigaction != nullptr
                            : (sa.sa_handler != SIG_DFL && sa.sa_handler != SIG_IGN);
    if (caught && (sa.sa_flags & SA_RESTART) == 0) return true;
  }
  return false;
}

bool is_blocking(int fd) {
  const int flags = real().fcntl(fd, F_GETFL);
  return flags >= 0 && (flags & O_NONBLOCK) == 0;
}

}  // namespace

// The lines and the errno of a finished dial: the connector's (connector.hpp), one for every
// mode.
void log_failure(const socks5::Dial& dial, const Verdict& v) {
  runtime().connector.report_failure(dial, v);
}

void log_outcome(const socks5::Dial& dial, const Verdict& v, Clock::time_point t0) {
  runtime().connector.report(dial, v, t0);
}

int outcome_errno(const socks5::Dial& dial) {
  return Connector::outcome_errno(dial);
}

// The proxy's BND address, for getsockname(): unless the proxy left it unspecified.
void record_local(Session& s, const socks5::Dial& dial, int family) {
  const Address& b = dial.bound();
  if (!b.is_ip() || b.is_unspecified()) return;
  s.local_len = sockaddr_for(b, family, s.local);
}

namespace {

// The session of a connection through the proxy: getpeername() gives what the program asked
// for, getsockname() the proxy's BND address.
void attach_proxied(int fd, const sockaddr* addr, socklen_t len, const socks5::Dial& dial) {
  SessionRef s = session_create(SessionKind::proxied, socket_cookie(fd), addr, len);
  if (!s) return;
  record_local(*s.get(), dial, addr->sa_family);
  session_attach(fd, s.get());
}

int set_errno(int e) {
  errno = e;
  return -1;
}

}  // namespace

void release_pending_connect(PendingConnect* p) noexcept {
  if (p->async) {
    release_async(p);
    return;
  }
  delete p;
}

int proxied_connect(const Runtime& rt, int fd, const Destination& dst, const sockaddr* addr,
                    socklen_t len, const Verdict& verdict) noexcept {
  // The clock is read for the log line only.
  const auto t0 = log_enabled(LogLevel::info) ? Clock::now() : Clock::time_point{};
  socks5::DialSocket socket;
  socks5::DialRequest request;
  request.target = target_of(dst);
  const auto deadline = socks5::Deadline::after(rt.config.timeout);
  const bool protect = dials_protected();
  if (protect && !is_blocking(fd)) {
    // Event-loop connect through a protection layer: the dial on sockets of its own, the
    // program's socket parked until the relay takes it (async_connect.hpp).
    return async_connect(rt, fd, socket, std::move(request), deadline, addr, len, verdict, true);
  }
  if (protect) {
    // The handshake runs on a socket of the dial's own, which goes to the relay; the
    // program's socket is connected to the relay afterwards. It runs to its end within the
    // deadline (signals and the send timeout do not split it: there is no half-made relay
    // for a later connect() to resume).
    socks5::Dial dial(rt.plan(), socket, std::move(request), deadline);
    socks5::run_blocking(dial, socks5::BlockingOptions{false, false, nullptr});
    log_outcome(dial, verdict, t0);
    int e = outcome_errno(dial);
    if (e == 0) e = start_protected(fd, addr->sa_family, dial, deadline);
    if (e != 0) return set_errno(e);
    attach_proxied(fd, addr, len, dial);
    return 0;
  }
  socket.fd = fd;
  socket.family = addr->sa_family;
  const bool blocking = is_blocking(fd);
  // A non-blocking socket: EINPROGRESS at once, the handshake in the background, readiness
  // when its outcome is known (async_connect.hpp).
  if (!blocking) {
    return async_connect(rt, fd, socket, std::move(request), deadline, addr, len, verdict, false);
  }
  socks5::Dial dial(rt.plan(), socket, std::move(request), deadline);
  const socks5::BlockingOptions options{blocking, true, stop_on_signal};
  const auto outcome = socks5::run_blocking(dial, options);
  if (outcome == socks5::DriveOutcome::finished) {
    log_outcome(dial, verdict, t0);
    const int e = outcome_errno(dial);
    if (e != 0) return set_errno(e);
    attach_proxied(fd, addr, len, dial);
    return 0;
  }
  // Interrupted, or the socket's own send timeout passed: still under way, as the kernel's
  // connect would be. The session keeps the dial for whoever asks next.
  SessionRef s = session_create(SessionKind::connecting, socket_cookie(fd), addr, len);
  auto* p = s ? new (std::nothrow) PendingConnect(std::move(dial), verdict, t0) : nullptr;
  if (p == nullptr) return set_errno(ENOBUFS);
  s->pending.store(p, std::memory_order_release);
  session_attach(fd, s.get());
  return set_errno(outcome == socks5::DriveOutcome::interrupted ? EINTR : EINPROGRESS);
}

namespace {

// Runs the pending dial on; returns the errno of its outcome, or -1 when it returned early
// again (`outcome` says why). Called with p->mu held.
int run_pending(int fd, Session& s, PendingConnect& p, bool stop_early,
                socks5::DriveOutcome& outcome) {
  if (p.result >= 0) {
    outcome = socks5::DriveOutcome::finished;
    return p.result;
  }
  p.dial.rebind(fd);
  // connect() again keeps the kernel's rules (signals, the send timeout); SO_ERROR waits for
  // the outcome, within the dial's deadline.
  const socks5::BlockingOptions options{is_blocking(fd), stop_early,
                                        stop_early ? stop_on_signal : nullptr};
  outcome = socks5::run_blocking(p.dial, options);
  if (outcome != socks5::DriveOutcome::finished) return -1;
  log_outcome(p.dial, p.verdict, p.t0);
  p.result = outcome_errno(p.dial);
  if (p.result == 0) {
    record_local(s, p.dial, s.peer.ss_family);
    s.kind.store(SessionKind::proxied, std::memory_order_release);
  }
  return p.result;
}

}  // namespace

int resume_connect(int fd, Session& s) noexcept {
  PendingConnect* p = s.pending.load(std::memory_order_acquire);
  if (p == nullptr) return set_errno(EISCONN);
  if (p->async) {
    // As the kernel answers a second connect() on a connecting socket.
    const int outcome = async_outcome(s);
    if (outcome < 0) return set_errno(EALREADY);
    if (outcome == 0) return set_errno(EISCONN);
    session_detach(fd);  // reported once; the socket starts over
    return set_errno(outcome);
  }
  MutexLock lock(&p->mu);
  const bool was_done = p->result == 0;
  socks5::DriveOutcome outcome{};
  const int r = run_pending(fd, s, *p, true, outcome);
  if (r < 0) return set_errno(outcome == socks5::DriveOutcome::interrupted ? EINTR : EALREADY);
  if (r == 0) return was_done ? set_errno(EISCONN) : 0;
  // Failed: the socket is unconnected again (the dial reset it); a new connect() starts over.
  session_detach(fd);
  return set_errno(r);
}

int finish_connect(int fd, Session& s) noexcept {
  PendingConnect* p = s.pending.load(std::memory_order_acquire);
  if (p == nullptr) return 0;
  if (p->async) {
    // SO_ERROR: 0 while under way (as the kernel says), then the outcome, once.
    const int outcome = async_outcome(s);
    if (outcome <= 0) return 0;
    session_detach(fd);
    return outcome;
  }
  MutexLock lock(&p->mu);
  socks5::DriveOutcome outcome{};
  const int r = run_pending(fd, s, *p, false, outcome);
  if (r < 0) return EINPROGRESS;  // not reached: nothing stops this wait but the deadline
  if (r == 0) return 0;
  // Reported once, as the kernel's SO_ERROR is; the socket starts over.
  session_detach(fd);
  return r;
}

bool data_held(int fd) noexcept {
  SessionKind hint{};
  if (!session_kind_hint(fd, hint) || hint != SessionKind::connecting) return false;
  SessionRef s = session_of(fd);
  if (!s || s->kind.load(std::memory_order_acquire) != SessionKind::connecting) return false;
  PendingConnect* p = s->pending.load(std::memory_order_acquire);
  if (p == nullptr) return false;
  if (p->async) {
    // Known: connected, or failed (the socket was dissolved: the kernel answers).
    if (async_outcome(*s.get()) >= 0) return false;
    errno = EAGAIN;
    return true;
  }
  if (!is_blocking(fd)) {
    errno = EAGAIN;
    return true;
  }
  Guard guard;
  (void)finish_connect(fd, *s.get());  // connected, or dissolved by the failed dial
  return false;
}

}  // namespace socksify::shim
