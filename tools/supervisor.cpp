// The seccomp supervisor: see supervisor.hpp and doc/supervisor.md.
//
// One event loop serves every notification: it reads what the program passed, decides with
// the library's policy (policy.hpp) and acts on a duplicate of the program's socket, never
// with CONTINUE where the decision rests on memory or a descriptor the program could change
// afterwards. Dials of non-blocking sockets (Go's, event loops') run in the loop itself as
// the library's driver runs them; what must block (a blocking socket's connect or dial, a
// name a direct rule resolves locally) goes to a small pool of workers, which grows only
// while every worker is busy, to a bound. The dial plan, the cool-down, what was learned
// about pipelining, the errno and the lines are the library's own (connector.hpp): a
// supervised program prints what a preloaded one prints.
#include "supervisor.hpp"

#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdarg>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "connector.hpp"
#include "dns_answer.hpp"
#include "fake_dns.hpp"
#include "launch.hpp"
#include "policy.hpp"
#include "program.hpp"
#include "report.hpp"
#include "socks5/address.hpp"
#include "socks5/dialer.hpp"
#include "socks5/error.hpp"
#include "socks5/gssapi.hpp"
#include "socks5/wire.hpp"
#include "state.hpp"
#include "supervisor_filter.hpp"
#include "udp_in.hpp"

namespace socksify::tool {
namespace {

using Clock = std::chrono::steady_clock;
using settings::Action;
using settings::LogLevel;

int sys_pidfd_open(pid_t pid) {
  return static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
}
int sys_pidfd_getfd(int pidfd, int fd) {
  return static_cast<int>(syscall(SYS_pidfd_getfd, pidfd, fd, 0));
}

// The process (thread-group leader) of thread `tid`: pidfd_open wants a process.
pid_t process_of(pid_t tid) {
  // Usually the leader itself (a single-threaded program, Go's main thread): no /proc read.
  if (const int fd = sys_pidfd_open(tid); fd >= 0) {
    close(fd);
    return tid;
  }
  std::ifstream status("/proc/" + std::to_string(tid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("Tgid:", 0) == 0) return static_cast<pid_t>(std::stol(line.substr(5)));
  }
  return tid;
}

// How many threads process `pid` has (0 when unknown).
int threads_of(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("Threads:", 0) == 0) return std::atoi(line.c_str() + 8);
  }
  return 0;
}

bool read_memory(pid_t pid, std::uint64_t addr, void* out, std::size_t len) {
  if (len == 0) return true;
  iovec local{out, len};
  iovec remote{reinterpret_cast<void*>(addr), len};
  return process_vm_readv(pid, &local, 1, &remote, 1, 0) == static_cast<ssize_t>(len);
}

bool write_memory(pid_t pid, std::uint64_t addr, const void* in, std::size_t len) {
  if (len == 0) return true;
  iovec local{const_cast<void*>(in), len};
  iovec remote{reinterpret_cast<void*>(addr), len};
  return process_vm_writev(pid, &local, 1, &remote, 1, 0) == static_cast<ssize_t>(len);
}

// ---------------------------------------------------------------------------------------------
// The lines: the preloaded library's, "socksify[PID]: ..." with the program's process ID, to
// the log file or to the wrapper's standard error (the program's, as it started).

LogLevel g_level = LogLevel::error;
std::string g_log_file;

bool line_enabled(LogLevel level) noexcept {
  return static_cast<int>(level) <= static_cast<int>(g_level);
}

void line_write(LogLevel, int pid, const char* text) noexcept {
  char buf[1200];
  const int n = std::snprintf(buf, sizeof buf, "socksify[%d]: %s\n",
                              pid != 0 ? pid : static_cast<int>(getpid()), text);
  if (n <= 0) return;
  const std::size_t len = std::min(sizeof buf - 1, static_cast<std::size_t>(n));
  if (!g_log_file.empty()) {
    const int fd = open(g_log_file.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd >= 0) {
      (void)!write(fd, buf, len);
      close(fd);
      return;
    }
  }
  (void)!write(2, buf, len);
}

// ---------------------------------------------------------------------------------------------

void reply_continue(int listener, std::uint64_t id) {
  seccomp_notif_resp resp{};
  resp.id = id;
  resp.flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
  ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, &resp);
}

// Answers the notification (ignored when its caller went: killed, or interrupted by a signal).
void reply(int listener, std::uint64_t id, int error, long long val = 0) {
  seccomp_notif_resp resp{};
  resp.id = id;
  resp.error = error == 0 ? 0 : -error;
  resp.val = error == 0 ? val : 0;
  ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, &resp);
}

bool still_valid(int listener, std::uint64_t id) {
  std::uint64_t v = id;
  return ioctl(listener, SECCOMP_IOCTL_NOTIF_ID_VALID, &v) == 0;
}

// What the kernel's reading of an address on `sock` depends on (policy.hpp).
core::SocketFacts facts_of(int sock) {
  core::SocketFacts f;
  socklen_t len = sizeof f.family;
  getsockopt(sock, SOL_SOCKET, SO_DOMAIN, &f.family, &len);
  len = sizeof f.type;
  getsockopt(sock, SOL_SOCKET, SO_TYPE, &f.type, &len);
  f.type &= 0xF;
  len = sizeof f.protocol;
  getsockopt(sock, SOL_SOCKET, SO_PROTOCOL, &f.protocol, &len);
  return f;
}

// A v4-mapped destination on an IPV6_V6ONLY socket (the kernel refuses it).
bool v6only(int sock, const core::AddressReading& r) {
  if (!r.v4_mapped) return false;
  int only = 0;
  socklen_t len = sizeof only;
  return getsockopt(sock, IPPROTO_IPV6, IPV6_V6ONLY, &only, &len) == 0 && only != 0;
}

bool blocking(int sock) {
  const int fl = fcntl(sock, F_GETFL);
  return fl >= 0 && (fl & O_NONBLOCK) == 0;
}

std::uint64_t cookie_of(int sock) {
  std::uint64_t c = 0;
  socklen_t len = sizeof c;
  if (getsockopt(sock, SOL_SOCKET, SO_COOKIE, &c, &len) != 0) return 0;
  return c;
}

// A duplicate of process `pid`'s descriptor `fd`, or -1.
int take_fd(pid_t pid, int fd) {
  const int pidfd = sys_pidfd_open(pid);
  const int sock = pidfd >= 0 ? sys_pidfd_getfd(pidfd, fd) : -1;
  if (pidfd >= 0) close(pidfd);
  return sock;
}

// ---------------------------------------------------------------------------------------------
// The supervisor.

struct Supervisor;

// Something the event loop waits for: a dial, a DNS query passed on. Deleted by the loop once
// done.
struct LoopItem {
  virtual ~LoopItem() = default;
  virtual void on_event(Supervisor& sv, std::uint32_t events) = 0;
  virtual void on_timeout(Supervisor& sv) = 0;
  Clock::time_point until = Clock::time_point::max();
  bool done = false;
};

// A proxied connect(): the dial runs on a duplicate of the program's socket. Notifications for
// the same socket while it runs (a restart after a signal, a second call) join it and get its
// outcome.
struct DialOp final : LoopItem {
  DialOp(const socks5::DialPlan& plan, socks5::DialSocket socket, socks5::DialRequest request,
         socks5::Deadline deadline)
      : dial(plan, socket, std::move(request), deadline) {}
  socks5::Dial dial;
  core::Verdict verdict;
  Clock::time_point t0;
  pid_t pid = 0;
  int fd = -1;  // the program's descriptor number (for the peers' sweep)
  int sock = -1;
  ino_t ino = 0;
  sockaddr_storage dst{};
  socklen_t dst_len = 0;
  std::vector<std::uint64_t> ids;  // under Supervisor::mu
  bool registered = false;
  void on_event(Supervisor& sv, std::uint32_t events) override;
  void on_timeout(Supervisor& sv) override;
};

// A proxied socket's destination, for getpeername(): where it lives in the program (to sweep
// entries whose socket went) and its identity.
struct PeerEntry {
  sockaddr_storage dst{};
  socklen_t len = 0;
  pid_t pid = 0;
  int fd = -1;
  std::uint64_t cookie = 0;
};

struct Supervisor {
  int listener = -1;
  settings::Config config;
  core::Connector connector;
  core::FakeDns* dns = nullptr;  // remote-DNS mode: the fake addresses handed out
  // The DNS responder (remote-DNS mode): a program's UDP socket to a name server is connected
  // here instead, and its queries are answered from the fake-address table; a name a direct
  // rule keeps local is asked of the server the program asked.
  int responder = -1;
  sockaddr_storage responder_addr{};
  socklen_t responder_len = 0;
  int ep = -1;
  int wake = -1;
  std::mutex mu;  // flights, peers, dns_servers
  std::map<ino_t, DialOp*> flights;
  std::map<ino_t, PeerEntry> peers;
  std::size_t sweep_at = 1024;
  // Which name server each socket redirected to the responder was asking (by its local
  // address as the responder sees it).
  std::map<std::string, std::pair<sockaddr_storage, socklen_t>> dns_servers;
  // UDP associations made for programs' sockets, by socket cookie (under mu).
  std::map<std::uint64_t, std::shared_ptr<struct Assoc>> assocs;
  std::size_t assoc_sweep_at = 256;
  // The loop's own items (only the loop thread touches these), and those workers hand it
  // (under mu; adopted when the loop wakes).
  std::vector<LoopItem*> items;
  std::vector<LoopItem*> pending_items;
  // The workers: what blocks (under work_mu). A pool that grows only while every worker is
  // busy, up to kMaxWorkers.
  std::mutex work_mu;
  std::condition_variable work_cv;
  std::deque<std::function<void()>> work;
  int workers = 0;
  int idle = 0;
  // Tasks carrying a program's datagrams (a send, a relaying socket's association): what
  // must still leave when the program has gone (under work_mu).
  int carrying = 0;
  std::condition_variable idle_cv;
};

// The caller's descriptor `fd` (a duplicate), once its notification is known to be still
// waiting: the memory read and the descriptor belong to the caller only then (it could have
// died and its pid been reused). -1 when it is not (answered EBADF for a bad descriptor).
int take_checked(Supervisor& sv, const seccomp_notif& req, pid_t pid, int fd) {
  const int sock = take_fd(pid, fd);
  if (sock < 0) {
    reply(sv.listener, req.id, EBADF);
    return -1;
  }
  if (!still_valid(sv.listener, req.id)) {
    close(sock);
    return -1;
  }
  return sock;
}

// Counts a task that carries datagrams while it runs.
class Carrying {
 public:
  explicit Carrying(Supervisor& sv) : sv_(sv) {
    std::lock_guard<std::mutex> lock(sv_.work_mu);
    ++sv_.carrying;
  }
  ~Carrying() {
    {
      std::lock_guard<std::mutex> lock(sv_.work_mu);
      --sv_.carrying;
    }
    sv_.idle_cv.notify_all();
  }
  Carrying(const Carrying&) = delete;
  Carrying& operator=(const Carrying&) = delete;

 private:
  Supervisor& sv_;
};

// Workers started with the supervisor, and the most there can be: a blocking connect (a
// direct one to a silent host waits as long as the kernel's) holds one, so the pool grows
// while every worker is busy, to a bound.
constexpr int kWorkersAtStart = 2;
constexpr int kMaxWorkers = 64;

void worker_main(Supervisor& sv);

// Starts one more worker, with every signal blocked (it runs only the supervisor's code).
// Called with work_mu held.
void start_worker(Supervisor& sv) {
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  try {
    std::thread(worker_main, std::ref(sv)).detach();
    ++sv.workers;
  } catch (const std::system_error&) {
    // No thread now: the workers there are take the task.
  }
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

// Hands `task` to a worker.
void post(Supervisor& sv, std::function<void()> task) {
  {
    std::lock_guard<std::mutex> lock(sv.work_mu);
    sv.work.push_back(std::move(task));
    if (static_cast<std::size_t>(sv.idle) < sv.work.size() && sv.workers < kMaxWorkers) {
      start_worker(sv);
    }
  }
  sv.work_cv.notify_one();
}

void worker_main(Supervisor& sv) {
  for (;;) {
    std::function<void()> task;
    {
      std::unique_lock<std::mutex> lock(sv.work_mu);
      ++sv.idle;
      sv.work_cv.wait(lock, [&] { return !sv.work.empty(); });
      --sv.idle;
      task = std::move(sv.work.front());
      sv.work.pop_front();
    }
    task();
  }
}

// Waits (until `until`) for the tasks that carry datagrams to be done (a dial for a program
// that has gone is not waited for).
void wait_carried(Supervisor& sv, Clock::time_point until) {
  std::unique_lock<std::mutex> lock(sv.work_mu);
  sv.idle_cv.wait_until(lock, until, [&] { return sv.carrying == 0; });
}

// Registers `item`'s socket `fd` in the loop for `events` (one-shot).
void arm(Supervisor& sv, LoopItem* item, int fd, std::uint32_t events, bool& registered) {
  epoll_event ev{};
  ev.events = events | EPOLLONESHOT;
  ev.data.ptr = item;
  if (epoll_ctl(sv.ep, registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, &ev) != 0 &&
      errno == ENOENT) {
    epoll_ctl(sv.ep, EPOLL_CTL_ADD, fd, &ev);
  }
  registered = true;
}

// Every entry of the peers map whose socket went (its process gone, its descriptor closed or
// reused): out. Called with sv.mu held, when the map has doubled since the last sweep, so that
// its size follows the program's live proxied sockets at a constant cost per connect.
void sweep_peers(Supervisor& sv) {
  if (sv.peers.size() < sv.sweep_at) return;
  for (auto it = sv.peers.begin(); it != sv.peers.end();) {
    const int sock = take_fd(it->second.pid, it->second.fd);
    const bool live = sock >= 0 && cookie_of(sock) == it->second.cookie;
    if (sock >= 0) close(sock);
    it = live ? std::next(it) : sv.peers.erase(it);
  }
  sv.sweep_at = std::max<std::size_t>(1024, 2 * sv.peers.size());
}

// A dial ended: its lines, its outcome to every notification that waits for it.
void finish(Supervisor& sv, DialOp* op) {
  sv.connector.report(op->dial, op->verdict, op->t0, op->pid);
  const int e = core::Connector::outcome_errno(op->dial);
  std::vector<std::uint64_t> ids;
  {
    std::lock_guard<std::mutex> lock(sv.mu);
    sv.flights.erase(op->ino);
    ids.swap(op->ids);
    if (e == 0) {
      PeerEntry p;
      p.dst = op->dst;
      p.len = op->dst_len;
      p.pid = op->pid;
      p.fd = op->fd;
      p.cookie = cookie_of(op->sock);
      sv.peers[op->ino] = p;
      sweep_peers(sv);
    }
  }
  for (const std::uint64_t id : ids) reply(sv.listener, id, e);
}

// Runs a dial in the loop from step `s` until it waits or ends.
void advance(Supervisor& sv, DialOp* op, socks5::Dial::Step s) {
  core::Connector::set_line_pid(op->pid);
  for (;;) {
    switch (s.next) {
      case socks5::Dial::Next::connect: {
        const int rc = connect(op->dial.fd(), op->dial.address(), op->dial.address_length());
        s = op->dial.on_connect(rc == 0 ? 0 : errno);
        continue;
      }
      case socks5::Dial::Next::wait:
        op->until = s.until;
        arm(sv, op, op->dial.fd(), static_cast<std::uint32_t>(s.events), op->registered);
        core::Connector::set_line_pid(0);
        return;
      case socks5::Dial::Next::done:
      case socks5::Dial::Next::failed:
        if (op->registered) epoll_ctl(sv.ep, EPOLL_CTL_DEL, op->dial.fd(), nullptr);
        op->registered = false;
        finish(sv, op);
        close(op->sock);
        op->done = true;
        core::Connector::set_line_pid(0);
        return;
    }
  }
}

void DialOp::on_event(Supervisor& sv, std::uint32_t events) {
  advance(sv, this, dial.on_ready(static_cast<short>(events)));
}

void DialOp::on_timeout(Supervisor& sv) {
  advance(sv, this, dial.on_timeout());
}

// ---------------------------------------------------------------------------------------------
// connect()

// A name behind a fake address under a direct rule: resolved here, then connected directly.
int connect_by_name(int sock, int family, const std::string& name, std::uint16_t port) {
  addrinfo hints{};
  hints.ai_family = family == AF_INET ? AF_INET : AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = family == AF_INET6 ? (AI_V4MAPPED | AI_ALL) : 0;
  addrinfo* list = nullptr;
  if (getaddrinfo(name.c_str(), std::to_string(port).c_str(), &hints, &list) != 0) {
    return EHOSTUNREACH;
  }
  int e = EHOSTUNREACH;
  for (addrinfo* ai = list; ai != nullptr; ai = ai->ai_next) {
    if (ai->ai_family != family) continue;
    e = connect(sock, ai->ai_addr, ai->ai_addrlen) == 0 ? 0 : errno;
    break;
  }
  freeaddrinfo(list);
  return e;
}

// The address of a UNIX socket as the PROGRAM would resolve it: a relative path in its
// working directory, an absolute one under its root (/proc/PID/cwd and /proc/PID/root: the
// kernel follows them into the program's own). Abstract addresses are as they are. False when
// the path does not fit.
bool unix_in_program(pid_t pid, const sockaddr_storage& in, socklen_t len, sockaddr_un& out,
                     socklen_t& out_len) {
  const auto& un = reinterpret_cast<const sockaddr_un&>(in);
  const std::size_t base = offsetof(sockaddr_un, sun_path);
  std::memcpy(&out, &in, std::min<std::size_t>(len, sizeof out));
  out_len = len;
  if (len <= base || un.sun_path[0] == '\0') return true;  // unnamed, abstract
  const std::size_t path_len = strnlen(un.sun_path, len - base);
  const std::string path(un.sun_path, path_len);
  const std::string where = "/proc/" + std::to_string(pid) + (path[0] == '/' ? "/root" : "/cwd/");
  const std::string full = where + path;
  if (full.size() + 1 > sizeof out.sun_path) return false;
  std::memset(out.sun_path, 0, sizeof out.sun_path);
  std::memcpy(out.sun_path, full.c_str(), full.size() + 1);
  out_len = static_cast<socklen_t>(base + full.size() + 1);
  return true;
}

// connect() of a socket that is not an internet one (a UNIX socket). A single-threaded program
// does it itself (CONTINUE: its working directory, root and credentials, exactly; nothing can
// change its descriptor or memory while its only thread waits here). For a program with more
// threads the supervisor does it on its duplicate, with the path resolved as the program
// would (the peer's SO_PEERCRED then names the supervisor's process; doc/supervisor.md).
void connect_other(Supervisor& sv, const seccomp_notif& req, pid_t pid, int sock,
                   const sockaddr_storage& dst, socklen_t len) {
  if (threads_of(pid) == 1 && still_valid(sv.listener, req.id)) {
    close(sock);
    reply_continue(sv.listener, req.id);
    return;
  }
  const std::uint64_t id = req.id;
  post(sv, [&sv, id, pid, sock, dst, len] {
    int e = 0;
    if (dst.ss_family == AF_UNIX) {
      sockaddr_un un{};
      socklen_t un_len = 0;
      if (!unix_in_program(pid, dst, len, un, un_len)) {
        e = ENAMETOOLONG;
      } else if (connect(sock, reinterpret_cast<sockaddr*>(&un), un_len) != 0) {
        e = errno;
      }
    } else if (connect(sock, reinterpret_cast<const sockaddr*>(&dst), len) != 0) {
      e = errno;
    }
    close(sock);
    reply(sv.listener, id, e);
  });
}

// A direct connect on the program's socket: at once for a non-blocking one (EINPROGRESS, as
// the kernel says), by a worker for a blocking one (it waits as the kernel's would, and the
// program can be interrupted meanwhile).
void connect_direct(Supervisor& sv, std::uint64_t id, int sock, const sockaddr_storage& dst,
                    socklen_t len, const std::string& name, std::uint16_t port, int family) {
  if (name.empty() && !blocking(sock)) {
    const int e = connect(sock, reinterpret_cast<const sockaddr*>(&dst), len) == 0 ? 0 : errno;
    close(sock);
    reply(sv.listener, id, e);
    return;
  }
  post(sv, [&sv, id, sock, dst, len, name, port, family] {
    const int e = !name.empty() ? connect_by_name(sock, family, name, port)
                  : connect(sock, reinterpret_cast<const sockaddr*>(&dst), len) == 0 ? 0
                                                                                     : errno;
    close(sock);
    reply(sv.listener, id, e);
  });
}

// Where a name server query of the program's (remote-DNS mode) goes: the responder, which
// answers it (or asks `server` for a name a direct rule keeps local).
void remember_dns_server(Supervisor& sv, int sock, const sockaddr_storage& server, socklen_t len) {
  sockaddr_storage local{};
  socklen_t llen = sizeof local;
  if (getsockname(sock, reinterpret_cast<sockaddr*>(&local), &llen) != 0) return;
  std::lock_guard<std::mutex> lock(sv.mu);
  if (sv.dns_servers.size() > 4096) sv.dns_servers.clear();  // bounded: the oldest go
  sv.dns_servers[std::string(reinterpret_cast<const char*>(&local), llen)] = {server, len};
}

// ---------------------------------------------------------------------------------------------
// Sends with an address: sendto (with one), sendmsg and sendmmsg (always: the address is in
// memory). The supervisor performs every one itself on its duplicate of the program's socket,
// from copies of the program's buffers taken once: nothing the program changes afterwards
// (the address, the descriptor, the data) can change where a datagram goes.

constexpr std::size_t kMaxDatagram = 65536;
constexpr std::size_t kMaxStream = 1 << 20;  // a stream send of more is sent in part
constexpr std::size_t kMaxMessages = 1024;   // UIO_MAXIOV: sendmmsg's own limit

// One message as read from the program: its address (as read), data and ancillary data.
struct Message {
  sockaddr_storage name{};
  socklen_t name_len = 0;
  bool has_name = false;
  std::vector<std::uint8_t> data;
  std::vector<std::uint8_t> control;
};

// Reads the msghdr at `addr` of process `pid` into `m` (data at most `limit`). 0 or an errno.
int read_message(pid_t pid, std::uint64_t addr, std::size_t limit, Message& m) {
  msghdr remote{};
  if (!read_memory(pid, addr, &remote, sizeof remote)) return EFAULT;
  if (remote.msg_name != nullptr && remote.msg_namelen > 0) {
    if (remote.msg_namelen > sizeof m.name) return EINVAL;
    m.name_len = remote.msg_namelen;
    if (!read_memory(pid, reinterpret_cast<std::uint64_t>(remote.msg_name), &m.name, m.name_len))
      return EFAULT;
    m.has_name = true;
  }
  if (remote.msg_iovlen > kMaxMessages) return EMSGSIZE;
  std::vector<iovec> iov(remote.msg_iovlen);
  if (!iov.empty() && !read_memory(pid, reinterpret_cast<std::uint64_t>(remote.msg_iov), iov.data(),
                                   iov.size() * sizeof(iovec)))
    return EFAULT;
  for (const auto& v : iov) {
    const std::size_t at = m.data.size();
    const std::size_t take = std::min(v.iov_len, limit - at);
    m.data.resize(at + take);
    if (!read_memory(pid, reinterpret_cast<std::uint64_t>(v.iov_base), m.data.data() + at, take))
      return EFAULT;
    if (m.data.size() >= limit) break;
  }
  if (remote.msg_control != nullptr && remote.msg_controllen > 0) {
    if (remote.msg_controllen > 4096) return EINVAL;
    m.control.resize(remote.msg_controllen);
    if (!read_memory(pid, reinterpret_cast<std::uint64_t>(remote.msg_control), m.control.data(),
                     m.control.size()))
      return EFAULT;
  }
  return 0;
}

// Ancillary data as the program meant it: descriptors passed (SCM_RIGHTS) are the program's
// numbers, replaced by the supervisor's duplicates of them (closed by the caller, `taken`);
// credentials (SCM_CREDENTIALS) naming the program's process name this one (the kernel takes
// only the sender's own).
int translate_control(pid_t pid, std::vector<std::uint8_t>& control, std::vector<int>& taken) {
  if (control.empty()) return 0;
  msghdr m{};
  m.msg_control = control.data();
  m.msg_controllen = control.size();
  for (cmsghdr* c = CMSG_FIRSTHDR(&m); c != nullptr; c = CMSG_NXTHDR(&m, c)) {
    if (c->cmsg_level != SOL_SOCKET) continue;
    if (c->cmsg_type == SCM_RIGHTS) {
      const std::size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      auto* fds = reinterpret_cast<int*>(CMSG_DATA(c));
      for (std::size_t i = 0; i < n; ++i) {
        int theirs = 0;
        std::memcpy(&theirs, fds + i, sizeof theirs);
        const int ours = take_fd(pid, theirs);
        if (ours < 0) return EBADF;
        taken.push_back(ours);
        std::memcpy(fds + i, &ours, sizeof ours);
      }
    } else if (c->cmsg_type == SCM_CREDENTIALS) {
      ucred cred{};
      std::memcpy(&cred, CMSG_DATA(c), sizeof cred);
      if (cred.pid == pid) cred.pid = getpid();
      std::memcpy(CMSG_DATA(c), &cred, sizeof cred);
    }
  }
  return 0;
}

// ---------------------------------------------------------------------------------------------
// UDP through the proxy (RFC 1928 section 7), for a program's UDP socket: the library's own
// wrapping (the section 7 header, fake addresses sent as names) and unwrapping (reassembly
// and the connected peer's filter, shim/udp_in.hpp). The supervisor holds the association's
// control connection. Sent datagrams leave from the program's socket to the relay; received
// ones are unwrapped by the supervisor when the program asks for them with their source
// (recvfrom with an address, recvmsg, recvmmsg). A socket connected to a destination through
// the proxy is connected to a socket of the supervisor's instead (`local`), which relays both
// ways: then send, write, recv and read need no supervisor at all.

struct Assoc {
  std::mutex mu;
  std::condition_variable made_cv;
  bool making = false;
  int error = 0;  // the association failed, or its proxy ended it
  int control = -1;
  int family = AF_INET;
  std::size_t proxy = 0;
  sockaddr_storage relay{};
  socklen_t relay_len = 0;
  core::Reassembly reassembly;  // under mu
  // The program's socket: its process, number and identity (for the sweep).
  pid_t pid = 0;
  int fd = -1;
  std::uint64_t cookie = 0;
  // Connected through the proxy: the peer as the program named it and as a destination,
  // and the supervisor's socket the program's is connected to.
  bool connected = false;
  sockaddr_storage peer{};
  socklen_t peer_len = 0;
  core::Destination peer_dest;
  std::array<char, 256> peer_name{};
  core::PeerFilter filter;
  int local = -1;
  sockaddr_storage prog_addr{};  // the program's socket's address, as `local` sees it
  socklen_t prog_len = 0;
  // `local`'s own association (a relay takes datagrams from the client address it first saw:
  // the program's socket and `local` each need one).
  int lcontrol = -1;
  sockaddr_storage lrelay{};
  socklen_t lrelay_len = 0;
  // `local`'s association is made with its first datagram (connect() itself sends nothing,
  // as the kernel's does not): datagrams wait for it here (bounded).
  bool lmaking = false;
  std::deque<std::vector<std::uint8_t>> lqueue;
};

constexpr std::size_t kMaxHeader = 4 + 1 + 255 + 2;

// The section 7 header for `d` (a name when it has one).
socks5::Bytes udp_header(const core::Destination& d) {
  socks5::Bytes out;
  (void)socks5::wire::encode_udp_header(0, core::target_of(d), out);
  return out;
}

// The association of socket `sock` (its cookie), or null.
std::shared_ptr<Assoc> assoc_of(Supervisor& sv, std::uint64_t cookie) {
  std::lock_guard<std::mutex> lock(sv.mu);
  auto it = sv.assocs.find(cookie);
  return it == sv.assocs.end() ? nullptr : it->second;
}

void close_assoc(Assoc& a) {
  if (a.control >= 0) close(a.control);
  if (a.local >= 0) close(a.local);
  if (a.lcontrol >= 0) close(a.lcontrol);
  a.control = a.local = a.lcontrol = -1;
}

// A UDP ASSOCIATE for datagrams from `from` (a socket's bound address; zeros when unknown):
// 0 with the control connection and the relay (in `family`), or the errno (after the
// library's line).
int associate(Supervisor& sv, pid_t pid, int family, const socks5::Address& from, int& control,
              sockaddr_storage& relay_out, socklen_t& relay_len, std::size_t& proxy) {
  if (sv.config.chain == socks5::ChainMode::strict && sv.config.proxies.size() > 1) {
    sv.connector.line(LogLevel::error, pid,
                      "UDP through a strict chain of %zu proxies is not supported",
                      sv.config.proxies.size());
    return EOPNOTSUPP;
  }
  socks5::DialRequest request;
  request.command = socks5::wire::Command::udp_associate;
  request.target = from;
  core::Connector::set_line_pid(pid);
  socks5::Dial dial(sv.connector.plan(), socks5::DialSocket{}, std::move(request),
                    socks5::Deadline::after(sv.config.timeout));
  socks5::run_blocking(dial);
  core::Connector::set_line_pid(0);
  if (dial.step().next != socks5::Dial::Next::done) {
    sv.connector.line(LogLevel::error, pid, "UDP ASSOCIATE failed: %s",
                      settings::failure_text(dial, sv.config).c_str());
    return core::Connector::outcome_errno(dial);
  }
  proxy = dial.proxy();
  const socks5::Address relay = socks5::reachable_bound(dial.bound(), dial.endpoint());
  sockaddr_storage ss{};
  relay_len = 0;
  if (relay.to_sockaddr(ss) != 0 &&
      socks5::fit_family(reinterpret_cast<sockaddr*>(&ss), family, relay_out)) {
    relay_len = relay_out.ss_family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
  }
  if (relay_len == 0) return EAFNOSUPPORT;
  control = dial.release_fd();
  sv.connector.line(LogLevel::info, pid, "UDP associated via %s: relay %s",
                    sv.connector.proxy_text(proxy).c_str(), relay.to_string().c_str());
  return 0;
}

// The bound address of `sock` as a SOCKS address (zeros when it has no port yet).
socks5::Address bound_of(int sock) {
  sockaddr_storage local{};
  socklen_t llen = sizeof local;
  if (getsockname(sock, reinterpret_cast<sockaddr*>(&local), &llen) == 0) {
    if (auto addr = socks5::Address::from_sockaddr(reinterpret_cast<sockaddr*>(&local), llen);
        addr && addr->port() != 0) {
      return *addr;
    }
  }
  return socks5::Address::ipv4({0, 0, 0, 0}, 0);
}

// Associations whose socket went: out, when the map doubled. Called with sv.mu held.
void sweep_assocs(Supervisor& sv) {
  if (sv.assocs.size() < sv.assoc_sweep_at) return;
  for (auto it = sv.assocs.begin(); it != sv.assocs.end();) {
    const int sock = take_fd(it->second->pid, it->second->fd);
    const bool live = sock >= 0 && cookie_of(sock) == it->first;
    if (sock >= 0) close(sock);
    if (!live) {
      std::lock_guard<std::mutex> al(it->second->mu);
      close_assoc(*it->second);
      it = sv.assocs.erase(it);
    } else {
      ++it;
    }
  }
  sv.assoc_sweep_at = std::max<std::size_t>(256, 2 * sv.assocs.size());
}

// The association of the program's socket `sock` (its entry, and with `relay` the UDP
// ASSOCIATE for its own datagrams), made now (blocking: by a worker) when it has none. Null
// with `error` set when it cannot be made (after one line, the library's).
std::shared_ptr<Assoc> ensure_assoc(Supervisor& sv, pid_t pid, int fd, int sock,
                                    const core::SocketFacts& facts, int& error, bool relay = true) {
  const std::uint64_t cookie = cookie_of(sock);
  std::shared_ptr<Assoc> a;
  {
    std::lock_guard<std::mutex> lock(sv.mu);
    auto& slot = sv.assocs[cookie];
    if (!slot) {
      slot = std::make_shared<Assoc>();
      slot->pid = pid;
      slot->fd = fd;
      slot->cookie = cookie;
      slot->family = facts.family;
      sweep_assocs(sv);
    }
    a = slot;
  }
  if (!relay) return a;
  std::unique_lock<std::mutex> lock(a->mu);
  a->made_cv.wait(lock, [&] { return !a->making; });
  if (a->control >= 0 || a->error != 0) {
    error = a->error;
    return error == 0 ? a : nullptr;
  }
  a->making = true;
  lock.unlock();
  int control = -1;
  sockaddr_storage relay_addr{};
  socklen_t relay_len = 0;
  std::size_t proxy = 0;
  error = associate(sv, pid, facts.family, bound_of(sock), control, relay_addr, relay_len, proxy);
  lock.lock();
  a->making = false;
  if (error == 0) {
    a->control = control;
    a->relay = relay_addr;
    a->relay_len = relay_len;
    a->proxy = proxy;
  }
  lock.unlock();
  a->made_cv.notify_all();
  return error == 0 ? a : nullptr;
}

// The association's control connection ended (the proxy closed it): its errno, once said.
int assoc_error(Supervisor& sv, Assoc& a) {
  std::lock_guard<std::mutex> lock(a.mu);
  if (a.error != 0) return a.error;
  pollfd p{a.control, POLLIN | POLLRDHUP, 0};
  if (a.control < 0 || poll(&p, 1, 0) == 0) return 0;
  a.error = ECONNRESET;
  sv.connector.line(LogLevel::error, a.pid,
                    "UDP association with proxy %s ended: the proxy closed its control connection",
                    sv.connector.proxy_text(a.proxy).c_str());
  return a.error;
}

// One datagram for `d` to the relay `relay`: the header and the data, from socket `from`.
int send_via_relay(const sockaddr_storage& relay, socklen_t relay_len, int from,
                   const core::Destination& d, const std::uint8_t* data, std::size_t len, int flags,
                   std::uint64_t& sent) {
  const socks5::Bytes header = udp_header(d);
  iovec iov[2] = {{const_cast<std::uint8_t*>(header.data()), header.size()},
                  {const_cast<std::uint8_t*>(data), len}};
  msghdr m{};
  m.msg_name = const_cast<sockaddr_storage*>(&relay);
  m.msg_namelen = relay_len;
  m.msg_iov = iov;
  m.msg_iovlen = 2;
  const ssize_t n = sendmsg(from, &m, (flags & ~MSG_FASTOPEN) | MSG_NOSIGNAL);
  if (n < 0) return errno;
  sent =
      n >= static_cast<ssize_t>(header.size()) ? static_cast<std::uint64_t>(n) - header.size() : 0;
  return 0;
}

// The source the program sees for a datagram the relay reported from `src`: its peer as it
// named it (connected), else the address in the socket's family; a name, the fake address it
// stands for.
socklen_t source_for(Supervisor& sv, Assoc& a, const socks5::Address& src, sockaddr_storage& out) {
  out = sockaddr_storage{};
  if (a.connected) {
    out = a.peer;
    return a.peer_len;
  }
  if (src.is_ip()) {
    sockaddr_storage ss{};
    if (src.to_sockaddr(ss) == 0 ||
        !socks5::fit_family(reinterpret_cast<sockaddr*>(&ss), a.family, out)) {
      return 0;
    }
    return out.ss_family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
  }
  if (sv.dns == nullptr) return 0;
  auto n = sv.dns->lookup_or_add(src.host());
  if (!n) return 0;
  if (a.family == AF_INET && n->has_v4()) {
    auto* in = reinterpret_cast<sockaddr_in*>(&out);
    in->sin_family = AF_INET;
    in->sin_port = htons(src.port());
    sv.dns->address4(*n, reinterpret_cast<std::uint8_t*>(&in->sin_addr));
    return sizeof *in;
  }
  auto* in6 = reinterpret_cast<sockaddr_in6*>(&out);
  in6->sin6_family = AF_INET6;
  in6->sin6_port = htons(src.port());
  sv.dns->address6(*n, in6->sin6_addr.s6_addr);
  return sizeof *in6;
}

// A datagram the relay sent, unwrapped: its payload and source. False when it is not one for
// the program (malformed, a fragment that does not end a sequence, not from the peer).
bool unwrap(Supervisor& sv, Assoc& a, const std::uint8_t* dg, std::size_t len, bool peek,
            std::vector<std::uint8_t>& payload, socks5::Address& source) {
  auto h = socks5::wire::decode_udp_header(socks5::ByteView(dg, len));
  if (!h) return false;
  std::lock_guard<std::mutex> lock(a.mu);
  if (h->value.frag == 0) {
    if (!core::from_peer(a.filter, h->value.destination)) return false;
    payload.assign(dg + h->size, dg + len);
    source = h->value.destination;
    return true;
  }
  const auto outcome = a.reassembly.feed(h->value.frag, h->value.destination,
                                         socks5::ByteView(dg + h->size, len - h->size), peek,
                                         Clock::now(), payload, source);
  (void)sv;
  return outcome == core::Reassembly::Outcome::complete && core::from_peer(a.filter, source);
}

// `local`'s UDP ASSOCIATE (a worker's: it blocks for the proxy), then the datagrams that
// waited for it.
void make_local_association(Supervisor& sv, const std::shared_ptr<Assoc>& a) {
  int control = -1;
  sockaddr_storage relay{};
  socklen_t relay_len = 0;
  std::size_t proxy = 0;
  int local = -1;
  {
    std::lock_guard<std::mutex> lock(a->mu);
    local = a->local;
  }
  const int e = local < 0 ? EBADF
                          : associate(sv, a->pid, a->family, bound_of(local), control, relay,
                                      relay_len, proxy);
  std::lock_guard<std::mutex> lock(a->mu);
  a->lmaking = false;
  if (e != 0 || a->local != local) {
    if (control >= 0) close(control);
    a->lqueue.clear();
    if (e != 0) a->error = e;
    return;
  }
  a->lcontrol = control;
  a->lrelay = relay;
  a->lrelay_len = relay_len;
  a->proxy = proxy;
  for (const auto& dg : a->lqueue) {
    std::uint64_t sent = 0;
    (void)send_via_relay(a->lrelay, a->lrelay_len, a->local, a->peer_dest, dg.data(), dg.size(),
                         MSG_DONTWAIT, sent);
  }
  a->lqueue.clear();
}

// Did `from` come from `a`'s relaying socket's relay? (Written by a worker when the
// association is made.)
bool from_relay(Assoc& a, const sockaddr_storage& from, socklen_t flen) {
  std::lock_guard<std::mutex> lock(a.mu);
  return a.lcontrol >= 0 && flen == a.lrelay_len && std::memcmp(&from, &a.lrelay, flen) == 0;
}

// The supervisor's side of a socket connected through the proxy: what the program sends
// (arriving here) goes wrapped to the relay; what the relay sends comes back unwrapped, from
// here, so the program's own recv and read see only the payload.
struct LocalRelay final : LoopItem {
  std::shared_ptr<Assoc> a;
  bool registered = false;
  void on_event(Supervisor& sv, std::uint32_t) override {
    std::uint8_t buf[kMaxDatagram + kMaxHeader];
    for (int i = 0; i < 64; ++i) {
      sockaddr_storage from{};
      socklen_t flen = sizeof from;
      const ssize_t n = recvfrom(a->local, buf, sizeof buf, MSG_DONTWAIT,
                                 reinterpret_cast<sockaddr*>(&from), &flen);
      if (n < 0) break;
      if (flen == a->prog_len && std::memcmp(&from, &a->prog_addr, flen) == 0) {
        std::unique_lock<std::mutex> lock(a->mu);
        if (a->error != 0) continue;
        if (a->lcontrol < 0) {
          // The first datagram: the association is made by a worker; this one waits.
          if (a->lqueue.size() < 64) a->lqueue.emplace_back(buf, buf + n);
          if (!a->lmaking) {
            a->lmaking = true;
            std::shared_ptr<Assoc> keep = a;
            auto carrying = std::make_shared<Carrying>(sv);
            post(sv, [&sv, keep, carrying] { make_local_association(sv, keep); });
          }
          continue;
        }
        lock.unlock();
        std::uint64_t sent = 0;
        (void)send_via_relay(a->lrelay, a->lrelay_len, a->local, a->peer_dest, buf,
                             static_cast<std::size_t>(n), 0, sent);
      } else if (from_relay(*a, from, flen)) {
        std::vector<std::uint8_t> payload;
        socks5::Address source;
        if (unwrap(sv, *a, buf, static_cast<std::size_t>(n), false, payload, source)) {
          sendto(a->local, payload.data(), payload.size(), MSG_DONTWAIT,
                 reinterpret_cast<sockaddr*>(&a->prog_addr), a->prog_len);
        }
      }  // anyone else: dropped
    }
    std::lock_guard<std::mutex> lock(a->mu);
    if (a->local >= 0 && a->connected) {
      arm(sv, this, a->local, EPOLLIN, registered);
    } else {
      done = true;
    }
  }
  void on_timeout(Supervisor&) override {}
};

// connect() of a UDP socket to a destination through the proxy: the socket is connected to a
// socket of the supervisor's that relays (its association is made with the first datagram:
// connect() sends nothing, as the kernel's does not). Answers the notification.
void connect_udp_proxied(Supervisor& sv, std::uint64_t id, pid_t pid, int fd, int sock,
                         const core::SocketFacts& facts, const sockaddr_storage& dst, socklen_t len,
                         const core::Destination& d) {
  int e = 0;
  std::shared_ptr<Assoc> a = ensure_assoc(sv, pid, fd, sock, facts, e, false);
  LocalRelay* relay = nullptr;
  {
    std::lock_guard<std::mutex> lock(a->mu);
    if (a->local < 0) {
      // Any address (it sends to the relay), the loopback one for the program to reach.
      a->local = socket(a->family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
      sockaddr_storage any{};
      any.ss_family = static_cast<sa_family_t>(a->family);
      const socklen_t any_len = a->family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
      sockaddr_storage here{};
      socklen_t here_len = sizeof here;
      if (a->local < 0 || bind(a->local, reinterpret_cast<sockaddr*>(&any), any_len) != 0 ||
          getsockname(a->local, reinterpret_cast<sockaddr*>(&here), &here_len) != 0) {
        e = errno;
      } else if (a->family == AF_INET) {
        reinterpret_cast<sockaddr_in*>(&here)->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      } else {
        reinterpret_cast<sockaddr_in6*>(&here)->sin6_addr = in6addr_loopback;
      }
      a->prog_len = sizeof a->prog_addr;
      if (e == 0 &&
          (connect(sock, reinterpret_cast<sockaddr*>(&here), here_len) != 0 ||
           getsockname(sock, reinterpret_cast<sockaddr*>(&a->prog_addr), &a->prog_len) != 0)) {
        e = errno;
      }
      if (e != 0 && a->local >= 0) {
        close(a->local);
        a->local = -1;
      }
      if (e == 0) relay = new LocalRelay;
    }
    if (e == 0) {
      a->connected = true;
      a->peer = dst;
      a->peer_len = len;
      a->peer_name = {};
      if (!d.name.empty()) {
        std::memcpy(a->peer_name.data(), d.name.data(),
                    std::min(d.name.size(), a->peer_name.size() - 1));
      }
      a->peer_dest = d;
      a->peer_dest.name = a->peer_name.data();
      a->filter = core::PeerFilter{};
      a->filter.active = true;
      a->filter.family = d.family;
      a->filter.ip = d.ip;
      a->filter.port = d.port;
      a->filter.name = a->peer_name;
    }
  }
  if (relay != nullptr) {
    relay->a = a;
    arm(sv, relay, a->local, EPOLLIN, relay->registered);
    sv.items.push_back(relay);
  }
  close(sock);
  reply(sv.listener, id, e);
}

// What a datagram to `m`'s address gets: kDirect (sent as it is), kConnected (as if it had no
// address: the socket's peer), kProxy (through the association, to `d`), or an errno.
constexpr int kDirect = 0;
constexpr int kConnected = -1;
constexpr int kProxy = -2;

int datagram_route(Supervisor& sv, pid_t pid, const core::SocketFacts& facts, int sock,
                   const Message& m, core::Destination& d, std::array<char, 256>& name) {
  const core::AddressReading r = core::read_address(
      facts, core::AddressUse::send, reinterpret_cast<const sockaddr*>(&m.name), m.name_len, d);
  if (r.kind == core::AddressReading::Kind::refused) return r.error;
  if (r.kind == core::AddressReading::Kind::unspecified) return kConnected;
  if (v6only(sock, r)) return ENETUNREACH;
  core::Context ctx;
  if (sv.dns != nullptr && sv.dns->in_range(d.family, d.ip.data())) {
    ctx.fake = true;
    if (sv.dns->name_of(d.family, d.ip.data(), name.data(), name.size())) d.name = name.data();
  }
  const core::Verdict v = core::classify(sv.config, core::Operation::datagram, d, ctx);
  if (v.action == Action::reject) {
    sv.connector.report_refusal(v, d, "UDP", pid);
    return core::refusal_errno(v.refusal);
  }
  if (v.action == Action::direct || v.action == Action::loopback) return kDirect;
  if (facts.type == SOCK_DGRAM && facts.protocol == IPPROTO_UDP) {
    // In remote-DNS mode a query to a name server goes to the responder, which answers it.
    if (d.port == 53 && sv.responder >= 0 && !(v.rule > 0)) return kConnected - 10;
    return kProxy;
  }
  // ICMP ("ping" sockets) and raw sockets: SOCKS carries only UDP. Never sent direct.
  const core::Verdict refused{Action::reject, v.why, v.rule, core::Refusal::udp_not_proxied};
  sv.connector.report_refusal(refused, d, "datagram", pid);
  return ENETUNREACH;
}

// A send notification with every message copied once from the program: performed later (by
// a worker, when it needs an association or may block) from these copies only.
struct SendJob {
  std::uint64_t id = 0;
  int nr = 0;
  pid_t pid = 0;
  int fd = -1;
  int sock = -1;
  core::SocketFacts facts;
  int flags = 0;
  std::vector<Message> msgs;
  std::uint64_t vec = 0;  // sendmmsg: where the program's mmsghdr array is (msg_len back)
  int error = 0;          // reading the messages failed at msgs.size() (0: all read)
};

// Sends one message as the program asked: 0 with the octets sent in `sent`, or the errno.
int send_one(Supervisor& sv, SendJob& job, Message& m, std::shared_ptr<Assoc>& assoc,
             std::uint64_t& sent) {
  const pid_t pid = job.pid;
  const int sock = job.sock;
  const auto& facts = job.facts;
  const int flags = job.flags;
  const bool inet = core::is_inet(facts);
  bool with_name = m.has_name;
  if (inet && m.has_name) {
    if (facts.type == SOCK_STREAM) {
      if ((flags & MSG_FASTOPEN) != 0) return EOPNOTSUPP;  // a connect the supervisor would make
      with_name = false;                                   // tcp_sendmsg ignores the address
    } else {
      core::Destination d;
      std::array<char, 256> name{};
      const int route = datagram_route(sv, pid, facts, sock, m, d, name);
      if (route > 0) return route;
      if (route == kConnected) with_name = false;
      if (route == kConnected - 10) {
        // A DNS query in remote-DNS mode: to the responder (it answers from the fake table).
        m.name = sv.responder_addr;
        m.name_len = sv.responder_len;
      }
      if (route == kProxy) {
        if (!assoc) {
          int e = 0;
          assoc = ensure_assoc(sv, pid, job.fd, sock, facts, e);
          if (!assoc) return e;
        }
        if (const int e = assoc_error(sv, *assoc); e != 0) return e;
        if (m.data.size() + kMaxHeader > kMaxDatagram + kMaxHeader) return EMSGSIZE;
        return send_via_relay(assoc->relay, assoc->relay_len, sock, d, m.data.data(), m.data.size(),
                              flags, sent);
      }
    }
  }
  sockaddr_un un{};
  socklen_t un_len = 0;
  if (!inet && with_name && m.name.ss_family == AF_UNIX) {
    if (!unix_in_program(pid, m.name, m.name_len, un, un_len)) return ENAMETOOLONG;
  }
  std::vector<int> taken;
  if (const int e = translate_control(pid, m.control, taken); e != 0) {
    for (const int t : taken) close(t);
    return e;
  }
  iovec one{m.data.data(), m.data.size()};
  msghdr out{};
  if (with_name) {
    out.msg_name = un_len != 0 ? static_cast<void*>(&un) : static_cast<void*>(&m.name);
    out.msg_namelen = un_len != 0 ? un_len : m.name_len;
  }
  out.msg_iov = &one;
  out.msg_iovlen = 1;
  out.msg_control = m.control.empty() ? nullptr : m.control.data();
  out.msg_controllen = m.control.size();
  const ssize_t n = sendmsg(sock, &out, flags | MSG_NOSIGNAL);
  const int e = n < 0 ? errno : 0;
  for (const int t : taken) close(t);
  if (n < 0) return e;
  sent = static_cast<std::uint64_t>(n);
  return 0;
}

// Performs a job and answers it.
void run_job(Supervisor& sv, SendJob& job) {
  std::shared_ptr<Assoc> assoc = assoc_of(sv, cookie_of(job.sock));
  int e = 0;
  std::uint64_t val = 0;
  std::size_t done = 0;
  for (; done < job.msgs.size(); ++done) {
    std::uint64_t n = 0;
    const int err = send_one(sv, job, job.msgs[done], assoc, n);
    if (err != 0) {
      if (done == 0) e = err;
      break;
    }
    if (job.nr == SYS_sendmmsg) {
      const auto len = static_cast<unsigned>(n);
      const std::uint64_t at = job.vec + done * sizeof(mmsghdr) + offsetof(mmsghdr, msg_len);
      if (!write_memory(job.pid, at, &len, sizeof len)) {
        if (done == 0) e = EFAULT;
        break;
      }
    } else {
      val = n;
    }
  }
  if (done == job.msgs.size() && job.error != 0 && done == 0) e = job.error;
  if (job.nr == SYS_sendmmsg && e == 0) val = done;
  close(job.sock);
  reply(sv.listener, job.id, e, static_cast<long long>(val));
}

// Whether any message of `job` goes through the proxy (then a worker runs it: the association
// may have to be made).
bool needs_proxy(Supervisor& sv, SendJob& job) {
  if (!core::is_inet(job.facts) || job.facts.type == SOCK_STREAM) return false;
  for (const Message& m : job.msgs) {
    if (!m.has_name) continue;
    core::Destination d;
    core::Context ctx;
    const core::AddressReading r =
        core::read_address(job.facts, core::AddressUse::send,
                           reinterpret_cast<const sockaddr*>(&m.name), m.name_len, d);
    if (r.kind != core::AddressReading::Kind::destination) continue;
    if (sv.dns != nullptr && sv.dns->in_range(d.family, d.ip.data())) ctx.fake = true;
    const core::Verdict v = core::classify(sv.config, core::Operation::datagram, d, ctx);
    if (v.action == Action::proxy) return true;
  }
  return false;
}

void on_send(Supervisor& sv, const seccomp_notif& req) {
  const pid_t pid = process_of(static_cast<pid_t>(req.pid));
  const int fd = static_cast<int>(req.data.args[0]);
  const int sock = take_checked(sv, req, pid, fd);
  if (sock < 0) return;
  auto job = std::make_shared<SendJob>();
  job->id = req.id;
  job->nr = static_cast<int>(req.data.nr);
  job->pid = pid;
  job->fd = fd;
  job->sock = sock;
  job->facts = facts_of(sock);
  // A UNIX socket of a single-threaded program: sent by the program itself (its credentials,
  // exactly), as for connect.
  if (!core::is_inet(job->facts) && threads_of(pid) == 1) {
    close(sock);
    reply_continue(sv.listener, req.id);
    return;
  }
  job->flags = static_cast<int>(
      job->nr == SYS_sendto ? req.data.args[3] : req.data.args[job->nr == SYS_sendmsg ? 2 : 3]);
  const std::size_t limit = job->facts.type == SOCK_STREAM ? kMaxStream : kMaxDatagram;
  // Every message copied now, once.
  if (job->nr == SYS_sendto) {
    Message m;
    m.name_len = static_cast<socklen_t>(req.data.args[5]);
    const auto size = std::min(static_cast<std::size_t>(req.data.args[2]), limit);
    if (m.name_len > sizeof m.name) {
      job->error = EINVAL;
    } else if (!read_memory(pid, req.data.args[4], &m.name, m.name_len)) {
      job->error = EFAULT;
    } else {
      m.has_name = true;
      m.data.resize(size);
      if (!read_memory(pid, req.data.args[1], m.data.data(), size)) {
        job->error = EFAULT;
      } else {
        job->msgs.push_back(std::move(m));
      }
    }
  } else if (job->nr == SYS_sendmsg) {
    Message m;
    job->error = read_message(pid, req.data.args[1], limit, m);
    if (job->error == 0) job->msgs.push_back(std::move(m));
  } else {  // sendmmsg: every message, as the kernel takes them (at most UIO_MAXIOV)
    job->vec = req.data.args[1];
    const auto vlen = std::min<std::size_t>(req.data.args[2], kMaxMessages);
    for (std::size_t i = 0; i < vlen; ++i) {
      Message m;
      job->error =
          read_message(pid, job->vec + i * sizeof(mmsghdr) + offsetof(mmsghdr, msg_hdr), limit, m);
      if (job->error != 0) break;
      job->msgs.push_back(std::move(m));
    }
  }
  // What may wait (a blocking socket's full buffer, an association to make) is a worker's;
  // the rest is sent here.
  if (blocking(sock) || needs_proxy(sv, *job)) {
    auto carrying = std::make_shared<Carrying>(sv);
    post(sv, [&sv, job, carrying] { run_job(sv, *job); });
    return;
  }
  run_job(sv, *job);
}

// ---------------------------------------------------------------------------------------------
// Receives with a source (recvfrom with an address, recvmsg, recvmmsg): on a socket with an
// association, the supervisor takes the datagram and unwraps it; on any other, the program's
// own receive goes on (it sends nothing anywhere).

// Reads the datagram at the head of `sock` without taking it, and what the program should get
// of it. 1: `payload` and `src` hold it; 0: dropped (taken off: not for the program); -1 with
// errno (EAGAIN: nothing there).
int peek_datagram(Supervisor& sv, Assoc& a, int sock, std::vector<std::uint8_t>& payload,
                  sockaddr_storage& src, socklen_t& src_len) {
  std::vector<std::uint8_t> buf(kMaxDatagram + kMaxHeader);
  sockaddr_storage from{};
  socklen_t flen = sizeof from;
  const ssize_t n = recvfrom(sock, buf.data(), buf.size(), MSG_PEEK | MSG_DONTWAIT,
                             reinterpret_cast<sockaddr*>(&from), &flen);
  if (n < 0) return -1;
  if (a.connected) {
    // From the supervisor's relaying socket: the payload already; the source is the peer.
    payload.assign(buf.begin(), buf.begin() + n);
    src = a.peer;
    src_len = a.peer_len;
    return 1;
  }
  if (!(flen == a.relay_len && std::memcmp(&from, &a.relay, flen) == 0)) {
    payload.assign(buf.begin(), buf.begin() + n);  // a direct datagram, as it is
    src = from;
    src_len = flen;
    return 1;
  }
  socks5::Address source;
  if (!unwrap(sv, a, buf.data(), static_cast<std::size_t>(n), true, payload, source)) {
    (void)recv(sock, buf.data(), 1, MSG_DONTWAIT);
    return 0;
  }
  src_len = source_for(sv, a, source, src);
  return 1;
}

// Delivers `payload` and `src` into the program's recvmsg-style message at `msg_addr` (or, for
// recvfrom, its buffer and address arguments). 0 with the length to return in `ret`, or an
// errno.
int deliver(pid_t pid, const seccomp_notif& req, std::uint64_t msg_addr,
            const std::vector<std::uint8_t>& payload, const sockaddr_storage& src,
            socklen_t src_len, int flags, long long& ret) {
  std::vector<iovec> iov;
  std::uint64_t name = 0, name_len_at = 0;
  if (req.data.nr == SYS_recvfrom) {
    iov.push_back(iovec{reinterpret_cast<void*>(req.data.args[1]),
                        static_cast<std::size_t>(req.data.args[2])});
    name = req.data.args[4];
    name_len_at = req.data.args[5];
  } else {
    msghdr m{};
    if (!read_memory(pid, msg_addr, &m, sizeof m)) return EFAULT;
    if (m.msg_iovlen > kMaxMessages) return EMSGSIZE;
    iov.resize(m.msg_iovlen);
    if (!iov.empty() && !read_memory(pid, reinterpret_cast<std::uint64_t>(m.msg_iov), iov.data(),
                                     iov.size() * sizeof(iovec)))
      return EFAULT;
    name = reinterpret_cast<std::uint64_t>(m.msg_name);
    name_len_at = name != 0 ? msg_addr + offsetof(msghdr, msg_namelen) : 0;
  }
  std::size_t done = 0;
  for (const auto& v : iov) {
    if (done >= payload.size()) break;
    const std::size_t n = std::min(v.iov_len, payload.size() - done);
    if (!write_memory(pid, reinterpret_cast<std::uint64_t>(v.iov_base), payload.data() + done, n))
      return EFAULT;
    done += n;
  }
  if (name != 0 && name_len_at != 0) {
    socklen_t room = 0;
    if (!read_memory(pid, name_len_at, &room, sizeof room)) return EFAULT;
    if (!write_memory(pid, name, &src, std::min(room, src_len)) ||
        !write_memory(pid, name_len_at, &src_len, sizeof src_len))
      return EFAULT;
  }
  if (req.data.nr != SYS_recvfrom) {
    const int mflags = done < payload.size() ? MSG_TRUNC : 0;
    const std::size_t no_control = 0;
    if (!write_memory(pid, msg_addr + offsetof(msghdr, msg_flags), &mflags, sizeof mflags) ||
        !write_memory(pid, msg_addr + offsetof(msghdr, msg_controllen), &no_control,
                      sizeof no_control))
      return EFAULT;
  }
  ret = static_cast<long long>((flags & MSG_TRUNC) != 0 ? payload.size() : done);
  return 0;
}

// A receive waiting in the loop for the program's blocking socket (within its SO_RCVTIMEO);
// given up when the program's call went (a signal interrupted it).
struct RecvOp final : LoopItem {
  seccomp_notif req{};
  pid_t pid = 0;
  int sock = -1;
  std::shared_ptr<Assoc> a;
  bool registered = false;
  Clock::time_point deadline = Clock::time_point::max();
  void on_event(Supervisor& sv, std::uint32_t) override;
  void on_timeout(Supervisor& sv) override;
  void end(Supervisor& sv, int e, long long val) {
    if (registered) epoll_ctl(sv.ep, EPOLL_CTL_DEL, sock, nullptr);
    close(sock);
    reply(sv.listener, req.id, e, val);
    done = true;
  }
};

// One receive (recvfrom, recvmsg, or the first of recvmmsg): 1 answered (`e`, `val`), 0 must
// wait.
int try_receive(Supervisor& sv, const seccomp_notif& req, pid_t pid, int sock, Assoc& a, int& e,
                long long& val) {
  const int nr = static_cast<int>(req.data.nr);
  const int flags = static_cast<int>(req.data.args[nr == SYS_recvfrom ? 3 : 2]);
  const std::uint64_t msg_addr =
      nr == SYS_recvmmsg ? req.data.args[1] + offsetof(mmsghdr, msg_hdr) : req.data.args[1];
  for (int round = 0; round < 64; ++round) {
    std::vector<std::uint8_t> payload;
    sockaddr_storage src{};
    socklen_t src_len = 0;
    const int got = peek_datagram(sv, a, sock, payload, src, src_len);
    if (got < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK) {
        e = errno;
        return 1;
      }
      return 0;
    }
    if (got == 0) continue;  // dropped: the next one
    // The program's call may have gone meanwhile: the datagram stays queued for it then.
    if (!still_valid(sv.listener, req.id)) {
      e = EINTR;
      return 1;
    }
    long long ret = 0;
    e = deliver(pid, req, msg_addr, payload, src, src_len, flags, ret);
    if (e == 0 && (flags & MSG_PEEK) == 0) {
      std::uint8_t one;
      (void)recv(sock, &one, 1, MSG_DONTWAIT | MSG_TRUNC);  // taken
    }
    if (nr == SYS_recvmmsg && e == 0) {
      const auto len = static_cast<unsigned>(ret);
      write_memory(pid, req.data.args[1] + offsetof(mmsghdr, msg_len), &len, sizeof len);
      ret = 1;  // one message (the rest: the program's next call)
    }
    val = ret;
    return 1;
  }
  return 0;
}

void RecvOp::on_event(Supervisor& sv, std::uint32_t) {
  int e = 0;
  long long val = 0;
  if (try_receive(sv, req, pid, sock, *a, e, val) != 0) {
    end(sv, e == EINTR ? 0 : e, val);
    return;
  }
  arm(sv, this, sock, EPOLLIN, registered);
}

void RecvOp::on_timeout(Supervisor& sv) {
  if (Clock::now() >= deadline) {
    end(sv, EAGAIN, 0);  // the program's SO_RCVTIMEO
    return;
  }
  if (!still_valid(sv.listener, req.id)) {
    end(sv, EINTR, 0);
    return;
  }
  until = std::min(deadline, Clock::now() + std::chrono::seconds(1));  // looks again
}

void on_receive(Supervisor& sv, const seccomp_notif& req) {
  const pid_t pid = process_of(static_cast<pid_t>(req.pid));
  const int sock = take_fd(pid, static_cast<int>(req.data.args[0]));
  if (sock < 0) {
    reply(sv.listener, req.id, EBADF);
    return;
  }
  std::shared_ptr<Assoc> a = assoc_of(sv, cookie_of(sock));
  if (!a || !still_valid(sv.listener, req.id)) {
    close(sock);
    reply_continue(sv.listener, req.id);  // not the supervisor's: the kernel's receive
    return;
  }
  int e = 0;
  long long val = 0;
  if (try_receive(sv, req, pid, sock, *a, e, val) != 0) {
    close(sock);
    reply(sv.listener, req.id, e, val);
    return;
  }
  const int nr = static_cast<int>(req.data.nr);
  const int flags = static_cast<int>(req.data.args[nr == SYS_recvfrom ? 3 : 2]);
  if ((flags & MSG_DONTWAIT) != 0 || !blocking(sock)) {
    close(sock);
    reply(sv.listener, req.id, EAGAIN);
    return;
  }
  auto* op = new RecvOp;
  op->req = req;
  op->pid = pid;
  op->sock = sock;
  op->a = a;
  timeval tv{};
  socklen_t tlen = sizeof tv;
  if (getsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &tv, &tlen) == 0 &&
      (tv.tv_sec != 0 || tv.tv_usec != 0)) {
    op->deadline =
        Clock::now() + std::chrono::seconds(tv.tv_sec) + std::chrono::microseconds(tv.tv_usec);
  }
  op->until = std::min(op->deadline, Clock::now() + std::chrono::seconds(1));
  arm(sv, op, sock, EPOLLIN, op->registered);
  sv.items.push_back(op);
}

// A socket connected through the proxy connects elsewhere (or dissolves): the supervisor's
// relaying socket goes (the association stays for datagrams sent by address).
void end_connected(Supervisor& sv, int sock) {
  std::shared_ptr<Assoc> a = assoc_of(sv, cookie_of(sock));
  if (!a) return;
  std::lock_guard<std::mutex> lock(a->mu);
  a->connected = false;
  a->filter = core::PeerFilter{};
  if (a->local >= 0) close(a->local);  // (the loop's relay ends at its next event)
  if (a->lcontrol >= 0) close(a->lcontrol);
  a->local = a->lcontrol = -1;
}

void on_connect(Supervisor& sv, const seccomp_notif& req) {
  const pid_t pid = process_of(static_cast<pid_t>(req.pid));
  const int fd = static_cast<int>(req.data.args[0]);
  const auto len = static_cast<socklen_t>(req.data.args[2]);
  sockaddr_storage dst{};
  if (len > sizeof dst) {  // move_addr_to_kernel's answer
    reply(sv.listener, req.id, EINVAL);
    return;
  }
  if (!read_memory(pid, req.data.args[1], &dst, len)) {
    reply(sv.listener, req.id, EFAULT);
    return;
  }
  const int sock = take_checked(sv, req, pid, fd);
  if (sock < 0) return;
  const core::SocketFacts facts = facts_of(sock);
  if (!core::is_inet(facts)) {
    connect_other(sv, req, pid, sock, dst, len);
    return;
  }
  // The address as the kernel reads it on this socket: anything but a destination is refused
  // or dissolves the association, never connected "as asked".
  core::Destination d;
  const core::AddressReading reading = core::read_address(
      facts, core::AddressUse::connect, reinterpret_cast<sockaddr*>(&dst), len, d);
  if (reading.kind != core::AddressReading::Kind::destination || v6only(sock, reading)) {
    int e = reading.kind == core::AddressReading::Kind::refused ? reading.error : ENETUNREACH;
    if (reading.kind == core::AddressReading::Kind::unspecified) {
      e = connect(sock, reinterpret_cast<sockaddr*>(&dst), len) == 0 ? 0 : errno;
      end_connected(sv, sock);
    }
    close(sock);
    reply(sv.listener, req.id, e);
    return;
  }
  char name[256] = {};
  core::Context ctx;
  if (sv.dns != nullptr && sv.dns->in_range(d.family, d.ip.data())) {
    ctx.fake = true;
    if (sv.dns->name_of(d.family, d.ip.data(), name, sizeof name)) d.name = name;
  }
  const bool stream = facts.type == SOCK_STREAM;
  const core::Verdict v = core::classify(
      sv.config, stream ? core::Operation::connect : core::Operation::datagram, d, ctx);
  if (!stream) {
    // In remote-DNS mode a name server is never asked from here (the policy refuses raw DNS
    // to it, as the preload does): a resolver of the program's own (Go's, static glibc's) is
    // answered by the supervisor instead, unless a rule of the user's sends it direct.
    const bool dns =
        d.port == 53 && sv.responder >= 0 && !(v.action == Action::direct && v.rule > 0);
    int e = 0;
    if (dns) {
      remember_dns_server(sv, sock, dst, len);
      if (connect(sock, reinterpret_cast<sockaddr*>(&sv.responder_addr), sv.responder_len) != 0) {
        e = errno;
      }
      if (e == 0) remember_dns_server(sv, sock, dst, len);  // its local address is known now
    } else if (v.action == Action::reject) {
      sv.connector.report_refusal(v, d, "UDP", pid);
      e = core::refusal_errno(v.refusal);
    } else if (v.action == Action::direct || v.action == Action::loopback) {
      sv.connector.report_direct(v, d, pid);
      if (connect(sock, reinterpret_cast<sockaddr*>(&dst), len) != 0) e = errno;
    } else if (facts.protocol == IPPROTO_UDP) {
      // Through the proxy: the association, and the socket connected to the supervisor's
      // relaying socket (a worker does it; it answers).
      end_connected(sv, sock);
      connect_udp_proxied(sv, req.id, pid, fd, sock, facts, dst, len, d);
      return;
    } else {
      // ICMP ("ping" sockets) and raw sockets: SOCKS carries only UDP. Never sent direct.
      const core::Verdict r{Action::reject, v.why, v.rule, core::Refusal::udp_not_proxied};
      sv.connector.report_refusal(r, d, "datagram", pid);
      e = ENETUNREACH;
    }
    if (e == 0 || dns) end_connected(sv, sock);
    close(sock);
    reply(sv.listener, req.id, e);
    return;
  }
  struct stat st {};
  const bool have_ino = fstat(sock, &st) == 0;
  {
    std::lock_guard<std::mutex> lock(sv.mu);
    // A connect on a socket whose dial is under way (a restart after a signal, or another
    // call): it gets that dial's outcome, as the kernel's second connect waits for the first.
    if (auto it = have_ino ? sv.flights.find(st.st_ino) : sv.flights.end();
        it != sv.flights.end()) {
      it->second->ids.push_back(req.id);
      close(sock);
      return;
    }
  }
  // Connected already (its dial ended before a restart came): as the kernel says.
  sockaddr_storage peer{};
  socklen_t plen = sizeof peer;
  if (getpeername(sock, reinterpret_cast<sockaddr*>(&peer), &plen) == 0) {
    close(sock);
    reply(sv.listener, req.id, EISCONN);
    return;
  }
  switch (v.action) {
    case Action::reject:
    case Action::loopback:
      if (v.action == Action::reject) {
        sv.connector.report_refusal(v, d, "connect", pid);
        close(sock);
        reply(sv.listener, req.id, core::refusal_errno(v.refusal));
        return;
      }
      [[fallthrough]];
    case Action::direct:
      sv.connector.report_direct(v, d, pid);
      connect_direct(sv, req.id, sock, dst, len, std::string(d.name), d.port, facts.family);
      return;
    case Action::proxy: break;
  }
  socks5::DialSocket ds;
  ds.fd = sock;
  ds.family = facts.family;
  socks5::DialRequest request;
  request.target = core::target_of(d);
  auto* op = new DialOp(sv.connector.plan(), ds, std::move(request),
                        socks5::Deadline::after(sv.config.timeout));
  op->verdict = v;
  op->t0 = Clock::now();
  op->pid = pid;
  op->fd = fd;
  op->sock = sock;
  op->ino = have_ino ? st.st_ino : 0;
  op->dst = dst;
  op->dst_len = len;
  op->ids.push_back(req.id);
  if (have_ino) {
    std::lock_guard<std::mutex> lock(sv.mu);
    sv.flights[op->ino] = op;
  }
  if (blocking(sock)) {
    // A blocking socket's dial blocks (its connect waits for the proxy): a worker's.
    post(sv, [&sv, op] {
      core::Connector::set_line_pid(op->pid);
      socks5::run_blocking(op->dial);  // non-blocking steps with poll: O_NONBLOCK untouched
      core::Connector::set_line_pid(0);
      finish(sv, op);
      close(op->sock);
      delete op;
    });
    return;
  }
  sv.items.push_back(op);
  advance(sv, op, op->dial.start());
}

// ---------------------------------------------------------------------------------------------
// getpeername()

void on_getpeername(Supervisor& sv, const seccomp_notif& req) {
  const pid_t pid = process_of(static_cast<pid_t>(req.pid));
  const int sock = take_fd(pid, static_cast<int>(req.data.args[0]));
  if (sock < 0) {
    reply(sv.listener, req.id, EBADF);
    return;
  }
  struct stat st {};
  PeerEntry peer{};
  bool known = false;
  if (fstat(sock, &st) == 0) {
    std::lock_guard<std::mutex> lock(sv.mu);
    auto it = sv.peers.find(st.st_ino);
    if (it != sv.peers.end() && it->second.cookie == cookie_of(sock)) {
      peer = it->second;
      known = true;
    }
    // While its dial is under way the socket is not connected yet, as the kernel says.
    if (!known && sv.flights.count(st.st_ino) != 0) {
      close(sock);
      reply(sv.listener, req.id, ENOTCONN);
      return;
    }
  }
  if (!known) {
    // A UDP socket connected through the proxy: the peer it asked for, not the supervisor's
    // relaying socket.
    if (std::shared_ptr<Assoc> a = assoc_of(sv, cookie_of(sock))) {
      std::lock_guard<std::mutex> lock(a->mu);
      if (a->connected) {
        peer.dst = a->peer;
        peer.len = a->peer_len;
        known = true;
      }
    }
  }
  if (!known) {
    peer.len = sizeof peer.dst;
    if (getpeername(sock, reinterpret_cast<sockaddr*>(&peer.dst), &peer.len) != 0) {
      const int e = errno;
      close(sock);
      reply(sv.listener, req.id, e);
      return;
    }
  }
  close(sock);
  socklen_t room = 0;
  if (!read_memory(pid, req.data.args[2], &room, sizeof room)) {
    reply(sv.listener, req.id, EFAULT);
    return;
  }
  const socklen_t n = room < peer.len ? room : peer.len;
  if (!write_memory(pid, req.data.args[1], &peer.dst, n) ||
      !write_memory(pid, req.data.args[2], &peer.len, sizeof peer.len)) {
    reply(sv.listener, req.id, EFAULT);
    return;
  }
  reply(sv.listener, req.id, 0);
}

// ---------------------------------------------------------------------------------------------
// The DNS responder (remote-DNS mode).

// A query for a name a direct rule keeps local, asked of the name server the program asked;
// its answer goes back to the program's socket from the responder.
struct DnsForward final : LoopItem {
  int sock = -1;
  sockaddr_storage client{};
  socklen_t client_len = 0;
  bool registered = false;
  void on_event(Supervisor& sv, std::uint32_t) override {
    std::uint8_t answer[4096];
    const ssize_t n = recv(sock, answer, sizeof answer, MSG_DONTWAIT);
    if (n > 0) {
      sendto(sv.responder, answer, static_cast<std::size_t>(n), 0,
             reinterpret_cast<sockaddr*>(&client), client_len);
    }
    end(sv);
  }
  void on_timeout(Supervisor& sv) override { end(sv); }  // lost, as a datagram is
  void end(Supervisor& sv) {
    if (registered) epoll_ctl(sv.ep, EPOLL_CTL_DEL, sock, nullptr);
    close(sock);
    done = true;
  }
};

void respond(Supervisor& sv) {
  std::uint8_t q[4096], out[4096 + 32];
  for (int i = 0; i < 64; ++i) {  // what is there, then back to the loop
    sockaddr_storage from{};
    socklen_t flen = sizeof from;
    const ssize_t n = recvfrom(sv.responder, q, sizeof q, MSG_DONTWAIT,
                               reinterpret_cast<sockaddr*>(&from), &flen);
    if (n <= 0) return;
    const core::StubReply r = core::answer_stub_query(
        sv.config, sv.dns, std::span<const std::uint8_t>(q, static_cast<std::size_t>(n)),
        std::span<std::uint8_t>(out));
    if (r.kind == core::StubReply::Kind::answered && r.length > 0) {
      sendto(sv.responder, out, r.length, 0, reinterpret_cast<sockaddr*>(&from), flen);
      continue;
    }
    if (r.kind != core::StubReply::Kind::pass_on) continue;
    // A name a direct rule keeps local: asked of the server the program asked, at once.
    std::pair<sockaddr_storage, socklen_t> server{};
    {
      std::lock_guard<std::mutex> lock(sv.mu);
      auto it = sv.dns_servers.find(std::string(reinterpret_cast<const char*>(&from), flen));
      if (it == sv.dns_servers.end()) continue;
      server = it->second;
    }
    auto* f = new DnsForward;
    f->sock = socket(server.first.ss_family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    f->client = from;
    f->client_len = flen;
    if (f->sock < 0 ||
        connect(f->sock, reinterpret_cast<sockaddr*>(&server.first), server.second) != 0 ||
        send(f->sock, q, static_cast<std::size_t>(n), 0) != n) {
      if (f->sock >= 0) close(f->sock);
      delete f;
      continue;
    }
    f->until = Clock::now() + std::chrono::seconds(5);
    arm(sv, f, f->sock, EPOLLIN, f->registered);
    sv.items.push_back(f);
  }
}

// ---------------------------------------------------------------------------------------------
// The loop.

constexpr std::uint64_t kListenerTag = 1;
constexpr std::uint64_t kWakeTag = 2;
constexpr std::uint64_t kResponderTag = 3;

void on_notification(Supervisor& sv, const seccomp_notif& req) {
  switch (req.data.nr) {
    case SYS_connect: on_connect(sv, req); break;
    case SYS_getpeername: on_getpeername(sv, req); break;
    case SYS_sendto:
    case SYS_sendmsg:
    case SYS_sendmmsg: on_send(sv, req); break;
    case SYS_recvfrom:
    case SYS_recvmsg:
    case SYS_recvmmsg: on_receive(sv, req); break;
    default: reply(sv.listener, req.id, ENOSYS); break;
  }
}

// No process is left: what the programs sent last (datagrams waiting in a relaying socket or
// for their association) still leaves, as the kernel's queued datagrams leave after a
// process exits. Bounded by the dial deadline.
void drain(Supervisor& sv) {
  const auto until = Clock::now() + sv.config.timeout;
  {
    std::lock_guard<std::mutex> lock(sv.mu);
    sv.items.insert(sv.items.end(), sv.pending_items.begin(), sv.pending_items.end());
    sv.pending_items.clear();
  }
  for (int pass = 0; pass < 2; ++pass) {
    for (LoopItem* item : sv.items) {
      if (!item->done && dynamic_cast<LocalRelay*>(item) != nullptr) item->on_event(sv, EPOLLIN);
    }
    wait_carried(sv, until);
  }
}

// Serves until the listener reports that no process is left under the filter.
void serve(Supervisor& sv) {
  epoll_event evs[64];
  for (;;) {
    // Deadlines: the nearest one bounds the wait; those passed are handled.
    auto now = Clock::now();
    auto nearest = Clock::time_point::max();
    for (LoopItem* item : sv.items) {
      if (!item->done && item->until <= now) item->on_timeout(sv);
      if (!item->done && item->until < nearest) nearest = item->until;
    }
    sv.items.erase(std::remove_if(sv.items.begin(), sv.items.end(),
                                  [](LoopItem* item) {
                                    if (!item->done) return false;
                                    delete item;
                                    return true;
                                  }),
                   sv.items.end());
    int wait_ms = -1;
    if (nearest != Clock::time_point::max()) {
      const auto left = std::chrono::ceil<std::chrono::milliseconds>(nearest - Clock::now());
      wait_ms = left.count() <= 0 ? 0 : static_cast<int>(std::min<long long>(left.count(), 60000));
    }
    const int n = epoll_wait(sv.ep, evs, 64, wait_ms);
    if (n < 0 && errno != EINTR) return;
    for (int k = 0; k < n; ++k) {
      const std::uint64_t tag = evs[k].data.u64;
      if (tag == kListenerTag) {
        if ((evs[k].events & EPOLLHUP) != 0 && (evs[k].events & EPOLLIN) == 0) {
          drain(sv);
          return;
        }
        seccomp_notif req;
        std::memset(&req, 0, sizeof req);  // NOTIF_RECV wants a zeroed buffer
        if (ioctl(sv.listener, SECCOMP_IOCTL_NOTIF_RECV, &req) != 0) {
          if (errno == EINTR || errno == ENOENT) continue;
          return;
        }
        on_notification(sv, req);
      } else if (tag == kWakeTag) {
        std::uint64_t v;
        (void)!read(sv.wake, &v, sizeof v);
        std::lock_guard<std::mutex> lock(sv.mu);
        sv.items.insert(sv.items.end(), sv.pending_items.begin(), sv.pending_items.end());
        sv.pending_items.clear();
      } else if (tag == kResponderTag) {
        respond(sv);
      } else {
        auto* item = static_cast<LoopItem*>(evs[k].data.ptr);
        if (!item->done) item->on_event(sv, evs[k].events);
      }
    }
  }
}

// The one line for a supervisor that cannot start: the kernel feature it lacks (`missing`:
// "FEATURE (Linux X.Y"), or what failed and why.
void say_cannot_start(int e, bool missing, const char* feature, const char* what) {
  if (missing) {
    utsname u{};
    uname(&u);
    std::fprintf(stderr,
                 "socksify: this kernel (%s) cannot run the supervisor: it needs %s or later; "
                 "use --mode preload)\n",
                 u.release, feature);
  } else {
    std::fprintf(stderr, "socksify: cannot %s: %s\n", what, std::strerror(e));
  }
}

}  // namespace

bool use_supervisor(const settings::Config& config, const std::vector<std::string>& command) {
  if (config.mode == settings::RunMode::supervisor) return true;
  if (config.mode == settings::RunMode::preload || command.empty()) return false;
  const std::string program = resolve_in_path(command.front());
  if (program.empty()) return false;
  const settings::Reach r = settings::program_reach(program.c_str());
  return r == settings::Reach::static_binary || r == settings::Reach::go_runtime;
}

int run_supervised(const LaunchRequest& request, const settings::Config& config) {
  const std::vector<std::string>& argv = request.command;
  const bool socks5_layer = config.gssapi && config.gssapi->level != socks5::GssLevel::clear &&
                            std::any_of(config.proxies.begin(), config.proxies.end(),
                                        [](const socks5::ProxyUri& p) { return p.is_socks5(); });
  if (socks5_layer) {
    // A protection layer wraps every octet: the program's own socket cannot carry it.
    std::fprintf(stderr,
                 "socksify: %s needs the supervisor (a static or Go program), which cannot "
                 "carry GSSAPI integrity or confidentiality: use --gssapi-protection clear, or "
                 "--mode preload\n",
                 argv.empty() ? "the program" : argv.front().c_str());
    return 125;
  }
  for (const auto& p : config.proxies) {
    if (!p.unix_path.empty()) {
      // The supervisor connects the program's own socket, which cannot reach a Unix socket.
      std::fprintf(stderr,
                   "socksify: %s needs the supervisor (a static or Go program), which cannot "
                   "reach the proxy on a Unix socket (%s) yet: use a TCP proxy address, or "
                   "--mode preload\n",
                   argv.empty() ? "the program" : argv.front().c_str(), p.to_string().c_str());
      return 125;
    }
    if (socks5::needs_transport(p)) {
      // TLS runs in a relay process, which the program's own socket would have to reach.
      std::fprintf(stderr,
                   "socksify: %s needs the supervisor (a static or Go program), which cannot "
                   "speak TLS to an https proxy (%s) yet: use an http:// or SOCKS proxy for it, "
                   "or --mode preload\n",
                   argv.empty() ? "the program" : argv.front().c_str(), p.to_string().c_str());
      return 125;
    }
  }
  const std::string shim = find_shim();
  int to_parent[2], to_child[2];
  if (pipe2(to_parent, O_CLOEXEC) != 0 || pipe2(to_child, O_CLOEXEC) != 0) return 125;
  std::vector<sock_filter> filter = filter_program();
  const pid_t child = fork();
  if (child < 0) return 125;
  if (child == 0) {
    int listener = -1;
    if (!install_filter(filter, listener)) {
      const int e = errno;
      say_cannot_start(e, e == EINVAL || e == ENOSYS, "seccomp user notification (Linux 5.0",
                       "install the supervisor's filter");
      _exit(125);
    }
    // The supervisor takes the listener with pidfd_getfd (SCM_RIGHTS could wait on a
    // notification of its own), then this copy goes before exec.
    (void)!write(to_parent[1], &listener, sizeof listener);
    char ack;
    (void)!read(to_child[0], &ack, 1);
    close(listener);
    for (const auto& [name, s] : request.settings) setenv(name.c_str(), s.value.c_str(), 1);
    if (!shim.empty()) {
      setenv("LD_PRELOAD", preload_list(shim, std::getenv("LD_PRELOAD")).c_str(), 1);
    }
    // Every descendant is under the filter: the library in a dynamic one neither warns about
    // nor re-supervises a static program it starts.
    setenv("SOCKSIFY_SUPERVISED", "1", 1);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execvp(args[0], args.data());
    std::fprintf(stderr, "socksify: %s: %s\n", args[0], std::strerror(errno));
    _exit(127);
  }
  close(to_parent[1]);
  close(to_child[0]);
  // The supervisor holds a duplicate of every socket a dial or an association is under way
  // for: as many descriptors as its programs have, so its own soft limit goes to the hard one
  // (as Go's runtime does for itself). The program keeps the limit it was given.
  if (rlimit rl{}; getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    (void)setrlimit(RLIMIT_NOFILE, &rl);
  }
  int child_listener = -1;
  int take_errno = 0;
  // Never freed: a worker may still run a dial (to a silent proxy, say) when the last
  // process has gone and the wrapper exits. So the supervisor and its own copy of the
  // configuration outlive everything here.
  auto* owned = new Supervisor;
  Supervisor& sv = *owned;
  sv.config = config;
  g_level = config.log_level;
  g_log_file = config.log_file;
  core::LineSink sink;
  sink.enabled = line_enabled;
  sink.write = line_write;
  std::string state_dir;
  if (config.pipelining == socks5::Pipelining::automatic) {
    state_dir = settings::state_dir([](const char* name) { return std::getenv(name); });
  }
  sv.connector.init(sv.config, std::move(state_dir), sink, nullptr);
  sv.ep = epoll_create1(EPOLL_CLOEXEC);
  sv.wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (sv.ep < 0 || sv.wake < 0) {
    std::fprintf(stderr, "socksify: cannot start the supervisor: %s\n", std::strerror(errno));
    kill(child, SIGKILL);
    return 125;
  }
  auto watch_tag = [&sv](int fd, std::uint64_t tag) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = tag;
    epoll_ctl(sv.ep, EPOLL_CTL_ADD, fd, &ev);
  };
  watch_tag(sv.wake, kWakeTag);
  if (config.remote_dns) {
    sv.dns = core::FakeDns::create(config.fake4, config.fake6);
    sv.responder = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    auto* a = reinterpret_cast<sockaddr_in*>(&sv.responder_addr);
    a->sin_family = AF_INET;
    a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sv.responder_len = sizeof *a;
    if (sv.responder < 0 ||
        bind(sv.responder, reinterpret_cast<sockaddr*>(&sv.responder_addr), sv.responder_len) !=
            0 ||
        getsockname(sv.responder, reinterpret_cast<sockaddr*>(&sv.responder_addr),
                    &sv.responder_len) != 0) {
      std::fprintf(stderr, "socksify: cannot start the supervisor's DNS responder: %s\n",
                   std::strerror(errno));
      kill(child, SIGKILL);
      return 125;
    }
    watch_tag(sv.responder, kResponderTag);
  }
  // The first workers (more start while every one is busy, up to kMaxWorkers).
  {
    std::lock_guard<std::mutex> lock(sv.work_mu);
    for (int i = 0; i < kWorkersAtStart; ++i) start_worker(sv);
  }
  if (read(to_parent[0], &child_listener, sizeof child_listener) ==
      static_cast<ssize_t>(sizeof child_listener)) {
    const int pidfd = sys_pidfd_open(child);
    if (pidfd >= 0) {
      sv.listener = sys_pidfd_getfd(pidfd, child_listener);
      take_errno = errno;
      close(pidfd);
    }
  }
  (void)!write(to_child[1], "x", 1);
  close(to_parent[0]);
  close(to_child[1]);
  if (sv.listener < 0 && child_listener >= 0) {
    say_cannot_start(take_errno, take_errno == ENOSYS, "pidfd_getfd (Linux 5.6",
                     "take the supervisor's listener");
    kill(child, SIGKILL);
  }
  // Served until no process is left under the filter (the program's children included).
  std::thread server;
  if (sv.listener >= 0) {
    watch_tag(sv.listener, kListenerTag);
    server = std::thread(serve, std::ref(sv));
  }
  int status = 0;
  while (waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  if (server.joinable()) server.join();
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 125;
}

}  // namespace socksify::tool
