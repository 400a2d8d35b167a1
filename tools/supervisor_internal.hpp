#pragma once
// What the supervisor's files share (supervisor.cpp: the server, its loop and workers;
// supervisor_connect.cpp: connect, getpeername and the DNS responder; supervisor_datagrams.cpp:
// the datagram calls and UDP associations; supervisor_filter.cpp: the seccomp filter).
// Internal to the socksify program.

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
#include "tls_transport.hpp"
#include "udp_in.hpp"

namespace socksify::tool::supervised {

using Clock = std::chrono::steady_clock;
using settings::Action;
using settings::LogLevel;

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
  /// A connected UDP socket's local relay (drained once more when the program has gone).
  virtual bool local_relay() const noexcept { return false; }
};

// A proxied connect(): the dial runs on a duplicate of the program's socket. Notifications for
// the same socket while it runs (a restart after a signal, a second call) join it and get its
// outcome.
struct DialOp final : LoopItem {
  DialOp(const socks5::DialPlan& plan, socks5::DialSocket socket, socks5::DialRequest request,
         socks5::Deadline limit)
      : dial(plan, socket, std::move(request), limit), deadline(limit) {}
  socks5::Dial dial;
  socks5::Deadline deadline;
  int family = AF_INET;  // the program's socket's (for the hand-over of an own-socket dial)
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
  // The relay program, and TLS toward https proxies through it. With an https proxy or one on a
  // Unix socket, dials run on sockets of the supervisor's own and are handed over to a relay
  // that the program's socket is connected to (tls_transport.hpp), as in the library.
  std::string relay;
  std::unique_ptr<SpawnedTls> tls;
  bool own_socket_dials = false;
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

// Shared between the supervisor's files.
bool read_memory(pid_t pid, std::uint64_t addr, void* out, std::size_t len);
bool write_memory(pid_t pid, std::uint64_t addr, const void* in, std::size_t len);
bool blocking(int sock);
bool still_valid(int listener, std::uint64_t id);
int threads_of(pid_t pid);
pid_t process_of(pid_t tid);
void reply_continue(int listener, std::uint64_t id);
void reply(int listener, std::uint64_t id, int error, long long val = 0);
core::SocketFacts facts_of(int sock);
bool v6only(int sock, const core::AddressReading& r);
int take_fd(pid_t pid, int fd);
int take_checked(Supervisor& sv, const seccomp_notif& req, pid_t pid, int fd);
void post(Supervisor& sv, std::function<void()> task);
void arm(Supervisor& sv, LoopItem* item, int fd, std::uint32_t events, bool& registered);
void finish(Supervisor& sv, DialOp* op, int handover = 0);
void advance(Supervisor& sv, DialOp* op, socks5::Dial::Step s);
bool unix_in_program(pid_t pid, const sockaddr_storage& in, socklen_t len, sockaddr_un& out,
                     socklen_t& out_len);
void on_connect(Supervisor& sv, const seccomp_notif& req);
void on_getpeername(Supervisor& sv, const seccomp_notif& req);
void respond(Supervisor& sv);
void connect_udp_proxied(Supervisor& sv, std::uint64_t id, pid_t pid, int fd, int sock,
                         const core::SocketFacts& facts, const sockaddr_storage& dst, socklen_t len,
                         const core::Destination& d);
void on_send(Supervisor& sv, const seccomp_notif& req);
void on_receive(Supervisor& sv, const seccomp_notif& req);
std::uint64_t cookie_of(int sock);
std::shared_ptr<Assoc> assoc_of(Supervisor& sv, std::uint64_t cookie);

}  // namespace socksify::tool::supervised
