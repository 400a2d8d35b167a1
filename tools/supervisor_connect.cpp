// The supervisor's connect(), getpeername() and DNS responder (see supervisor.cpp).
#include "supervisor_internal.hpp"

namespace socksify::tool::supervised {

// This file's own functions (the shared ones are in supervisor_internal.hpp).
int connect_by_name(int sock, int family, const std::string& name, std::uint16_t port);
void connect_other(Supervisor& sv, const seccomp_notif& req, pid_t pid, int sock,
                   const sockaddr_storage& dst, socklen_t len);
void connect_direct(Supervisor& sv, std::uint64_t id, int sock, const sockaddr_storage& dst,
                    socklen_t len, const std::string& name, std::uint16_t port, int family);
void remember_dns_server(Supervisor& sv, int sock, const sockaddr_storage& server, socklen_t len);
void end_connected(Supervisor& sv, int sock);

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
  if (!sv.own_socket_dials) {
    ds.fd = sock;
    ds.family = facts.family;
  }
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
  op->family = facts.family;
  op->ids.push_back(req.id);
  if (have_ino) {
    std::lock_guard<std::mutex> lock(sv.mu);
    sv.flights[op->ino] = op;
  }
  if (sv.own_socket_dials || blocking(sock)) {
    // A blocking socket's dial blocks (its connect waits for the proxy): a worker's. So does
    // one on a socket of the supervisor's own (a Unix socket connects blocking, and the
    // hand-over waits for the relay).
    post(sv, [&sv, op] {
      core::Connector::set_line_pid(op->pid);
      socks5::run_blocking(op->dial);  // non-blocking steps with poll: O_NONBLOCK untouched
      int handover = 0;
      if (sv.own_socket_dials && op->dial.step().next == socks5::Dial::Next::done) {
        handover = hand_over(op->dial, op->sock, op->family, op->deadline, sv.relay);
        if (handover != 0) {
          if (sv.connector.sink().enabled(LogLevel::error)) {
            sv.connector.sink().write(LogLevel::error, op->pid,
                                      "the relay did not take the connection over");
          }
        }
      }
      core::Connector::set_line_pid(0);
      finish(sv, op, handover);
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

}  // namespace socksify::tool::supervised
