// Hostile probes for the fail-closed tests (failclosed_test.cpp): each mode tries one way of
// making traffic leave around the proxy, reach the wrong place, hang or spin, and prints what
// the calls returned. Exit 0 when the calls ran (the test judges the outcome from the output
// and from where the traffic arrived); 2 for a usage error. Built dynamically (for the
// preloaded library) and statically (for the supervisor).
//   attack oddlen ADDR PORT tcp|udp|udpunspec LEN
//       connect (tcp) or sendto (udp) with the address ADDR:PORT given as LEN octets: 24 for an
//       IPv6 address (RFC 2133's layout, no scope id), 20 for an IPv4 one (longer than
//       sockaddr_in); udpunspec sends on an IPv4 UDP socket to an address whose family is
//       AF_UNSPEC (the kernel reads it as AF_INET)
//   attack stubinject STUB EXTERNAL connect|sendto
//       a DNS client of the stub STUB:53; then a datagram to its port from this host's other
//       address EXTERNAL; then a second query: prints whether the injected datagram was
//       delivered, and the address the socket is bound to
//   attack udpgap|udppeek|udptimeout|udpconnected|udpstale|udpbig|udpnonblock ADDR PORT
//       UDP through the proxy against the hostile relays (hostile_proxy.py udp-*): a gap in
//       a fragment sequence; MSG_PEEK of a reassembled datagram; SO_RCVTIMEO and recvmmsg's
//       timeout against a relay that drips fragments; a connected socket and a datagram from
//       another source; an associated fd closed by the raw system call and reused for TCP; a
//       receive buffer that claims 1 GiB; a non-blocking socket's first datagram
//   attack asyncdata ADDR PORT
//       a non-blocking connect through the proxy; while it is under way every data call
//       gives EAGAIN (sendto with and without an address, sendmmsg, recvmmsg, sendfile,
//       splice); then a clean echo
//   attack asyncforkclose ADDR PORT
//       a non-blocking connect, fork, the parent closes its copy: the child cannot send into
//       the half-made proxy connection
//   attack bindloop LOCAL ROUNDS
//       a non-blocking listener through the proxy (--listen proxy), in epoll before any peer:
//       each round a peer connects, the listener is readable, accept4 takes it, the data
//       crosses; accept4 again gives EAGAIN at once and the listener is not readable after
//   attack bindfail LOCAL
//       the same against a proxy whose BIND ends after its first reply: accept reports the
//       error, and the CPU time of 3 s of the event loop is printed (no spin)
//   attack bindprefork LOCAL CHILDREN
//       a pre-forking server on a listener through the proxy: children forked after listen()
//       each accept one peer; the parent connects the peers one after the other
//   attack sendmmsg100 ADDR PORT         sendmmsg of 100 datagrams
//   attack racename DIRECT DPORT PROXIED PPORT [sendmsg|mmsg|connect]
//       sendmsg on a socket connected to DIRECT while a thread flips msg_name to PROXIED
//       (the default; mmsg: sendmmsg of 8 such messages; connect: TCP connects to an address
//       another thread flips between DIRECT and PROXIED)
//   attack racedup DIRECT DPORT PROXIED PPORT
//       sendto(PROXIED) on a descriptor another thread switches between TCP and UDP (dup2)
//   attack unixcwd DIR [threads]
//       connect a UNIX socket by a relative path after chdir(DIR): which listener took it,
//       and whose pid SO_PEERCRED names (with `threads`: from a multi-threaded process)
//   attack alarmconnect ADDR PORT          a blocking connect interrupted by alarm(1)
//   attack stuckmany TARPIT TPORT GOOD GPORT N
//       N threads in blocking connects to TARPIT (which never answers; SO_SNDTIMEO 20 s),
//       then, once all N are inside connect(), one blocking connect to GOOD: how long it took
//   attack dnsask SERVER NAME              one DNS query to SERVER:53 over a connected socket
//   attack udpround HOST PORT
//       UDP to an echo every way a program reads with a source, then connected (send/recv,
//       write/read)
//   attack udpnonblock ADDR PORT [wait]
//       a non-blocking socket's first datagram (and with `wait`, its echo)
//   attack udproutes A APORT B BPORT
//       one socket connected to A (proxied), then to B (direct): each datagram where its own
//       route says
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "integration/probe_common.hpp"

namespace {

using probe_common::addr_text;
using probe_common::echo;
using probe_common::errno_name;

// "what: ok" or "what: errno=NAME".
void report(const char* what, long r) {
  if (r >= 0) {
    std::printf("%s: ok %ld\n", what, r);
  } else {
    std::printf("%s: errno=%s\n", what, errno_name(errno));
  }
  std::fflush(stdout);
}

// ADDR:PORT as a sockaddr of the address's own family, full size.
bool parse(const char* addr, const char* port, sockaddr_storage& ss) {
  ss = sockaddr_storage{};
  const auto p = static_cast<std::uint16_t>(std::atoi(port));
  auto* in6 = reinterpret_cast<sockaddr_in6*>(&ss);
  if (inet_pton(AF_INET6, addr, &in6->sin6_addr) == 1) {
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(p);
    return true;
  }
  auto* in = reinterpret_cast<sockaddr_in*>(&ss);
  if (inet_pton(AF_INET, addr, &in->sin_addr) == 1) {
    in->sin_family = AF_INET;
    in->sin_port = htons(p);
    return true;
  }
  return false;
}

// The full length of `ss`'s address (sockaddr_in or sockaddr_in6).
socklen_t full_len(const sockaddr_storage& ss) {
  return ss.ss_family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
}

// Waits (up to 5 s) until `fd` is readable.
bool readable(int fd) {
  pollfd p{fd, POLLIN, 0};
  return poll(&p, 1, 5000) == 1;
}

// Waits (up to 5 s) for a datagram of `n` octets back on `fd` (a catcher's or an echo's) and
// prints "reply ok" or "reply none".
void reply_back(int fd, ssize_t n) {
  char buf[64];
  const bool back = readable(fd) && recv(fd, buf, sizeof buf, 0) == n;
  std::printf("reply %s\n", back ? "ok" : "none");
}

// Waits (up to 10 s) for `fd`'s connect outcome and prints "LABEL poll: ..." and
// "LABEL SO_ERROR NAME".
void print_outcome(int fd, const std::string& label) {
  pollfd p{fd, POLLOUT, 0};
  report((label + "poll").c_str(), poll(&p, 1, 10000));
  int err = -1;
  socklen_t elen = sizeof err;
  getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen);
  std::printf("%sSO_ERROR %s\n", label.c_str(), errno_name(err));
}

// A non-blocking TCP connect to ADDR:PORT (reported); the socket, or -1.
int tcp_nonblocking(const char* addr, const char* port, sockaddr_storage& ss) {
  if (!parse(addr, port, ss)) return -1;
  const int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  report("connect", connect(fd, reinterpret_cast<sockaddr*>(&ss), full_len(ss)));
  return fd;
}

int do_oddlen(const char* addr, const char* port, const std::string& how, int len) {
  sockaddr_storage ss{};
  if (!parse(addr, port, ss)) return 2;
  const auto slen = static_cast<socklen_t>(len);
  if (how == "tcp") {
    const int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const int r = connect(fd, reinterpret_cast<sockaddr*>(&ss), slen);
    report("connect", r);
    if (r == 0) std::printf("echo %s\n", echo(fd, "odd length\n") ? "ok" : "failed");
    close(fd);
    return 0;
  }
  if (how == "udpunspec") ss.ss_family = AF_UNSPEC;
  const int fd = socket(how == "udpunspec" ? AF_INET : ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  const ssize_t sent = sendto(fd, "odd", 3, 0, reinterpret_cast<sockaddr*>(&ss), slen);
  report("sendto", sent);
  // The catcher echoes: waiting for it keeps the association up until the datagram crossed.
  if (sent == 3) reply_back(fd, 3);
  close(fd);
  return 0;
}

// A minimal DNS query for NAME, type A, with id ID.
std::string dns_query(const char* name, unsigned id) {
  std::string q{
      static_cast<char>(id >> 8), static_cast<char>(id & 0xFF), 1, 0, 0, 1, 0, 0, 0, 0, 0, 0};
  std::string label;
  for (const char* p = name;; ++p) {
    if (*p == '.' || *p == '\0') {
      q += static_cast<char>(label.size());
      q += label;
      label.clear();
      if (*p == '\0') break;
    } else {
      label += *p;
    }
  }
  q += std::string{0, 0, 1, 0, 1};
  return q;
}

// Reads datagrams for up to 5 s until the answer with `id` arrives; true if any datagram
// that is not a DNS answer (the injected one) was delivered before it.
bool read_until_answer(int fd, unsigned id, bool& answered) {
  bool injected = false;
  answered = false;
  for (int i = 0; i < 20 && !answered; ++i) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 5000) != 1) break;
    unsigned char buf[1500];
    const ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n < 0) break;
    if (n >= 12 && (buf[2] & 0x80) != 0) {
      if (((static_cast<unsigned>(buf[0]) << 8) | buf[1]) == id) answered = true;
    } else {
      injected = true;
    }
  }
  return injected;
}

// A DNS client of the stub (connect + send, as glibc's resolver, or sendto), then a datagram
// to its port from the machine's other address EXTERNAL, then a second query: the injected
// datagram must not be delivered (without the library the socket is connected to the stub).
int do_stubinject(const char* stub, const char* external, const std::string& how) {
  sockaddr_storage ss{};
  if (!parse(stub, "53", ss)) return 2;
  const socklen_t slen = full_len(ss);
  const int fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  const std::string q1 = dns_query("first.test", 0x1111);
  if (how == "connect") {
    report("connect", connect(fd, reinterpret_cast<sockaddr*>(&ss), slen));
    report("send", send(fd, q1.data(), q1.size(), 0));
  } else {
    report("sendto", sendto(fd, q1.data(), q1.size(), 0, reinterpret_cast<sockaddr*>(&ss), slen));
  }
  bool answered = false;
  read_until_answer(fd, 0x1111, answered);
  std::printf("first answer %s\n", answered ? "ok" : "missing");
  sockaddr_storage me{};
  socklen_t mlen = sizeof me;
  getsockname(fd, reinterpret_cast<sockaddr*>(&me), &mlen);
  char host[64] = "?";
  std::uint16_t port = 0;
  if (me.ss_family == AF_INET) {
    const auto* in = reinterpret_cast<sockaddr_in*>(&me);
    inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
    port = ntohs(in->sin_port);
  } else {
    const auto* in6 = reinterpret_cast<sockaddr_in6*>(&me);
    inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
    port = ntohs(in6->sin6_port);
  }
  std::printf("bound %s\n", host);
  // The injection: from EXTERNAL to EXTERNAL:port and to loopback:port.
  sockaddr_storage ext{};
  parse(external, "0", ext);
  const int inj = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  bind(inj, reinterpret_cast<sockaddr*>(&ext), sizeof(sockaddr_in));
  for (const char* to : {external, "127.0.0.1"}) {
    sockaddr_storage t{};
    parse(to, std::to_string(port).c_str(), t);
    sendto(inj, "injected", 8, 0, reinterpret_cast<sockaddr*>(&t), sizeof(sockaddr_in));
  }
  const std::string q2 = dns_query("second.test", 0x2222);
  if (how == "connect") {
    send(fd, q2.data(), q2.size(), 0);
  } else {
    sendto(fd, q2.data(), q2.size(), 0, reinterpret_cast<sockaddr*>(&ss), slen);
  }
  const bool injected = read_until_answer(fd, 0x2222, answered);
  std::printf("second answer %s\n", answered ? "ok" : "missing");
  std::printf("injected %s\n", injected ? "DELIVERED" : "not delivered");
  close(inj);
  close(fd);
  return 0;
}

using Clock = std::chrono::steady_clock;

long ms_since(Clock::time_point t0) {
  return static_cast<long>(
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count());
}

// A UDP socket of ADDR's family (non-blocking if asked) and ADDR:PORT.
int udp_to(const char* addr, const char* port, sockaddr_storage& ss, socklen_t& len,
           bool nonblock = false) {
  if (!parse(addr, port, ss)) return -1;
  len = full_len(ss);
  const int fd =
      socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0), 0);
  // No receive here may hang the probe, whatever the library does.
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return fd;
}

// A UDP socket that sent DATA to ADDR:PORT (reported as "sendto").
int udp_sent(const char* addr, const char* port, const char* data) {
  sockaddr_storage ss{};
  socklen_t len = 0;
  const int fd = udp_to(addr, port, ss, len);
  report("sendto", sendto(fd, data, std::strlen(data), 0, reinterpret_cast<sockaddr*>(&ss), len));
  return fd;
}

// Receives one datagram (waiting up to 5 s) and prints it: "NAME TEXT from ADDR PORT".
void show(const char* what, int fd, int flags = 0) {
  pollfd p{fd, POLLIN, 0};
  if ((flags & MSG_PEEK) == 0 && poll(&p, 1, 5000) != 1) {
    std::printf("%s: nothing\n", what);
    return;
  }
  char buf[256];
  sockaddr_storage from{};
  socklen_t flen = sizeof from;
  const ssize_t n =
      recvfrom(fd, buf, sizeof buf - 1, flags, reinterpret_cast<sockaddr*>(&from), &flen);
  if (n < 0) {
    std::printf("%s: errno=%s\n", what, errno_name(errno));
    return;
  }
  buf[n] = '\0';
  std::printf("%s: '%s' from %s\n", what, buf, addr_text(from).c_str());
  std::fflush(stdout);
}

// One datagram to a relay that answers with a gap in a fragment sequence, then a whole one.
int do_udpgap(const char* addr, const char* port) {
  const int fd = udp_sent(addr, port, "x");
  show("first", fd);
  close(fd);
  return 0;
}

// A fragmented answer (hostile udp-frag) peeked, then read: the same datagram both times.
int do_udppeek(const char* addr, const char* port) {
  const int fd = udp_sent(addr, port, "peek-me-peek-me");
  readable(fd);
  show("peek", fd, MSG_PEEK);
  show("read", fd);
  // Nothing else is queued: the peeked datagram was not a second one.
  char buf[64];
  std::printf("after: %s\n",
              recv(fd, buf, sizeof buf, MSG_DONTWAIT) < 0 && errno == EAGAIN ? "empty" : "more");
  close(fd);
  return 0;
}

// Against a relay that answers once, then drips incomplete fragments: recvmmsg with a 1 s
// timeout takes the answer and waits for more until the timeout (then returns 1); recv with
// SO_RCVTIMEO of 1 s ends after about 1 s (EAGAIN), the dropped fragments notwithstanding.
int do_udptimeout(const char* addr, const char* port) {
  const int fd = udp_sent(addr, port, "x");
  char bufs[4][64];
  iovec iov[4];
  mmsghdr vec[4]{};
  for (int i = 0; i < 4; ++i) {
    iov[i] = iovec{bufs[i], sizeof bufs[i]};
    vec[i].msg_hdr.msg_iov = &iov[i];
    vec[i].msg_hdr.msg_iovlen = 1;
  }
  timeval none{0, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &none, sizeof none);
  timespec timeout{1, 0};
  auto t0 = Clock::now();
  const int got = recvmmsg(fd, vec, 4, 0, &timeout);
  std::printf("recvmmsg: %d after %ld ms\n", got, ms_since(t0));
  timeval tv{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  char buf[64];
  t0 = Clock::now();
  const ssize_t r = recv(fd, buf, sizeof buf, 0);
  std::printf("recv: %s after %ld ms\n", r < 0 ? errno_name(errno) : "data", ms_since(t0));
  close(fd);
  return 0;
}

// A socket connected to ADDR:PORT; the relay sends a datagram from another source first.
int do_udpconnected(const char* addr, const char* port) {
  sockaddr_storage ss{};
  socklen_t len = 0;
  const int fd = udp_to(addr, port, ss, len);
  report("connect", connect(fd, reinterpret_cast<sockaddr*>(&ss), len));
  report("send", send(fd, "x", 1, 0));
  show("first", fd);
  close(fd);
  return 0;
}

// One socket, two routes: connected to A (proxied), then to B (direct).
int do_udproutes(const char* a, const char* aport, const char* b, const char* bport) {
  sockaddr_storage sa{}, sb{};
  socklen_t la = 0, lb = 0;
  const int fd = udp_to(a, aport, sa, la);
  parse(b, bport, sb);
  lb = full_len(sb);
  report("connect A", connect(fd, reinterpret_cast<sockaddr*>(&sa), la));
  report("send A", send(fd, "to-A", 4, 0));
  show("reply A", fd);
  report("connect B", connect(fd, reinterpret_cast<sockaddr*>(&sb), lb));
  report("send B", send(fd, "to-B", 4, 0));
  show("reply B", fd);
  report("sendto A", sendto(fd, "A-again", 7, 0, reinterpret_cast<sockaddr*>(&sa), la));
  // Connected to A again, a last datagram to it and its echo: by then A has had "A-again"
  // (one path, in order), and the association lived long enough to carry it.
  report("connect A again", connect(fd, reinterpret_cast<sockaddr*>(&sa), la));
  report("send A", send(fd, "sync-A", 6, 0));
  for (int i = 0; i < 3; ++i) {
    char buf[64] = {};
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 5000) != 1) break;
    const ssize_t n = recv(fd, buf, sizeof buf - 1, 0);
    if (n == 6 && std::memcmp(buf, "sync-A", 6) == 0) {
      std::printf("A synced\n");
      break;
    }
  }
  close(fd);
  return 0;
}

// An associated UDP socket closed behind the library's back (the raw system call), its
// number reused by accept() for TCP: recv must give the TCP peer's octets.
int do_udpstale(const char* addr, const char* port) {
  const int u = udp_sent(addr, port, "x");
  const int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in lo{};
  lo.sin_family = AF_INET;
  lo.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t lolen = sizeof lo;
  bind(l, reinterpret_cast<sockaddr*>(&lo), sizeof lo);
  listen(l, 1);
  getsockname(l, reinterpret_cast<sockaddr*>(&lo), &lolen);
  const int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  syscall(SYS_close, u);  // u's number is now the lowest free one: accept() takes it
  connect(c, reinterpret_cast<sockaddr*>(&lo), sizeof lo);
  const char data[] = "the real data of the TCP peer, 40 octets";
  send(c, data, sizeof data - 1, 0);
  const int a = accept(l, nullptr, nullptr);
  std::printf("reused: %s\n", a == u ? "yes" : "no");
  char buf[128] = {};
  pollfd p{a, POLLIN, 0};
  poll(&p, 1, 5000);
  const ssize_t n = recv(a, buf, sizeof buf - 1, 0);
  std::printf(
      "recv %zd: %s\n", n,
      n == static_cast<ssize_t>(sizeof data - 1) && std::memcmp(buf, data, sizeof data - 1) == 0
          ? "the TCP data"
          : "WRONG DATA");
  return 0;
}

// A receive with a buffer that claims 1 GiB (only its first page exists) on an associated
// socket, with the address space limited to 256 MiB more than now.
int do_udpbig(const char* addr, const char* port) {
  const int fd = udp_sent(addr, port, "big");
  readable(fd);
  rlimit rl{};
  getrlimit(RLIMIT_AS, &rl);
  std::size_t used = 0;
  if (FILE* f = std::fopen("/proc/self/statm", "r")) {
    if (std::fscanf(f, "%zu", &used) != 1) used = 0;
    std::fclose(f);
  }
  rl.rlim_cur = used * 4096 + (256u << 20);
  setrlimit(RLIMIT_AS, &rl);
  static char page[4096];
  const ssize_t n = recv(fd, page, std::size_t{1} << 30, 0);
  report("recv 1 GiB", n);
  close(fd);
  return 0;
}

// The first datagram of a non-blocking socket through a proxy that never answers: sendto
// returns at once.
int do_udpnonblock(const char* addr, const char* port, bool wait_reply) {
  sockaddr_storage ss{};
  socklen_t len = 0;
  const int fd = udp_to(addr, port, ss, len, true);
  const auto t0 = Clock::now();
  const ssize_t r = sendto(fd, "nonblocking", 11, 0, reinterpret_cast<sockaddr*>(&ss), len);
  const long took = ms_since(t0);
  report("sendto", r);
  std::printf("sendto took %ld ms\n", took);
  // The datagram waited for the association, then left: the echo comes back.
  if (wait_reply) reply_back(fd, 11);
  close(fd);
  return 0;
}

// A non-blocking TCP connect to ADDR:PORT through a slow proxy; while it is under way, every
// data call (sendto without an address and with one, sendmmsg, recvmmsg, sendfile, splice)
// must give EAGAIN; then the connection works and echoes cleanly.
int do_asyncdata(int fd, const sockaddr_storage& ss) {
  const socklen_t len = full_len(ss);
  report("sendto NULL", sendto(fd, "X", 1, MSG_NOSIGNAL, nullptr, 0));
  report("sendto addr",
         sendto(fd, "X", 1, MSG_NOSIGNAL, reinterpret_cast<const sockaddr*>(&ss), len));
  iovec iov{const_cast<char*>("X"), 1};
  mmsghdr out{};
  out.msg_hdr.msg_iov = &iov;
  out.msg_hdr.msg_iovlen = 1;
  report("sendmmsg", sendmmsg(fd, &out, 1, MSG_NOSIGNAL));
  char buf[16];
  iovec in_iov{buf, sizeof buf};
  mmsghdr in{};
  in.msg_hdr.msg_iov = &in_iov;
  in.msg_hdr.msg_iovlen = 1;
  report("recvmmsg", recvmmsg(fd, &in, 1, MSG_DONTWAIT, nullptr));
  char tmpl[] = "/tmp/socksify-attack-XXXXXX";
  const int file = mkstemp(tmpl);
  unlink(tmpl);
  (void)!write(file, "FILEDATA", 8);
  lseek(file, 0, SEEK_SET);
  report("sendfile", sendfile(fd, file, nullptr, 8));
  int pipefd[2];
  if (pipe(pipefd) == 0) {
    (void)!write(pipefd[1], "PIPE", 4);
    report("splice in", splice(pipefd[0], nullptr, fd, nullptr, 4, SPLICE_F_NONBLOCK));
    report("splice out", splice(fd, nullptr, pipefd[1], nullptr, 4, SPLICE_F_NONBLOCK));
  }
  print_outcome(fd, "");
  // Nothing of the above reached the proxy: the first octets the target sees are these.
  const int flags = fcntl(fd, F_GETFL);
  fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
  std::printf("echo %s\n", echo(fd, "clean line\n") ? "ok" : "failed");
  close(fd);
  return 0;
}

// A non-blocking connect through a proxy that never answers; fork; the parent closes its
// copy and waits: the child, once the outcome is known, must not be able to send into the
// half-made proxy connection.
int do_asyncforkclose(int fd) {
  const pid_t child = fork();
  if (child == 0) {
    print_outcome(fd, "child ");
    report("child send", send(fd, "INTO-THE-HANDSHAKE", 18, MSG_NOSIGNAL));
    std::fflush(stdout);
    _exit(0);
  }
  close(fd);
  int status = 0;
  waitpid(child, &status, 0);
  std::printf("child exited %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
  return 0;
}

// A socket listening on LOCAL (any port; through the proxy with --listen proxy), bind and
// listen reported; non-blocking and registered (level-triggered, for EPOLLIN) with a new
// epoll instance `ep` when `event_loop`. -1 for an address that does not parse.
int listening(const char* local, bool event_loop, int& ep) {
  sockaddr_storage ss{};
  if (!parse(local, "0", ss)) return -1;
  const int l =
      socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | (event_loop ? SOCK_NONBLOCK : 0), 0);
  report("bind", bind(l, reinterpret_cast<sockaddr*>(&ss), full_len(ss)));
  report("listen", listen(l, 8));
  if (event_loop) {
    ep = epoll_create1(EPOLL_CLOEXEC);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = l;
    epoll_ctl(ep, EPOLL_CTL_ADD, l, &ev);
  }
  return l;
}

// A non-blocking listener bound to LOCAL (through the proxy: --listen proxy), registered with
// epoll (level-triggered) before any peer. ROUNDS times: a peer connects to where
// getsockname() says it listens; the listener must be readable within 4 s; accept4 takes it
// and the data crosses; then accept4 again gives EAGAIN at once, and the listener is not
// readable until the next peer.
int do_bindloop(const char* local, int rounds) {
  int ep = -1;
  const int l = listening(local, true, ep);
  if (l < 0) return 2;
  for (int round = 1; round <= rounds; ++round) {
    sockaddr_storage at{};
    socklen_t alen = sizeof at;
    getsockname(l, reinterpret_cast<sockaddr*>(&at), &alen);
    std::printf("round %d listening at %s\n", round, addr_text(at).c_str());
    std::atomic<int> peer{-1};
    std::thread t([&] {
      const int d = socket(at.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
      if (connect(d, reinterpret_cast<sockaddr*>(&at), alen) == 0) {
        peer = d;
      } else {
        close(d);
      }
    });
    epoll_event got{};
    const int n = epoll_wait(ep, &got, 1, 4000);
    std::printf("round %d readable %s\n", round, n == 1 ? "yes" : "no");
    const int a = accept4(l, nullptr, nullptr, SOCK_CLOEXEC);
    t.join();
    if (a < 0) {
      std::printf("round %d accept: errno=%s\n", round, errno_name(errno));
      if (peer >= 0) close(peer);
      continue;
    }
    bool crossed = false;
    if (peer >= 0 && send(peer, "ping\n", 5, MSG_NOSIGNAL) == 5) {
      char buf[8] = {};
      pollfd p{a, POLLIN, 0};
      crossed = poll(&p, 1, 5000) == 1 && recv(a, buf, 5, MSG_WAITALL) == 5 &&
                std::memcmp(buf, "ping\n", 5) == 0;
    }
    std::printf("round %d accepted, data %s\n", round, crossed ? "ok" : "LOST");
    const auto t0 = Clock::now();
    const int again = accept4(l, nullptr, nullptr, SOCK_CLOEXEC);
    std::printf("round %d accept again: %s after %ld ms\n", round,
                again < 0 ? errno_name(errno) : "a connection", ms_since(t0));
    std::printf("round %d readable after: %s\n", round,
                epoll_wait(ep, &got, 1, 0) == 0 ? "no" : "yes");
    close(a);
    if (peer >= 0) close(peer);
  }
  close(ep);
  close(l);
  return 0;
}

// A listener through a proxy whose BIND ends after its first reply: accept reports an error,
// and the program's event loop does not spin (the CPU time of 3 s of waiting is printed).
int do_bindfail(const char* local) {
  int ep = -1;
  const int l = listening(local, true, ep);
  if (l < 0) return 2;
  rusage before{}, after{};
  getrusage(RUSAGE_SELF, &before);
  const auto t0 = Clock::now();
  int events = 0, errors = 0, accepted = 0;
  while (ms_since(t0) < 3000) {
    epoll_event got{};
    if (epoll_wait(ep, &got, 1, 200) != 1) continue;
    ++events;
    const int a = accept4(l, nullptr, nullptr, SOCK_CLOEXEC);
    if (a >= 0) {
      ++accepted;
      close(a);
    } else if (errno != EAGAIN) {
      if (errors == 0) std::printf("first accept error: errno=%s\n", errno_name(errno));
      ++errors;
    }
  }
  getrusage(RUSAGE_SELF, &after);
  const long cpu_ms = (after.ru_utime.tv_sec - before.ru_utime.tv_sec) * 1000 +
                      (after.ru_utime.tv_usec - before.ru_utime.tv_usec) / 1000 +
                      (after.ru_stime.tv_sec - before.ru_stime.tv_sec) * 1000 +
                      (after.ru_stime.tv_usec - before.ru_stime.tv_usec) / 1000;
  std::printf("events %d errors %d accepted %d cpu %ld ms\n", events, errors, accepted, cpu_ms);
  return 0;
}

// A pre-forking server: a listener through the proxy (blocking), CHILDREN processes forked
// after listen(), each accepting one connection; the parent (whose library keeps the BINDs
// going) connects one peer after the other, each to where getsockname() says, and reads each
// one's greeting from the child that accepted it.
int do_bindprefork(const char* local, int children) {
  int ep = -1;
  const int l = listening(local, false, ep);
  if (l < 0) return 2;
  std::vector<pid_t> pids;
  for (int k = 0; k < children; ++k) {
    const pid_t pid = fork();
    if (pid == 0) {
      const int a = accept4(l, nullptr, nullptr, SOCK_CLOEXEC);
      if (a < 0) {
        std::printf("child accept: errno=%s\n", errno_name(errno));
        std::fflush(stdout);
        _exit(1);
      }
      const std::string hello = "hello from child " + std::to_string(getpid()) + "\n";
      (void)!send(a, hello.data(), hello.size(), MSG_NOSIGNAL);
      char buf[8];
      (void)!recv(a, buf, sizeof buf, 0);  // until the peer closes
      _exit(0);
    }
    pids.push_back(pid);
  }
  int greeted = 0;
  for (int k = 0; k < children; ++k) {
    sockaddr_storage at{};
    socklen_t alen = sizeof at;
    getsockname(l, reinterpret_cast<sockaddr*>(&at), &alen);
    const int d = socket(at.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    timeval tv{5, 0};
    setsockopt(d, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (connect(d, reinterpret_cast<sockaddr*>(&at), alen) != 0) {
      std::printf("peer %d connect: errno=%s\n", k, errno_name(errno));
      close(d);
      continue;
    }
    char buf[64] = {};
    const ssize_t n = recv(d, buf, sizeof buf - 1, 0);
    if (n > 0 && std::strncmp(buf, "hello from child ", 17) == 0) ++greeted;
    close(d);
  }
  int ok = 0;
  for (const pid_t pid : pids) {
    int status = 0;
    waitpid(pid, &status, 0);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) ++ok;
  }
  std::printf("prefork: %d of %d peers greeted, %d children accepted\n", greeted, children, ok);
  close(l);
  return 0;
}

// sendmmsg of 100 datagrams to ADDR:PORT (more than the 64 an earlier supervisor read).
int do_sendmmsg100(const char* addr, const char* port) {
  sockaddr_storage ss{};
  socklen_t len = 0;
  const int fd = udp_to(addr, port, ss, len);
  char payload[100][8];
  iovec iov[100];
  mmsghdr vec[100]{};
  for (int i = 0; i < 100; ++i) {
    std::snprintf(payload[i], sizeof payload[i], "m%d", i);
    iov[i] = iovec{payload[i], std::strlen(payload[i])};
    vec[i].msg_hdr.msg_name = &ss;
    vec[i].msg_hdr.msg_namelen = len;
    vec[i].msg_hdr.msg_iov = &iov[i];
    vec[i].msg_hdr.msg_iovlen = 1;
  }
  report("sendmmsg", sendmmsg(fd, vec, 100, 0));
  // The catcher echoes: the replies that come back (with their source) within 2 s of quiet.
  int echoes = 0;
  for (; echoes < 100; ++echoes) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 2000) != 1) break;
    char buf[16];
    sockaddr_storage from{};
    socklen_t flen = sizeof from;
    if (recvfrom(fd, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &flen) < 0) break;
  }
  std::printf("echoes %d\n", echoes);
  close(fd);
  return 0;
}

// Races for 2 s (or 200,000 calls): a UDP socket connected to the direct DIRECT:DPORT sends
// with sendmsg (or sendmmsg of 8), msg_name NULL, while another thread points msg_name at the
// proxied PROXIED:PPORT and back. `connect`: TCP connects (non-blocking, closed at once) to
// an address another thread flips between DIRECT and PROXIED.
// The deliberate races of racename: another thread's stores that the library must not
// trust. Not instrumented (and no memcpy, which ThreadSanitizer intercepts), so that a
// ThreadSanitizer build reports the library's own races, not the one this program makes on
// purpose. Through volatile: the compiler must not fold the stores away.
__attribute__((no_sanitize("thread"))) __attribute__((noinline)) void flip_address(
    sockaddr_storage* target, const sockaddr_storage* a, socklen_t alen, const sockaddr_storage* b,
    socklen_t blen) {
  auto* t = reinterpret_cast<volatile unsigned char*>(target);
  const auto* pa = reinterpret_cast<const unsigned char*>(a);
  const auto* pb = reinterpret_cast<const unsigned char*>(b);
  for (socklen_t i = 0; i < alen; ++i) t[i] = pa[i];
  for (socklen_t i = 0; i < blen; ++i) t[i] = pb[i];
}

__attribute__((no_sanitize("thread"))) __attribute__((noinline)) void flip_names(
    mmsghdr* vec, int n, sockaddr_storage* name, socklen_t len) {
  for (int i = 0; i < n; ++i) {
    volatile msghdr* vm = &vec[i].msg_hdr;
    vm->msg_namelen = len;
    vm->msg_name = name;
    vm->msg_name = nullptr;
    vm->msg_namelen = 0;
  }
}

int do_racename(const char* direct, const char* dport, const char* proxied, const char* pport,
                const std::string& how) {
  sockaddr_storage d{}, p{};
  socklen_t dlen = 0, plen = 0;
  const int fd = udp_to(direct, dport, d, dlen);
  parse(proxied, pport, p);
  plen = full_len(p);
  report("connect", connect(fd, reinterpret_cast<sockaddr*>(&d), dlen));
  iovec iov{const_cast<char*>("race"), 4};
  constexpr int kBatch = 8;
  mmsghdr vec[kBatch]{};
  for (auto& v : vec) {
    v.msg_hdr.msg_iov = &iov;
    v.msg_hdr.msg_iovlen = 1;
  }
  msghdr& m = vec[0].msg_hdr;
  sockaddr_storage target = d;  // for `connect`: flipped between d and p
  std::atomic<bool> stop{false};
  const bool flip_target = how == "connect";
  const int headers = how == "mmsg" ? kBatch : 1;
  std::thread flipper([&] {
    while (!stop.load(std::memory_order_relaxed)) {
      if (flip_target) {
        flip_address(&target, &p, plen, &d, dlen);
      } else {
        flip_names(vec, headers, &p, plen);
      }
    }
  });
  const auto t0 = Clock::now();
  long calls = 0, ok = 0;
  const long most = how == "connect" ? 5000 : 200000;
  while (calls < most && ms_since(t0) < 2000) {
    ++calls;
    if (how == "connect") {
      const int c = socket(d.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      if (connect(c, reinterpret_cast<sockaddr*>(&target), dlen) == 0 || errno == EINPROGRESS) {
        ++ok;
      }
      close(c);
    } else if (how == "mmsg") {
      const int r = sendmmsg(fd, vec, kBatch, MSG_DONTWAIT);
      if (r > 0) ok += r;
    } else if (sendmsg(fd, &m, MSG_DONTWAIT) >= 0) {
      ++ok;
    }
  }
  stop = true;
  flipper.join();
  std::printf("racename: %ld calls, %ld sent\n", calls, ok);
  close(fd);
  return 0;
}

// Races for 2 s: sendto with the proxied PROXIED:PPORT on descriptor N, which another thread
// switches between a TCP socket (connected to the direct DIRECT:DPORT: the address is
// ignored) and a UDP socket (dup2).
int do_racedup(const char* direct, const char* dport, const char* proxied, const char* pport) {
  sockaddr_storage d{}, p{};
  parse(direct, dport, d);
  parse(proxied, pport, p);
  const socklen_t dlen = full_len(d);
  const socklen_t plen = full_len(p);
  const int tcp = socket(d.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  report("connect", connect(tcp, reinterpret_cast<sockaddr*>(&d), dlen));
  const int udp = socket(p.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  const int n = dup(tcp);
  std::atomic<bool> stop{false};
  std::thread swapper([&] {
    while (!stop.load(std::memory_order_relaxed)) {
      dup2(udp, n);
      dup2(tcp, n);
    }
  });
  const auto t0 = Clock::now();
  long calls = 0;
  while (calls < 200000 && ms_since(t0) < 2000) {
    ++calls;
    (void)sendto(n, "x", 1, MSG_DONTWAIT | MSG_NOSIGNAL, reinterpret_cast<sockaddr*>(&p), plen);
  }
  stop = true;
  swapper.join();
  std::printf("racedup: %ld calls\n", calls);
  return 0;
}

// A UNIX socket connected by a relative path after chdir(DIR): a decoy listens at that path
// in the directory the program started in, the real one in DIR. Prints which one took the
// connection and whose process SO_PEERCRED names; `threads`: a second thread runs meanwhile.
int do_unixcwd(const char* dir, bool threaded) {
  mkdir(dir, 0700);
  const std::string real_path = std::string(dir) + "/u.sock";
  unlink("u.sock");
  unlink(real_path.c_str());
  auto listener = [](const std::string& path) {
    const int l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un un{};
    un.sun_family = AF_UNIX;
    std::snprintf(un.sun_path, sizeof un.sun_path, "%s", path.c_str());
    bind(l, reinterpret_cast<sockaddr*>(&un), sizeof un);
    listen(l, 4);
    return l;
  };
  const int decoy = listener("u.sock");
  const int real_one = listener(real_path);
  std::atomic<bool> stop{false};
  std::thread other;
  if (threaded) {
    other = std::thread([&] {
      while (!stop.load()) usleep(1000);
    });
  }
  if (chdir(dir) != 0) return 2;
  const int c = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un un{};
  un.sun_family = AF_UNIX;
  std::snprintf(un.sun_path, sizeof un.sun_path, "u.sock");
  report("connect", connect(c, reinterpret_cast<sockaddr*>(&un), sizeof un));
  for (const auto& [name, l] : {std::pair<const char*, int>{"real", real_one}, {"decoy", decoy}}) {
    pollfd p{l, POLLIN, 0};
    if (poll(&p, 1, 0) != 1) continue;
    const int a = accept(l, nullptr, nullptr);
    ucred cred{};
    socklen_t clen = sizeof cred;
    getsockopt(a, SOL_SOCKET, SO_PEERCRED, &cred, &clen);
    std::printf("reached %s; peer pid is %s\n", name, cred.pid == getpid() ? "mine" : "another");
    close(a);
  }
  stop = true;
  if (other.joinable()) other.join();
  (void)!chdir("..");
  unlink("u.sock");
  unlink(real_path.c_str());
  return 0;
}

// A blocking connect to ADDR:PORT that never completes (a tarpit), with a SIGALRM handler
// without SA_RESTART and alarm(1); SO_SNDTIMEO of 10 s bounds it whatever happens.
void on_alarm(int) {}

int do_alarmconnect(const char* addr, const char* port) {
  sockaddr_storage ss{};
  if (!parse(addr, port, ss)) return 2;
  struct sigaction sa {};
  sa.sa_handler = on_alarm;
  sigaction(SIGALRM, &sa, nullptr);  // no SA_RESTART
  const int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  timeval tv{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  alarm(1);
  const auto t0 = Clock::now();
  const int r = connect(fd, reinterpret_cast<sockaddr*>(&ss), full_len(ss));
  const int e = errno;
  std::printf("connect: %s after %ld ms\n", r == 0 ? "ok" : errno_name(e), ms_since(t0));
  return 0;
}

// How many of this process's threads are inside connect() (/proc/self/task/*/syscall starts
// with the number of the system call a thread is blocked in).
int threads_in_connect() {
  int n = 0;
  DIR* d = opendir("/proc/self/task");
  if (d == nullptr) return -1;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    const std::string path = std::string("/proc/self/task/") + e->d_name + "/syscall";
    FILE* f = std::fopen(path.c_str(), "r");
    if (f == nullptr) continue;
    long nr = -1;
    if (std::fscanf(f, "%ld", &nr) == 1 && nr == SYS_connect) ++n;
    std::fclose(f);
  }
  closedir(d);
  return n;
}

int do_stuckmany(const char* tarpit, const char* tport, const char* good, const char* gport,
                 int n) {
  sockaddr_storage t{}, g{};
  if (!parse(tarpit, tport, t) || !parse(good, gport, g) || n <= 0) return 2;
  const socklen_t tlen = full_len(t);
  const socklen_t glen = full_len(g);
  std::vector<std::thread> stuck;
  for (int i = 0; i < n; ++i) {
    stuck.emplace_back([&] {
      const int fd = socket(t.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
      timeval tv{20, 0};
      setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
      (void)connect(fd, reinterpret_cast<sockaddr*>(&t), tlen);
      close(fd);
    });
  }
  // Every one of them inside connect() (bounded: 10 s).
  const auto t0 = Clock::now();
  int inside = 0;
  while ((inside = threads_in_connect()) < n && ms_since(t0) < 10000) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  std::printf("inside connect: %d of %d\n", inside, n);
  const int fd = socket(g.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const auto t1 = Clock::now();
  const int r = connect(fd, reinterpret_cast<sockaddr*>(&g), glen);
  const int e = errno;
  std::printf("good connect: %s after %ld ms\n", r == 0 ? "ok" : errno_name(e), ms_since(t1));
  std::fflush(stdout);
  close(fd);
  _exit(0);  // the stuck threads are not waited for
}

// A DNS client of SERVER:53 (a connected UDP socket, as static glibc and Go use): one query
// for NAME, the answer's rcode and how long it took.
int do_dnsask(const char* server, const char* name) {
  sockaddr_storage ss{};
  socklen_t len = 0;
  const int fd = udp_to(server, "53", ss, len);
  report("connect", connect(fd, reinterpret_cast<sockaddr*>(&ss), len));
  const std::string q = dns_query(name, 0x4242);
  const auto t0 = Clock::now();
  report("send", send(fd, q.data(), q.size(), 0));
  unsigned char buf[1500];
  pollfd p{fd, POLLIN, 0};
  if (poll(&p, 1, 5000) == 1) {
    const ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n >= 12) {
      std::printf("answer rcode %d after %ld ms\n", buf[3] & 0x0F, ms_since(t0));
      return 0;
    }
  }
  std::printf("no answer after %ld ms\n", ms_since(t0));
  return 0;
}

// UDP through the proxy to an echo at HOST:PORT (a name: resolved as the program would),
// every way a program reads with a source, then connected: sendto/recvfrom, sendmsg/recvmsg,
// sendmmsg/recvmmsg, then connect + send + recv (and read).
int do_udpround(const char* host, const char* port) {
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_DGRAM;
  addrinfo* ai = nullptr;
  if (getaddrinfo(host, port, &hints, &ai) != 0) {
    std::printf("resolve failed\n");
    return 0;
  }
  sockaddr_storage to{};
  std::memcpy(&to, ai->ai_addr, ai->ai_addrlen);
  const socklen_t len = ai->ai_addrlen;
  freeaddrinfo(ai);
  const int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  auto* tp = reinterpret_cast<sockaddr*>(&to);
  char buf[256];
  // sendto / recvfrom
  report("sendto", sendto(fd, "one", 3, 0, tp, len));
  sockaddr_storage from{};
  socklen_t flen = sizeof from;
  ssize_t n = recvfrom(fd, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &flen);
  std::printf("recvfrom: %s from %s\n",
              n == 3 && std::memcmp(buf, "one", 3) == 0 ? "'one'" : "WRONG",
              addr_text(from).c_str());
  // sendmsg / recvmsg
  iovec out_iov{const_cast<char*>("two!"), 4};
  msghdr out{};
  out.msg_name = tp;
  out.msg_namelen = len;
  out.msg_iov = &out_iov;
  out.msg_iovlen = 1;
  report("sendmsg", sendmsg(fd, &out, 0));
  iovec in_iov{buf, sizeof buf};
  msghdr in{};
  sockaddr_storage src{};
  in.msg_name = &src;
  in.msg_namelen = sizeof src;
  in.msg_iov = &in_iov;
  in.msg_iovlen = 1;
  n = recvmsg(fd, &in, 0);
  std::printf("recvmsg: %s from %s\n",
              n == 4 && std::memcmp(buf, "two!", 4) == 0 ? "'two!'" : "WRONG",
              addr_text(src).c_str());
  // sendmmsg / recvmmsg
  iovec mo{const_cast<char*>("three"), 5};
  mmsghdr mm{};
  mm.msg_hdr.msg_name = tp;
  mm.msg_hdr.msg_namelen = len;
  mm.msg_hdr.msg_iov = &mo;
  mm.msg_hdr.msg_iovlen = 1;
  report("sendmmsg", sendmmsg(fd, &mm, 1, 0));
  iovec mi{buf, sizeof buf};
  mmsghdr mr{};
  mr.msg_hdr.msg_iov = &mi;
  mr.msg_hdr.msg_iovlen = 1;
  const int got = recvmmsg(fd, &mr, 1, 0, nullptr);
  std::printf("recvmmsg: %s\n", got == 1 && mr.msg_len == 5 && std::memcmp(buf, "three", 5) == 0
                                    ? "'three'"
                                    : "WRONG");
  // connected: send, recv, read
  report("connect", connect(fd, tp, len));
  report("send", send(fd, "four", 4, 0));
  n = recv(fd, buf, sizeof buf, 0);
  std::printf("recv: %s\n", n == 4 && std::memcmp(buf, "four", 4) == 0 ? "'four'" : "WRONG");
  report("write", write(fd, "five!", 5));
  n = read(fd, buf, sizeof buf);
  std::printf("read: %s\n", n == 5 && std::memcmp(buf, "five!", 5) == 0 ? "'five!'" : "WRONG");
  sockaddr_storage peer{};
  socklen_t plen = sizeof peer;
  getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &plen);
  std::printf("peer %s\n", addr_text(peer).c_str());
  close(fd);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: see the comment at the top of attack.cpp\n");
    return 2;
  }
  const std::string mode = argv[1];
  if (mode == "oddlen" && argc == 6) {
    return do_oddlen(argv[2], argv[3], argv[4], std::atoi(argv[5]));
  }
  if (mode == "stubinject" && argc == 5) return do_stubinject(argv[2], argv[3], argv[4]);
  if (mode == "udpgap" && argc == 4) return do_udpgap(argv[2], argv[3]);
  if ((mode == "asyncdata" || mode == "asyncforkclose") && argc == 4) {
    // A non-blocking connect to ADDR:PORT under way, then the attack.
    sockaddr_storage ss{};
    const int fd = tcp_nonblocking(argv[2], argv[3], ss);
    if (fd < 0) return 2;
    return mode == "asyncdata" ? do_asyncdata(fd, ss) : do_asyncforkclose(fd);
  }
  if (mode == "bindloop" && argc == 4) return do_bindloop(argv[2], std::atoi(argv[3]));
  if (mode == "bindfail" && argc == 3) return do_bindfail(argv[2]);
  if (mode == "sendmmsg100" && argc == 4) return do_sendmmsg100(argv[2], argv[3]);
  if (mode == "racename" && (argc == 6 || argc == 7)) {
    return do_racename(argv[2], argv[3], argv[4], argv[5], argc == 7 ? argv[6] : "");
  }
  if (mode == "racedup" && argc == 6) return do_racedup(argv[2], argv[3], argv[4], argv[5]);
  if (mode == "unixcwd" && (argc == 3 || argc == 4)) return do_unixcwd(argv[2], argc == 4);
  if (mode == "alarmconnect" && argc == 4) return do_alarmconnect(argv[2], argv[3]);
  if (mode == "stuckmany" && argc == 7) {
    return do_stuckmany(argv[2], argv[3], argv[4], argv[5], std::atoi(argv[6]));
  }
  if (mode == "dnsask" && argc == 4) return do_dnsask(argv[2], argv[3]);
  if (mode == "udpround" && argc == 4) return do_udpround(argv[2], argv[3]);
  if (mode == "bindprefork" && argc == 4) return do_bindprefork(argv[2], std::atoi(argv[3]));
  if (mode == "udppeek" && argc == 4) return do_udppeek(argv[2], argv[3]);
  if (mode == "udptimeout" && argc == 4) return do_udptimeout(argv[2], argv[3]);
  if (mode == "udpconnected" && argc == 4) return do_udpconnected(argv[2], argv[3]);
  if (mode == "udproutes" && argc == 6) return do_udproutes(argv[2], argv[3], argv[4], argv[5]);
  if (mode == "udpstale" && argc == 4) return do_udpstale(argv[2], argv[3]);
  if (mode == "udpbig" && argc == 4) return do_udpbig(argv[2], argv[3]);
  if (mode == "udpnonblock" && (argc == 4 || argc == 5)) {
    return do_udpnonblock(argv[2], argv[3], argc == 5);
  }
  std::fprintf(stderr, "usage: see the comment at the top of attack.cpp\n");
  return 2;
}
