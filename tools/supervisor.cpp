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
#include "supervisor_internal.hpp"

namespace socksify::tool::supervised {

// This file's own functions (the shared ones are in supervisor_internal.hpp).
int sys_pidfd_open(pid_t pid);
int sys_pidfd_getfd(int pidfd, int fd);
void start_worker(Supervisor& sv);
void worker_main(Supervisor& sv);
void wait_carried(Supervisor& sv, Clock::time_point until);
void sweep_peers(Supervisor& sv);
void on_notification(Supervisor& sv, const seccomp_notif& req);
void drain(Supervisor& sv);
void serve(Supervisor& sv);
void say_cannot_start(int e, bool missing, const char* feature, const char* what);

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
void reply(int listener, std::uint64_t id, int error, long long val) {
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
void finish(Supervisor& sv, DialOp* op, int handover) {
  sv.connector.report(op->dial, op->verdict, op->t0, op->pid);
  const int e = handover != 0 ? handover : core::Connector::outcome_errno(op->dial);
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
      if (!item->done && item->local_relay()) item->on_event(sv, EPOLLIN);
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

}  // namespace socksify::tool::supervised

namespace socksify::tool {

using namespace supervised;

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
    for (const auto& [name, value] : exported(request.settings)) {
      setenv(name.c_str(), value.c_str(), 1);
    }
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
  sv.relay = find_relay();
  sv.tls = std::make_unique<SpawnedTls>(sv.relay, sv.config.proxy_cacert);
  sv.connector.set_transport(sv.tls.get());
  sv.own_socket_dials =
      std::any_of(sv.config.proxies.begin(), sv.config.proxies.end(),
                  [](const auto& p) { return !p.unix_path.empty() || socks5::needs_transport(p); });
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
    // The user's shared table (as the preloaded library's): a name resolved here is known
    // to every socksified process, and the other way round.
    static const core::FileCalls file_calls{::open, ::close, ::fstat};
    sv.dns = core::FakeDns::create(
        config.fake4, config.fake6,
        settings::state_dir([](const char* name) { return std::getenv(name); }), &file_calls);
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
