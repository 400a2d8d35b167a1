// A small C-style client used by the shim integration tests. Each mode does one thing the way
// real programs do it and prints what happened; exit 0 on success, 1 with "errno=NAME" else.
//   probe connect HOST PORT [block|poll|select|epoll-et|epoll-before] [4|6|mapped]
//   probe threads HOST PORT THREADS COUNT
//   probe dup HOST PORT
//   probe twice HOST PORT          (a second connect on a connected socket: EISCONN)
//   probe resolve NAME             (getaddrinfo AF_UNSPEC / AF_INET6, gethostbyname*, getnameinfo)
//   probe udp ADDR PORT            (one datagram with sendto, then connect + send)
//   probe udp53 ADDR               (a raw DNS query over UDP: refused in remote-DNS mode)
//   probe resquery NAME            (res_query and relatives, and the old __res_query name)
//   probe gaia NAME                (getaddrinfo_a: GAI_WAIT, then GAI_NOWAIT with a thread
//                                   notification, gai_suspend and gai_cancel)
//   probe reverse ADDR             (getnameinfo, gethostbyaddr, gethostbyaddr_r of a real address)
//   probe forked HOST PORT         (fork first; the child resolves, the parent connects to the
//                                   child's address: the fake DNS table is shared)
//   probe fastopen HOST PORT       (TCP Fast Open: sendto(MSG_FASTOPEN) on an unconnected socket)
//   probe fakes FIRST COUNT PORT   (FIRST as AF_INET, then COUNT more names; then FIRST's cached
//                                   address must still reach FIRST)
//   probe sigconnect HOST PORT restart|norestart
//                                  (a blocking connect interrupted by SIGALRM after 300 ms)
//   probe sndtimeo HOST PORT MS    (SO_SNDTIMEO bounds a blocking connect; then SO_ERROR)
//   probe stale HOST PORT fclose|closefrom|closerange|syscall|unspec
//                                  (a proxied fd goes away behind the library's back; a new
//                                   socket with the same number must start clean)
//   probe handler HOST PORT ADDR PORT2
//                                  (a SIGALRM handler connects to ADDR:PORT2 while the main
//                                   thread is inside a proxied connect)
//   probe stderrsock HOST PORT     (fd 2 is the program's own socket: no log line in its data)
//   probe soerror HOST PORT        (a failed proxied connect leaves SO_ERROR at 0)
//   probe mismatch HOST PORT       (an IPv4 address on an IPv6 socket: the kernel's EINVAL)
//   probe execpeer HOST PORT inherit|cloexec|spawn|dup2
//                                  (exec or spawn `probe peer FD` with the proxied socket)
//   probe peer FD                  (what getpeername says about FD)
//   probe epollget HOST PORT PATH  (HTTP/1.0 GET on a non-blocking socket registered with epoll,
//                                   edge-triggered, BEFORE connect; prints the body's size and
//                                   FNV-1a hash)
//   probe forkget HOST PORT PATH   (connect, fork, the parent exits at once; the child, once
//                                   orphaned, does the GET)
//   probe stdioget HOST PORT PATH  (the GET through stdio: fdopen, fprintf, fread)
//   probe mapped HOST PORT NAME    (connect, then: is a library NAME in /proc/self/maps?)
//   probe spliceget HOST PORT PATH (the GET sent with sendfile from a file, the response taken
//                                   with splice into a pipe)
//   probe async HOST PORT API      (the event-loop connect on a non-blocking socket: EINPROGRESS
//                                   at once, EALREADY, EAGAIN for I/O while under way, not ready
//                                   early, then writable with API poll|ppoll|select|pselect|
//                                   epoll|epoll-et|epoll-et-before|epoll-oneshot, SO_ERROR,
//                                   EISCONN, one edge only, an echo)
//   probe asyncclose HOST PORT     (close() while the handshake is under way: every descriptor
//                                   goes at once)
//   probe asyncfork HOST PORT      (fork while the handshake is under way: the child waits for
//                                   writable and echoes, the parent sees it connected)
//   probe vecget HOST PORT PATH    (the GET in two iovecs with sendmsg, the response read with
//                                   readv and recvmsg on a dup of the socket, waiting with
//                                   select, pselect and ppoll in turn)
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <dirent.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <resolv.h>
#include <semaphore.h>
#include <signal.h>
#include <spawn.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
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

int fail(const char* what, int e) {
  std::printf("%s: errno=%s (%s)\n", what, errno_name(e), std::strerror(e));
  return 1;
}

// Resolves HOST:PORT for a family: 4, 6, or "mapped" (IPv6 socket, v4-mapped address).
bool resolve(const char* host, const char* port, const std::string& fam, sockaddr_storage& ss,
             socklen_t& len) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_family = fam == "6" ? AF_INET6 : AF_INET;
  addrinfo* ai = nullptr;
  if (getaddrinfo(host, port, &hints, &ai) != 0) return false;
  std::memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
  len = ai->ai_addrlen;
  freeaddrinfo(ai);
  if (fam == "mapped") {
    sockaddr_in in{};
    std::memcpy(&in, &ss, sizeof in);
    sockaddr_in6 m{};
    m.sin6_family = AF_INET6;
    m.sin6_port = in.sin_port;
    m.sin6_addr.s6_addr[10] = 0xFF;
    m.sin6_addr.s6_addr[11] = 0xFF;
    std::memcpy(&m.sin6_addr.s6_addr[12], &in.sin_addr, 4);
    std::memcpy(&ss, &m, sizeof m);
    len = sizeof m;
  }
  return true;
}

// Waits for a non-blocking connect the way event loops do, then reads SO_ERROR.
int wait_connect(int fd, const std::string& how) {
  if (how == "poll") {
    pollfd p{fd, POLLOUT, 0};
    if (poll(&p, 1, 10000) != 1) return ETIMEDOUT;
  } else if (how == "select") {
    fd_set w;
    FD_ZERO(&w);
    FD_SET(fd, &w);
    timeval tv{10, 0};
    if (select(fd + 1, nullptr, &w, nullptr, &tv) != 1) return ETIMEDOUT;
  } else if (how == "epoll-et") {
    const int ep = epoll_create1(EPOLL_CLOEXEC);
    epoll_event ev{};
    ev.events = EPOLLOUT | EPOLLET;
    ev.data.fd = fd;
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    epoll_event out{};
    const int n = epoll_wait(ep, &out, 1, 10000);
    close(ep);
    if (n != 1) return ETIMEDOUT;
  }
  int err = 0;
  socklen_t len = sizeof err;
  getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
  return err;
}

int do_connect(const char* host, const char* port, const std::string& how, const std::string& fam) {
  sockaddr_storage ss{};
  socklen_t len = 0;
  if (!resolve(host, port, fam, ss, len)) return fail("resolve", EHOSTUNREACH);
  const bool nonblock = how != "block";
  const int fd =
      socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0), 0);
  if (fd < 0) return fail("socket", errno);
  int ep = -1;
  if (how == "epoll-before") {
    // Registered before connect, edge-triggered, as Go's runtime does.
    ep = epoll_create1(EPOLL_CLOEXEC);
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    ev.data.fd = fd;
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
  }
  if (connect(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    if (!nonblock || errno != EINPROGRESS) return fail("connect", errno);
    int err = 0;
    if (ep >= 0) {
      epoll_event out{};
      if (epoll_wait(ep, &out, 1, 10000) != 1 || (out.events & EPOLLOUT) == 0) err = ETIMEDOUT;
      socklen_t l = sizeof err;
      if (err == 0) getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &l);
    } else {
      err = wait_connect(fd, how);
    }
    if (err != 0) return fail("connect (SO_ERROR)", err);
  }
  // The app's flags are untouched.
  const int flags = fcntl(fd, F_GETFL);
  if (((flags & O_NONBLOCK) != 0) != nonblock) return fail("O_NONBLOCK changed", EPERM);
  if (ep >= 0) {
    // After the handshake, the edge-triggered registration still delivers the echo.
    send(fd, "edge\n", 5, MSG_NOSIGNAL);
    bool got_in = false;
    for (int i = 0; i < 5 && !got_in; ++i) {
      epoll_event out{};
      if (epoll_wait(ep, &out, 1, 2000) == 1 && (out.events & EPOLLIN) != 0) got_in = true;
    }
    if (!got_in) return fail("epoll EPOLLIN after connect", ETIMEDOUT);
    char buf[16];
    if (recv(fd, buf, sizeof buf, 0) != 5) return fail("epoll recv", errno);
  }
  sockaddr_storage peer{};
  socklen_t plen = sizeof peer;
  getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &plen);
  std::printf("peer %s\n", addr_text(peer).c_str());
  if (!echo(fd, "hello through socksify\n")) return fail("echo", errno);
  std::printf("echo ok\n");
  close(fd);
  if (ep >= 0) close(ep);
  return 0;
}

int do_threads(const char* host, const char* port, int threads, int count) {
  std::atomic<int> ok{0}, bad{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t) {
    ts.emplace_back([&] {
      for (int i = 0; i < count; ++i) {
        sockaddr_storage ss{};
        socklen_t len = 0;
        if (!resolve(host, port, "4", ss, len)) {
          ++bad;
          continue;
        }
        const int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (connect(fd, reinterpret_cast<sockaddr*>(&ss), len) == 0 && echo(fd, "t\n")) {
          ++ok;
        } else {
          ++bad;
        }
        close(fd);
      }
    });
  }
  for (auto& t : ts) t.join();
  std::printf("ok %d failed %d\n", ok.load(), bad.load());
  return bad == 0 ? 0 : 1;
}

int do_dup(const char* host, const char* port) {
  sockaddr_storage ss{};
  socklen_t len = 0;
  if (!resolve(host, port, "4", ss, len)) return fail("resolve", EHOSTUNREACH);
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (connect(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) return fail("connect", errno);
  const int a = dup(fd);
  const int b = fcntl(fd, F_DUPFD_CLOEXEC, 100);
  const int c = dup3(fd, 200, O_CLOEXEC);
  close(fd);
  for (int d : {a, b, c}) {
    sockaddr_storage peer{};
    socklen_t plen = sizeof peer;
    if (getpeername(d, reinterpret_cast<sockaddr*>(&peer), &plen) != 0)
      return fail("getpeername", errno);
    if (std::memcmp(&peer, &ss, len) != 0) return fail("getpeername after dup", EPROTO);
  }
  if (!echo(c, "via dup\n")) return fail("echo on dup", errno);
  // A new socket that reuses a closed proxied fd number starts clean.
  close(a);
  close(b);
  close(c);
  const int fresh = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_storage peer{};
  socklen_t plen = sizeof peer;
  if (getpeername(fresh, reinterpret_cast<sockaddr*>(&peer), &plen) == 0) {
    return fail("fresh socket has a peer", EPROTO);
  }
  std::printf("dup ok\n");
  return 0;
}

int do_twice(const char* host, const char* port) {
  sockaddr_storage ss{};
  socklen_t len = 0;
  if (!resolve(host, port, "4", ss, len)) return fail("resolve", EHOSTUNREACH);
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (connect(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) return fail("connect", errno);
  if (connect(fd, reinterpret_cast<sockaddr*>(&ss), len) == 0) return fail("second connect", 0);
  return fail("second connect", errno);  // expected: EISCONN
}

int do_resolve(const char* name) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  int rc = 0;
  for (int fam : {AF_UNSPEC, AF_INET6}) {
    hints.ai_family = fam;
    addrinfo* ai = nullptr;
    const int r = getaddrinfo(name, "80", &hints, &ai);
    if (r != 0) {
      std::printf("getaddrinfo %s: %s\n", fam == AF_INET6 ? "AF_INET6" : "AF_UNSPEC",
                  gai_strerror(r));
      rc = 1;
      continue;
    }
    for (addrinfo* p = ai; p != nullptr; p = p->ai_next) {
      sockaddr_storage ss{};
      std::memcpy(&ss, p->ai_addr, p->ai_addrlen);
      char host[NI_MAXHOST] = "";
      getnameinfo(p->ai_addr, p->ai_addrlen, host, sizeof host, nullptr, 0, NI_NAMEREQD);
      std::printf("%s %s name=%s\n", fam == AF_INET6 ? "AF_INET6" : "AF_UNSPEC",
                  addr_text(ss).c_str(), host);
    }
    freeaddrinfo(ai);
  }
  hostent* h = gethostbyname(name);
  if (h != nullptr) {
    char buf[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, h->h_addr_list[0], buf, sizeof buf);
    std::printf("gethostbyname %s\n", buf);
    hostent* back = gethostbyaddr(h->h_addr_list[0], 4, AF_INET);
    std::printf("gethostbyaddr %s\n", back != nullptr ? back->h_name : "(none)");
  } else {
    std::printf("gethostbyname: %s\n", hstrerror(h_errno));
    rc = 1;
  }
  hostent he{};
  hostent* res = nullptr;
  char buf[1024];
  int herr = 0;
  if (gethostbyname2_r(name, AF_INET6, &he, buf, sizeof buf, &res, &herr) == 0 && res != nullptr) {
    char text[INET6_ADDRSTRLEN];
    inet_ntop(AF_INET6, res->h_addr_list[0], text, sizeof text);
    std::printf("gethostbyname2_r %s\n", text);
  } else {
    std::printf("gethostbyname2_r: %s\n", hstrerror(herr));
    rc = 1;
  }
  return rc;
}

int do_udp(const char* addr, const char* port) {
  sockaddr_storage ss{};
  socklen_t len = 0;
  if (!resolve(addr, port, std::strchr(addr, ':') != nullptr ? "6" : "4", ss, len)) {
    return fail("resolve", EHOSTUNREACH);
  }
  const int fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (sendto(fd, "ping", 4, 0, reinterpret_cast<sockaddr*>(&ss), len) != 4) {
    return fail("sendto", errno);
  }
  if (connect(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) return fail("connect", errno);
  if (send(fd, "ping", 4, 0) != 4) return fail("send", errno);
  std::printf("udp sent\n");
  return 0;
}

// A datagram of `n` octets: a counter pattern, so that a reordered or truncated echo shows.
std::vector<char> pattern(std::size_t n, char tag) {
  std::vector<char> v(n);
  for (std::size_t i = 0; i < n; ++i)
    v[i] = static_cast<char>((i * 7 + static_cast<std::size_t>(tag)) & 0xFF);
  if (n > 0) v[0] = tag;
  return v;
}

// UDP may lose a datagram (a full socket buffer on a busy machine): each exchange sends again
// after 2 s of silence, four times at most. A late echo of an earlier attempt (or step) is
// recognised by its contents and skipped.
template <class Send, class Receive>
bool exchange(const char* what, Send send_once, Receive receive_match) {
  for (int attempt = 0; attempt < 4; ++attempt) {
    if (!send_once()) {
      fail(what, errno);
      return false;
    }
    if (receive_match()) return true;
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
      fail(what, errno);
      return false;
    }
  }
  fail(what, ETIMEDOUT);
  return false;
}

// Every UDP call family against the lab's UDP echo (HOST PORT, family 4 or 6): sendto and
// recvfrom with SIZE octets; sendmsg and recvmsg split over two iovecs; MSG_PEEK and MSG_TRUNC
// with a short buffer; sendmmsg and recvmmsg, a batch of three; connect, then send, recv,
// write, read, writev, readv and getpeername; a non-blocking socket driven by epoll.
int do_udpecho(const char* host, const char* port, const char* fam, std::size_t size) {
  sockaddr_storage ss{};
  socklen_t len = 0;
  if (!resolve(host, port, fam, ss, len)) return fail("resolve", EHOSTUNREACH);
  const int fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  timeval tv{2, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  const int rcvbuf = 1 << 20;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  auto* to = reinterpret_cast<sockaddr*>(&ss);
  std::vector<char> in(size + 100);
  const auto sz = static_cast<ssize_t>(size);
  // recvfrom
  {
    const std::vector<char> o = pattern(size, 'a');
    sockaddr_storage from{};
    if (!exchange(
            "sendto/recvfrom", [&] { return sendto(fd, o.data(), size, 0, to, len) == sz; },
            [&] {
              for (;;) {
                socklen_t flen = sizeof from;
                const ssize_t n = recvfrom(fd, in.data(), in.size(), 0,
                                           reinterpret_cast<sockaddr*>(&from), &flen);
                if (n < 0) return false;
                if (n == sz && std::memcmp(in.data(), o.data(), size) == 0) return true;
              }
            })) {
      return 1;
    }
    std::printf("recvfrom %zu from %s\n", size, addr_text(from).c_str());
  }
  // sendmsg / recvmsg over two iovecs each.
  {
    const std::vector<char> o = pattern(size, 'b');
    const std::size_t half = size / 2;
    std::vector<char> x(half), y(size - half + 10);
    sockaddr_storage src{};
    msghdr r{};
    iovec ii[2];
    if (!exchange(
            "sendmsg/recvmsg",
            [&] {
              iovec oi[2] = {{const_cast<char*>(o.data()), half},
                             {const_cast<char*>(o.data()) + half, size - half}};
              msghdr m{};
              m.msg_name = to;
              m.msg_namelen = len;
              m.msg_iov = oi;
              m.msg_iovlen = 2;
              return sendmsg(fd, &m, 0) == sz;
            },
            [&] {
              for (;;) {
                ii[0] = iovec{x.data(), x.size()};
                ii[1] = iovec{y.data(), y.size()};
                r = msghdr{};
                r.msg_name = &src;
                r.msg_namelen = sizeof src;
                r.msg_iov = ii;
                r.msg_iovlen = 2;
                const ssize_t n = recvmsg(fd, &r, 0);
                if (n < 0) return false;
                if (n == sz && std::memcmp(x.data(), o.data(), half) == 0 &&
                    std::memcmp(y.data(), o.data() + half, size - half) == 0 &&
                    (r.msg_flags & MSG_TRUNC) == 0) {
                  return true;
                }
              }
            })) {
      return 1;
    }
    std::printf("recvmsg %zu from %s\n", size, addr_text(src).c_str());
  }
  // MSG_PEEK leaves the datagram; MSG_TRUNC reports its real length into a short buffer.
  {
    const std::vector<char> o = pattern(size, 'p');
    ssize_t shortened = 0;
    if (!exchange(
            "MSG_PEEK/MSG_TRUNC", [&] { return sendto(fd, o.data(), size, 0, to, len) == sz; },
            [&] {
              for (;;) {
                char small[4];
                const ssize_t n = recv(fd, small, sizeof small, MSG_PEEK | MSG_TRUNC);
                if (n < 0) return false;
                const bool ours = n == sz && small[0] == 'p';
                iovec iv{small, sizeof small};
                msghdr r{};
                r.msg_iov = &iv;
                r.msg_iovlen = 1;
                shortened = recvmsg(fd, &r, 0);
                if (!ours) continue;
                if (shortened != static_cast<ssize_t>(std::min<std::size_t>(size, 4)) ||
                    (size > 4 && (r.msg_flags & MSG_TRUNC) == 0)) {
                  errno = EPROTO;
                  return false;
                }
                return true;
              }
            })) {
      return 1;
    }
    std::printf("peek %zu, then %zd with MSG_TRUNC\n", size, shortened);
  }
  // A batch of three each way.
  {
    const char tags[3] = {'c', 'd', 'e'};
    std::vector<std::vector<char>> sent;
    for (char t : tags) sent.push_back(pattern(size, t));
    bool seen[3] = {false, false, false};
    if (!exchange(
            "sendmmsg/recvmmsg",
            [&] {
              // The ones not echoed yet (a relay's full buffer may drop one of three 60000-octet
              // datagrams sent together: sending all three again would drop one again).
              iovec ov[3];
              mmsghdr om[3]{};
              unsigned k = 0;
              for (int i = 0; i < 3; ++i) {
                if (seen[i]) continue;
                ov[k] = iovec{sent[static_cast<std::size_t>(i)].data(), size};
                om[k].msg_hdr.msg_name = to;
                om[k].msg_hdr.msg_namelen = len;
                om[k].msg_hdr.msg_iov = &ov[k];
                om[k].msg_hdr.msg_iovlen = 1;
                ++k;
              }
              return sendmmsg(fd, om, k, 0) == static_cast<int>(k);
            },
            [&] {
              std::vector<std::vector<char>> bufs(3, std::vector<char>(size + 10));
              while (!(seen[0] && seen[1] && seen[2])) {
                iovec iv[3];
                mmsghdr im[3]{};
                for (int i = 0; i < 3; ++i) {
                  iv[i] = iovec{bufs[static_cast<std::size_t>(i)].data(), size + 10};
                  im[i].msg_hdr.msg_iov = &iv[i];
                  im[i].msg_hdr.msg_iovlen = 1;
                }
                const int k = recvmmsg(fd, im, 3, MSG_WAITFORONE, nullptr);
                if (k <= 0) return false;
                for (int i = 0; i < k; ++i) {
                  const auto& b = bufs[static_cast<std::size_t>(i)];
                  for (int t = 0; t < 3; ++t) {
                    if (im[i].msg_len == size &&
                        std::memcmp(b.data(), sent[static_cast<std::size_t>(t)].data(), size) ==
                            0) {
                      seen[t] = true;
                    }
                  }
                }
              }
              return true;
            })) {
      return 1;
    }
    std::printf("sendmmsg/recvmmsg 3 x %zu\n", size);
  }
  // Connected: send/recv, write/read, writev/readv, getpeername.
  {
    if (connect(fd, to, len) != 0) return fail("connect", errno);
    sockaddr_storage peer{};
    socklen_t plen = sizeof peer;
    if (getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &plen) != 0) {
      return fail("getpeername", errno);
    }
    std::printf("peer %s\n", addr_text(peer).c_str());
    const std::vector<char> f = pattern(size, 'f'), g = pattern(size, 'g'), h = pattern(size, 'h');
    auto matches = [&](const std::vector<char>& o, auto read_once) {
      return [&, read_once] {
        for (;;) {
          const ssize_t n = read_once();
          if (n < 0) return false;
          if (n == sz && std::memcmp(in.data(), o.data(), size) == 0) return true;
        }
      };
    };
    if (!exchange(
            "send/recv", [&] { return send(fd, f.data(), size, 0) == sz; },
            matches(f, [&] { return recv(fd, in.data(), in.size(), 0); })) ||
        !exchange(
            "write/read", [&] { return write(fd, g.data(), size) == sz; },
            matches(g, [&] { return read(fd, in.data(), in.size()); })) ||
        !exchange(
            "writev/readv",
            [&] {
              iovec wv[2] = {{const_cast<char*>(h.data()), size / 2},
                             {const_cast<char*>(h.data()) + size / 2, size - size / 2}};
              return writev(fd, wv, 2) == sz;
            },
            matches(h, [&] {
              iovec rv[1] = {{in.data(), in.size()}};
              return readv(fd, rv, 1);
            }))) {
      return 1;
    }
    std::printf("connected send/recv, write/read, writev/readv %zu\n", size);
    sockaddr unspec{};
    unspec.sa_family = AF_UNSPEC;
    if (connect(fd, &unspec, sizeof unspec) != 0) return fail("connect AF_UNSPEC", errno);
    plen = sizeof peer;
    if (getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &plen) == 0 || errno != ENOTCONN) {
      return fail("getpeername after AF_UNSPEC", errno);
    }
    if (send(fd, f.data(), size, 0) >= 0) return fail("send after AF_UNSPEC", EPROTO);
    std::printf("disconnected: %s\n", errno_name(errno));
  }
  close(fd);
  // Non-blocking, driven by epoll.
  {
    const int u = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    setsockopt(u, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    const int ep = epoll_create1(EPOLL_CLOEXEC);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = u;
    epoll_ctl(ep, EPOLL_CTL_ADD, u, &ev);
    char buf[16];
    if (recv(u, buf, sizeof buf, 0) >= 0 || errno != EAGAIN) {
      return fail("recv on an empty socket", errno);
    }
    const std::vector<char> o = pattern(size, 'q');
    if (!exchange(
            "epoll", [&] { return sendto(u, o.data(), size, 0, to, len) == sz; },
            [&] {
              epoll_event got{};
              if (epoll_wait(ep, &got, 1, 2000) != 1) {
                errno = EAGAIN;
                return false;
              }
              const ssize_t n = recv(u, in.data(), in.size(), 0);
              if (n != sz) {
                errno = n < 0 ? errno : EPROTO;
                return false;
              }
              return true;
            })) {
      return 1;
    }
    if (recv(u, buf, sizeof buf, 0) >= 0 || errno != EAGAIN) {
      return fail("recv after the datagram", errno);
    }
    std::printf("epoll: readable, %zu, then EAGAIN\n", size);
    close(ep);
    close(u);
  }
  std::printf("udp echo ok\n");
  return 0;
}

// THREADS threads share one UDP socket, each sending COUNT datagrams and receiving as many
// (any thread may receive any echo; a datagram lost on a busy machine is sent again after 2 s
// of silence, four times at most): every datagram that arrives is whole.
int do_udpthreads(const char* host, const char* port, int threads, int count) {
  sockaddr_storage ss{};
  socklen_t len = 0;
  if (!resolve(host, port, "4", ss, len)) return fail("resolve", EHOSTUNREACH);
  const int fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  timeval tv{2, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  const int rcvbuf = 1 << 20;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  std::atomic<int> ok{0}, bad{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t) {
    ts.emplace_back([&, t] {
      const std::vector<char> o = pattern(512, static_cast<char>('A' + t));
      for (int i = 0; i < count; ++i) {
        bool done = false;
        for (int attempt = 0; attempt < 4 && !done; ++attempt) {
          if (sendto(fd, o.data(), o.size(), 0, reinterpret_cast<sockaddr*>(&ss), len) != 512) {
            break;
          }
          char in[600];
          const ssize_t n = recv(fd, in, sizeof in, 0);
          if (n == 512 && in[0] >= 'A' && in[0] < 'A' + threads &&
              std::memcmp(in + 1, pattern(512, in[0]).data() + 1, 511) == 0) {
            done = true;
          } else if (n >= 0) {
            break;  // a datagram that is not one of ours, or damaged
          }
        }
        done ? ++ok : ++bad;
      }
    });
  }
  for (auto& t : ts) t.join();
  std::printf("udp threads ok=%d bad=%d\n", ok.load(), bad.load());
  return bad.load() == 0 ? 0 : 1;
}

// One datagram of SIZE octets through a relay that answers in fragments: what arrives is
// the datagram, whole.
int do_udpfrag(const char* host, const char* port, std::size_t size) {
  sockaddr_storage ss{};
  socklen_t len = 0;
  if (!resolve(host, port, "4", ss, len)) return fail("resolve", EHOSTUNREACH);
  const int fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::vector<char> out = pattern(size, 'z'), in(size + 100);
  if (sendto(fd, out.data(), size, 0, reinterpret_cast<sockaddr*>(&ss), len) < 0) {
    return fail("sendto", errno);
  }
  const ssize_t n = recv(fd, in.data(), in.size(), 0);
  if (n != static_cast<ssize_t>(size) || std::memcmp(in.data(), out.data(), size) != 0) {
    return fail("recv (reassembled)", n < 0 ? errno : EPROTO);
  }
  std::printf("reassembled %zd\n", n);
  return 0;
}

// The proxy closes the control connection after echoing the first datagram: a later send
// fails (tried again, a bounded number of times, until the close has arrived).
int do_udpclose(const char* host, const char* port) {
  sockaddr_storage ss{};
  socklen_t len = 0;
  if (!resolve(host, port, "4", ss, len)) return fail("resolve", EHOSTUNREACH);
  const int fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  auto* to = reinterpret_cast<sockaddr*>(&ss);
  if (sendto(fd, "first", 5, 0, to, len) != 5) return fail("sendto", errno);
  char buf[16];
  if (recv(fd, buf, sizeof buf, 0) != 5) return fail("recv", errno);
  std::printf("first echoed\n");
  for (int i = 0; i < 500; ++i) {
    if (sendto(fd, "later", 5, 0, to, len) < 0) {
      std::printf("later send: errno=%s\n", errno_name(errno));
      return 0;
    }
    poll(nullptr, 0, 10);  // bounded: 5 s in all
  }
  std::printf("later sends still succeed\n");
  return 1;
}

// An ICMP echo request on a raw socket (as root): SOCKS carries only UDP.
int do_rawicmp(const char* addr) {
  sockaddr_in in{};
  in.sin_family = AF_INET;
  inet_pton(AF_INET, addr, &in.sin_addr);
  const int fd = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMP);
  if (fd < 0) return fail("socket", errno);
  const unsigned char echo[8] = {8, 0, 0xF7, 0xFF, 0, 0, 0, 0};  // type 8, checksum, id 0, seq 0
  if (sendto(fd, echo, sizeof echo, 0, reinterpret_cast<sockaddr*>(&in), sizeof in) < 0) {
    return fail("raw sendto", errno);
  }
  std::printf("raw sent\n");
  return 0;
}

// Active-FTP style: a connection through the proxy to HOST:PORT, then a socket bound to that
// connection's local address listens (through the proxy: SOCKS BIND) and announces where;
// a second connection through the proxy to the announced address is accepted (blocking, or
// non-blocking with epoll), and data crosses both ways.
int do_bind(const char* host, const char* port, bool nonblocking, const char* fam) {
  sockaddr_storage ss{};
  socklen_t len = 0;
  if (!resolve(host, port, fam, ss, len)) return fail("resolve", EHOSTUNREACH);
  const int family = ss.ss_family;
  const int c = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (connect(c, reinterpret_cast<sockaddr*>(&ss), len) != 0) return fail("connect", errno);
  // The data socket is bound to the control connection's address, as getsockname() gives it.
  sockaddr_storage local{};
  socklen_t llen = sizeof local;
  getsockname(c, reinterpret_cast<sockaddr*>(&local), &llen);
  std::printf("control connection's address %s\n", addr_text(local).c_str());
  if (family == AF_INET) {
    reinterpret_cast<sockaddr_in*>(&local)->sin_port = 0;
  } else {
    reinterpret_cast<sockaddr_in6*>(&local)->sin6_port = 0;
  }
  const int l = socket(family, SOCK_STREAM | SOCK_CLOEXEC | (nonblocking ? SOCK_NONBLOCK : 0), 0);
  if (bind(l, reinterpret_cast<sockaddr*>(&local), llen) != 0) return fail("bind", errno);
  if (listen(l, 1) != 0) return fail("listen", errno);
  sockaddr_storage at{};
  socklen_t alen = sizeof at;
  if (getsockname(l, reinterpret_cast<sockaddr*>(&at), &alen) != 0) {
    return fail("getsockname", errno);
  }
  std::printf("listening at %s\n", addr_text(at).c_str());
  int ep = -1;
  if (nonblocking) {
    ep = epoll_create1(EPOLL_CLOEXEC);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = l;
    epoll_ctl(ep, EPOLL_CTL_ADD, l, &ev);
    if (accept4(l, nullptr, nullptr, SOCK_CLOEXEC) >= 0 || errno != EAGAIN) {
      return fail("accept4 before a peer", errno);
    }
  }
  std::atomic<int> peer_fd{-1};
  std::thread peer([&] {
    const int d = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (connect(d, reinterpret_cast<sockaddr*>(&at), alen) == 0) peer_fd = d;
  });
  if (nonblocking) {
    epoll_event got{};
    if (epoll_wait(ep, &got, 1, 10000) != 1) return fail("epoll_wait", ETIMEDOUT);
  }
  sockaddr_storage from{};
  socklen_t flen = sizeof from;
  const int a = accept4(l, reinterpret_cast<sockaddr*>(&from), &flen, SOCK_CLOEXEC);
  peer.join();
  if (a < 0) return fail("accept", errno);
  if (peer_fd < 0) return fail("peer connect", ECONNREFUSED);
  std::printf("accepted from %s\n", addr_text(from).c_str());
  if (send(peer_fd, "ping\n", 5, MSG_NOSIGNAL) != 5) return fail("peer send", errno);
  char buf[8] = {};
  if (recv(a, buf, 5, MSG_WAITALL) != 5 || std::memcmp(buf, "ping\n", 5) != 0) {
    return fail("recv on the accepted socket", errno);
  }
  if (send(a, "pong\n", 5, MSG_NOSIGNAL) != 5) return fail("send on the accepted socket", errno);
  if (recv(peer_fd, buf, 5, MSG_WAITALL) != 5 || std::memcmp(buf, "pong\n", 5) != 0) {
    return fail("peer recv", errno);
  }
  sockaddr_storage p{};
  socklen_t plen = sizeof p;
  getpeername(a, reinterpret_cast<sockaddr*>(&p), &plen);
  std::printf("accepted peer %s\n", addr_text(p).c_str());
  // The listening socket listens on (a new BIND), at a new address or the same.
  alen = sizeof at;
  if (getsockname(l, reinterpret_cast<sockaddr*>(&at), &alen) != 0)
    return fail("getsockname again", errno);
  std::printf("listening again at %s\n", addr_text(at).c_str());
  std::printf("bind ok\n");
  return 0;
}

// A UDP socket associated in the parent, then used by a forked child and again by the
// parent: they share the association as they share the socket.
int do_udpfork(const char* host, const char* port) {
  sockaddr_storage ss{};
  socklen_t len = 0;
  if (!resolve(host, port, "4", ss, len)) return fail("resolve", EHOSTUNREACH);
  const int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  timeval tv{2, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  auto round_trip = [&](char tag) {
    const std::vector<char> o = pattern(100, tag);
    return exchange(
        "round trip",
        [&] {
          return sendto(fd, o.data(), o.size(), 0, reinterpret_cast<sockaddr*>(&ss), len) == 100;
        },
        [&] {
          for (;;) {
            char in[200];
            const ssize_t n = recv(fd, in, sizeof in, 0);
            if (n < 0) return false;
            if (n == 100 && in[0] == tag) return true;
          }
        });
  };
  if (!round_trip('p')) return 1;
  const pid_t child = fork();
  if (child == 0) _exit(round_trip('c') ? 0 : 1);
  int status = 0;
  waitpid(child, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return fail("the child's round trip", EPROTO);
  if (!round_trip('q')) return 1;
  std::printf("udp fork ok\n");
  return 0;
}

int open_fds() {
  int n = 0;
  if (DIR* d = opendir("/proc/self/fd")) {
    while (readdir(d) != nullptr) ++n;
    closedir(d);
  }
  return n;
}

// Nothing left behind: a UDP socket with an association, and a listening socket through the
// proxy, closed before any peer came, leave no descriptor of the library's open.
int do_fds(const char* host, const char* port) {
  sockaddr_storage ss{};
  socklen_t len = 0;
  if (!resolve(host, port, "4", ss, len)) return fail("resolve", EHOSTUNREACH);
  const int before = open_fds();
  const int u = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (sendto(u, "x", 1, 0, reinterpret_cast<sockaddr*>(&ss), len) != 1)
    return fail("sendto", errno);
  const int with_udp = open_fds();
  close(u);
  const int after_udp = open_fds();
  // A listener through the proxy, twice: the first starts the library's driver thread (its
  // two descriptors stay for the life of the process); the second must leave nothing.
  int with_listener = 0, after_first = 0, after = 0;
  for (int round = 0; round < 2; ++round) {
    const int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (connect(c, reinterpret_cast<sockaddr*>(&ss), len) != 0) return fail("connect", errno);
    sockaddr_in local{};
    socklen_t llen = sizeof local;
    getsockname(c, reinterpret_cast<sockaddr*>(&local), &llen);
    local.sin_port = 0;
    const int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (bind(l, reinterpret_cast<sockaddr*>(&local), sizeof local) != 0) {
      return fail("bind", errno);
    }
    if (listen(l, 1) != 0) return fail("listen", errno);
    with_listener = open_fds();
    close(l);
    close(c);
    // The library's driver lets go of the listener's BIND connection as it gets to it: wait
    // (bounded) until the count settles at the driver's own two descriptors.
    int now = open_fds();
    for (int i = 0; i < 200 && now > before + 2; ++i) {
      usleep(10000);
      now = open_fds();
    }
    (round == 0 ? after_first : after) = now;
  }
  std::printf(
      "fds: before %d, with an association %d, after %d; with a listener %d, after %d, after "
      "another %d\n",
      before, with_udp, after_udp, with_listener, after_first, after);
  return after_udp == before && after == after_first && after_first <= before + 2 ? 0 : 1;
}

int do_udp53(const char* addr) {
  sockaddr_in in{};
  in.sin_family = AF_INET;
  in.sin_port = htons(53);
  inet_pton(AF_INET, addr, &in.sin_addr);
  const int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  timeval tv{2, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  // A minimal query for "leak.test" A.
  const unsigned char q[] = {0x12, 0x34, 0x01, 0x00, 0,   1,   0,   0,   0, 0, 0, 0, 4, 'l',
                             'e',  'a',  'k',  4,    't', 'e', 's', 't', 0, 0, 1, 0, 1};
  // Every way to send a datagram to an address, then connect() and send().
  bool refused = false;
  if (sendto(fd, q, sizeof q, 0, reinterpret_cast<sockaddr*>(&in), sizeof in) < 0) {
    fail("sendto", errno);
    refused = true;
  }
  iovec iov{const_cast<unsigned char*>(q), sizeof q};
  msghdr m{};
  m.msg_name = &in;
  m.msg_namelen = sizeof in;
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  if (sendmsg(fd, &m, 0) < 0) {
    fail("sendmsg", errno);
    refused = true;
  }
  mmsghdr mm[2]{};
  mm[0].msg_hdr = m;
  mm[1].msg_hdr = m;
  if (sendmmsg(fd, mm, 2, 0) < 0) {
    fail("sendmmsg", errno);
    refused = true;
  }
  if (connect(fd, reinterpret_cast<sockaddr*>(&in), sizeof in) != 0) {
    fail("connect", errno);
    refused = true;
  } else if (send(fd, q, sizeof q, 0) < 0) {
    fail("send", errno);
    refused = true;
  }
  if (refused) return 1;
  std::printf("sent\n");
  // The answers (whoever gives them), as the program sees them.
  int answers = 0;
  for (; answers < 5; ++answers) {
    unsigned char a[512];
    sockaddr_storage from{};
    socklen_t flen = sizeof from;
    const ssize_t n = recvfrom(fd, a, sizeof a, 0, reinterpret_cast<sockaddr*>(&from), &flen);
    if (n < 12) break;
    const int rcode = a[3] & 0x0F;
    const int ancount = (a[6] << 8) | a[7];
    char ip[INET_ADDRSTRLEN] = "-";
    if (ancount > 0 && n >= 4) inet_ntop(AF_INET, a + n - 4, ip, sizeof ip);
    std::printf("answer rcode %d A %s from %s\n", rcode, ip, addr_text(from).c_str());
  }
  std::printf("answers %d\n", answers);
  return 0;
}

int do_resquery(const char* name) {
  unsigned char answer[512];
  int r = res_query(name, ns_c_in, ns_t_srv, answer, sizeof answer);
  std::printf("res_query %d h_errno=%d\n", r, h_errno);
  r = res_search(name, ns_c_in, ns_t_mx, answer, sizeof answer);
  std::printf("res_search %d h_errno=%d\n", r, h_errno);
  r = res_querydomain("_xmpp._tcp", name, ns_c_in, ns_t_srv, answer, sizeof answer);
  std::printf("res_querydomain %d h_errno=%d\n", r, h_errno);
  unsigned char query[512];
  const int qlen =
      res_mkquery(ns_o_query, name, ns_c_in, ns_t_a, nullptr, 0, nullptr, query, sizeof query);
  r = res_send(query, qlen, answer, sizeof answer);
  std::printf("res_send %d h_errno=%d\n", r, h_errno);
  struct __res_state st {};
  res_ninit(&st);
  r = res_nquery(&st, name, ns_c_in, ns_t_txt, answer, sizeof answer);
  std::printf("res_nquery %d res_h_errno=%d\n", r, st.res_h_errno);
  res_nclose(&st);
  // Binaries built against older headers call __res_query.
  using Fn = int (*)(const char*, int, int, unsigned char*, int);
  auto old = reinterpret_cast<Fn>(dlsym(RTLD_DEFAULT, "__res_query"));
  r = old != nullptr ? old(name, ns_c_in, ns_t_a, answer, sizeof answer) : -2;
  std::printf("__res_query %d h_errno=%d\n", r, h_errno);
  return 0;
}

sem_t g_notified;

void on_gai_done(sigval) {
  sem_post(&g_notified);
}

int do_gaia(const char* name) {
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  gaicb a{};
  a.ar_name = name;
  a.ar_request = &hints;
  gaicb* list[1] = {&a};
  int r = getaddrinfo_a(GAI_WAIT, list, 1, nullptr);
  const int e = gai_error(&a);
  std::printf("GAI_WAIT %d %s\n", r,
              e == 0 ? addr_text(*reinterpret_cast<sockaddr_storage*>(a.ar_result->ai_addr)).c_str()
                     : gai_strerror(e));
  if (e == 0) freeaddrinfo(a.ar_result);
  sem_init(&g_notified, 0, 0);
  gaicb b{};
  b.ar_name = name;
  b.ar_request = &hints;
  gaicb* list2[1] = {&b};
  sigevent ev{};
  ev.sigev_notify = SIGEV_THREAD;
  ev.sigev_notify_function = on_gai_done;
  r = getaddrinfo_a(GAI_NOWAIT, list2, 1, &ev);
  timespec until{};
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += 10;
  const bool notified = sem_timedwait(&g_notified, &until) == 0;
  const gaicb* const wait_for[1] = {&b};
  const timespec zero{0, 0};
  const int suspended = gai_suspend(wait_for, 1, &zero);
  const int e2 = gai_error(&b);
  std::printf("GAI_NOWAIT %d notified=%d suspend=%d cancel=%s %s\n", r, notified ? 1 : 0, suspended,
              gai_cancel(&b) == EAI_ALLDONE ? "alldone" : "other",
              e2 == 0
                  ? addr_text(*reinterpret_cast<sockaddr_storage*>(b.ar_result->ai_addr)).c_str()
                  : gai_strerror(e2));
  if (e2 == 0) freeaddrinfo(b.ar_result);
  return e == 0 && e2 == 0 && notified ? 0 : 1;
}

int do_reverse(const char* addr) {
  sockaddr_in in{};
  in.sin_family = AF_INET;
  in.sin_port = htons(80);
  inet_pton(AF_INET, addr, &in.sin_addr);
  char host[NI_MAXHOST] = "";
  int r =
      getnameinfo(reinterpret_cast<sockaddr*>(&in), sizeof in, host, sizeof host, nullptr, 0, 0);
  std::printf("getnameinfo %d %s\n", r, host);
  r = getnameinfo(reinterpret_cast<sockaddr*>(&in), sizeof in, host, sizeof host, nullptr, 0,
                  NI_NAMEREQD);
  std::printf("getnameinfo NI_NAMEREQD %s\n", r == 0 ? host : gai_strerror(r));
  hostent* h = gethostbyaddr(&in.sin_addr, 4, AF_INET);
  std::printf("gethostbyaddr %s\n", h != nullptr ? h->h_name : hstrerror(h_errno));
  hostent he{};
  hostent* res = nullptr;
  char buf[1024];
  int herr = 0;
  r = gethostbyaddr_r(&in.sin_addr, 4, AF_INET, &he, buf, sizeof buf, &res, &herr);
  std::printf("gethostbyaddr_r %d %s\n", r, res != nullptr ? res->h_name : hstrerror(herr));
  return 0;
}

int do_forked(const char* host, const char* port) {
  // Nothing network-related happens before the fork, so the library is still uninitialised.
  int pipefd[2];
  if (pipe(pipefd) != 0) return fail("pipe", errno);
  const pid_t pid = fork();
  if (pid < 0) return fail("fork", errno);
  if (pid == 0) {
    sockaddr_storage ss{};
    socklen_t len = 0;
    if (!resolve(host, port, "4", ss, len)) _exit(1);
    std::printf("child resolved %s\n", addr_text(ss).c_str());
    std::fflush(stdout);
    _exit(write(pipefd[1], &ss, sizeof ss) == static_cast<ssize_t>(sizeof ss) ? 0 : 1);
  }
  close(pipefd[1]);
  sockaddr_storage ss{};
  const ssize_t n = read(pipefd[0], &ss, sizeof ss);
  close(pipefd[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (n != static_cast<ssize_t>(sizeof ss) || status != 0) return fail("child", ECONNRESET);
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (connect(fd, reinterpret_cast<sockaddr*>(&ss), sizeof(sockaddr_in)) != 0) {
    return fail("connect", errno);
  }
  if (!echo(fd, "after fork\n")) return fail("echo", errno);
  std::printf("echo ok\n");
  close(fd);
  return 0;
}

// Resolves HOST:PORT (IPv4) and connects a blocking socket to it; -1 with errno on failure.
int connect_to(const char* host, const char* port, sockaddr_storage* out = nullptr) {
  sockaddr_storage ss{};
  socklen_t len = 0;
  if (!resolve(host, port, "4", ss, len)) {
    errno = EHOSTUNREACH;
    return -1;
  }
  if (out != nullptr) *out = ss;
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (connect(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    const int e = errno;
    close(fd);
    errno = e;
    return -1;
  }
  return fd;
}

// The body of an HTTP/1.0 response, hashed as it streams by (FNV-1a, 64 bits).
struct BodyHash {
  std::string head;
  bool in_body = false;
  std::uint64_t hash = 1469598103934665603ULL;
  std::size_t size = 0;
  void feed(const char* p, std::size_t n) {
    std::size_t i = 0;
    while (!in_body && i < n) {
      head.push_back(p[i++]);
      if (head.size() >= 4 && head.compare(head.size() - 4, 4, "\r\n\r\n") == 0) in_body = true;
    }
    for (; i < n; ++i) {
      hash = (hash ^ static_cast<unsigned char>(p[i])) * 1099511628211ULL;
      ++size;
    }
  }
  int report() const {
    if (!in_body) return fail("http", EPROTO);
    std::printf("status %s\nbody %zu fnv %016llx\n", head.substr(0, head.find('\r')).c_str(), size,
                static_cast<unsigned long long>(hash));
    return 0;
  }
};

std::string get_request(const char* path) {
  return std::string("GET ") + path + " HTTP/1.0\r\nHost: target\r\n\r\n";
}

// Waits for any of `events` on the epoll set's one socket (10 s bound per wait).
bool epoll_until(int ep, std::uint32_t events) {
  epoll_event ev{};
  for (;;) {
    const int n = epoll_wait(ep, &ev, 1, 10000);
    if (n == 0) {
      errno = ETIMEDOUT;
      return false;
    }
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    if ((ev.events & (events | EPOLLERR | EPOLLHUP)) != 0) return true;
  }
}

int do_epollget(const char* host, const char* port, const char* path) {
  sockaddr_storage ss{};
  socklen_t len = 0;
  if (!resolve(host, port, "4", ss, len)) return fail("resolve", EHOSTUNREACH);
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  const int ep = epoll_create1(EPOLL_CLOEXEC);
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLOUT | EPOLLET | EPOLLRDHUP;
  ev.data.fd = fd;
  if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) return fail("epoll_ctl", errno);
  if (connect(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0 && errno != EINPROGRESS) {
    return fail("connect", errno);
  }
  if (!epoll_until(ep, EPOLLOUT)) return fail("epoll_wait", errno);
  int err = 0;
  socklen_t elen = sizeof err;
  getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen);
  if (err != 0) return fail("connect", err);
  const std::string req = get_request(path);
  std::size_t off = 0;
  while (off < req.size()) {
    const ssize_t n = send(fd, req.data() + off, req.size() - off, MSG_NOSIGNAL);
    if (n > 0) {
      off += static_cast<std::size_t>(n);
    } else if (n < 0 && errno == EAGAIN) {
      if (!epoll_until(ep, EPOLLOUT)) return fail("epoll_wait", errno);
    } else {
      return fail("send", errno);
    }
  }
  BodyHash body;
  char buf[65536];
  for (;;) {
    const ssize_t n = read(fd, buf, sizeof buf);
    if (n > 0) {
      body.feed(buf, static_cast<std::size_t>(n));
      continue;
    }
    if (n == 0) break;
    if (errno != EAGAIN) return fail("read", errno);
    // Edge-triggered: read until EAGAIN, then wait for the next edge.
    if (!epoll_until(ep, EPOLLIN | EPOLLRDHUP)) return fail("epoll_wait", errno);
  }
  close(ep);
  close(fd);
  return body.report();
}

int do_forkget(const char* host, const char* port, const char* path) {
  const int fd = connect_to(host, port);
  if (fd < 0) return fail("connect", errno);
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) return fail("fork", errno);
  if (pid > 0) _exit(0);  // the process that made the connection is gone at once
  // Wait (bounded) until orphaned: the parent has exited.
  for (int i = 0; i < 500 && getppid() == parent; ++i) usleep(10000);
  if (getppid() == parent) return fail("orphan", ETIMEDOUT);
  const std::string req = get_request(path);
  if (send(fd, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) {
    return fail("send", errno);
  }
  BodyHash body;
  char buf[65536];
  for (;;) {
    const ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n == 0) break;
    if (n < 0) return fail("recv", errno);
    body.feed(buf, static_cast<std::size_t>(n));
  }
  return body.report();
}

int do_stdioget(const char* host, const char* port, const char* path) {
  const int fd = connect_to(host, port);
  if (fd < 0) return fail("connect", errno);
  FILE* f = fdopen(fd, "r+");
  if (f == nullptr) return fail("fdopen", errno);
  if (std::fprintf(f, "%s", get_request(path).c_str()) < 0 || std::fflush(f) != 0) {
    return fail("fprintf", errno);
  }
  BodyHash body;
  char buf[8192];
  std::size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) body.feed(buf, n);
  if (std::ferror(f)) return fail("fread", errno);
  std::fclose(f);
  return body.report();
}

int do_mapped(const char* host, const char* port, const char* name) {
  const int fd = connect_to(host, port);
  if (fd < 0) return fail("connect", errno);
  close(fd);
  FILE* maps = std::fopen("/proc/self/maps", "r");
  if (maps == nullptr) return fail("maps", errno);
  char line[4096];
  bool found = false;
  while (std::fgets(line, sizeof line, maps) != nullptr) {
    if (std::strstr(line, name) != nullptr) found = true;
  }
  std::fclose(maps);
  std::printf("%s %s\n", name, found ? "mapped" : "not mapped");
  return 0;
}

int do_spliceget(const char* host, const char* port, const char* path) {
  const int fd = connect_to(host, port);
  if (fd < 0) return fail("connect", errno);
  char name[] = "/tmp/probe-request-XXXXXX";
  const int file = mkstemp(name);
  if (file < 0) return fail("mkstemp", errno);
  unlink(name);
  const std::string req = get_request(path);
  if (write(file, req.data(), req.size()) != static_cast<ssize_t>(req.size())) {
    return fail("write", errno);
  }
  off_t off = 0;
  while (off < static_cast<off_t>(req.size())) {
    const ssize_t n = sendfile(fd, file, &off, req.size() - static_cast<std::size_t>(off));
    if (n <= 0) return fail("sendfile", errno);
  }
  close(file);
  int pipefd[2];
  if (pipe(pipefd) != 0) return fail("pipe", errno);
  BodyHash body;
  char buf[65536];
  for (;;) {
    const ssize_t n = splice(fd, nullptr, pipefd[1], nullptr, sizeof buf, SPLICE_F_MOVE);
    if (n == 0) break;
    if (n < 0) return fail("splice", errno);
    std::size_t left = static_cast<std::size_t>(n);
    while (left > 0) {
      const ssize_t r = read(pipefd[0], buf, std::min(left, sizeof buf));
      if (r <= 0) return fail("read pipe", errno);
      body.feed(buf, static_cast<std::size_t>(r));
      left -= static_cast<std::size_t>(r);
    }
  }
  close(fd);
  return body.report();
}

int do_vecget(const char* host, const char* port, const char* path) {
  const int first = connect_to(host, port);
  if (first < 0) return fail("connect", errno);
  const std::string req = get_request(path);
  const std::size_t half = req.size() / 2;
  iovec out[2] = {{const_cast<char*>(req.data()), half},
                  {const_cast<char*>(req.data()) + half, req.size() - half}};
  msghdr m{};
  m.msg_iov = out;
  m.msg_iovlen = 2;
  if (sendmsg(first, &m, MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) {
    return fail("sendmsg", errno);
  }
  const int fd = dup(first);  // read through a duplicate, then close the original
  close(first);
  BodyHash body;
  char a[3000], b[70000];
  for (int turn = 0;; ++turn) {
    // Wait with a different call each time; each must say "readable" only when it is.
    int ready = 0;
    if (turn % 3 == 0) {
      fd_set set;
      FD_ZERO(&set);
      FD_SET(fd, &set);
      timeval tv{10, 0};
      ready = select(fd + 1, &set, nullptr, nullptr, &tv);
    } else if (turn % 3 == 1) {
      fd_set set;
      FD_ZERO(&set);
      FD_SET(fd, &set);
      timespec ts{10, 0};
      ready = pselect(fd + 1, &set, nullptr, nullptr, &ts, nullptr);
    } else {
      pollfd p{fd, POLLIN, 0};
      timespec ts{10, 0};
      ready = ppoll(&p, 1, &ts, nullptr);
    }
    if (ready <= 0) return fail("wait", ready == 0 ? ETIMEDOUT : errno);
    iovec in[2] = {{a, sizeof a}, {b, sizeof b}};
    ssize_t n = 0;
    if (turn % 2 == 0) {
      n = readv(fd, in, 2);
    } else {
      msghdr r{};
      r.msg_iov = in;
      r.msg_iovlen = 2;
      n = recvmsg(fd, &r, MSG_DONTWAIT);
      if (n < 0 && errno == EAGAIN) return fail("recvmsg after readiness", EAGAIN);
    }
    if (n == 0) break;
    if (n < 0) return fail("read", errno);
    const std::size_t got = static_cast<std::size_t>(n);
    body.feed(a, std::min(got, sizeof a));
    if (got > sizeof a) body.feed(b, got - sizeof a);
  }
  close(fd);
  return body.report();
}

// Sockets among this process's descriptors (the program's, and any the library holds for
// it: a dup, a latch).
int socket_count() {
  int n = 0;
  if (DIR* d = opendir("/proc/self/fd")) {
    while (dirent* e = readdir(d)) {
      char path[300], target[64];
      std::snprintf(path, sizeof path, "/proc/self/fd/%s", e->d_name);
      const ssize_t len = readlink(path, target, sizeof target - 1);
      if (len > 0 && std::strncmp(target, "socket:", 7) == 0) ++n;
    }
    closedir(d);
  }
  return n;
}

// Starts a non-blocking connect: the socket, or -1 (after a line) unless EINPROGRESS.
int start_async(const char* host, const char* port, int ep_before, std::uint32_t mode = EPOLLET) {
  sockaddr_storage ss{};
  socklen_t len = 0;
  if (!resolve(host, port, "4", ss, len)) return fail("resolve", EHOSTUNREACH), -1;
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (ep_before >= 0) {
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT | mode;
    ev.data.fd = fd;
    epoll_ctl(ep_before, EPOLL_CTL_ADD, fd, &ev);
  }
  const int rc = connect(fd, reinterpret_cast<sockaddr*>(&ss), len);
  std::printf("connect: %s\n", rc == 0 ? "0" : errno_name(errno));
  if (rc == 0 || errno != EINPROGRESS) return -1;
  return fd;
}

// Waits until `fd` is writable with `api`; false after 10 s.
bool wait_writable(int fd, const std::string& api, int ep) {
  if (api == "poll" || api == "ppoll") {
    pollfd p{fd, POLLOUT, 0};
    timespec t{10, 0};
    const int n = api == "poll" ? poll(&p, 1, 10000) : ppoll(&p, 1, &t, nullptr);
    return n == 1 && (p.revents & POLLOUT) != 0;
  }
  if (api == "select" || api == "pselect") {
    fd_set w;
    FD_ZERO(&w);
    FD_SET(fd, &w);
    timeval tv{10, 0};
    timespec ts{10, 0};
    const int n = api == "select" ? select(fd + 1, nullptr, &w, nullptr, &tv)
                                  : pselect(fd + 1, nullptr, &w, nullptr, &ts, nullptr);
    return n == 1 && FD_ISSET(fd, &w);
  }
  epoll_event got{};
  int n;
  if (api.find("pwait2") != std::string::npos) {
    timespec t{10, 0};
    n = epoll_pwait2(ep, &got, 1, &t, nullptr);
  } else if (api.find("pwait") != std::string::npos) {
    n = epoll_pwait(ep, &got, 1, 10000, nullptr);
  } else {
    n = epoll_wait(ep, &got, 1, 10000);
  }
  if (n != 1 || (got.events & EPOLLOUT) == 0) {
    std::printf("epoll: %d (%s), events 0x%x\n", n, n < 0 ? errno_name(errno) : "-", got.events);
  }
  return n == 1 && (got.events & EPOLLOUT) != 0;
}

// An epoll registration as an api name asks for: "epoll[-et|-oneshot][-before][-pwait|
// -pwait2]" (level-triggered by default, made after connect() unless "-before").
bool has(const std::string& api, const char* part) {
  return api.find(part) != std::string::npos;
}

int do_async(const char* host, const char* port, const std::string& api) {
  const int ep = epoll_create1(EPOLL_CLOEXEC);
  const bool epoll = api.rfind("epoll", 0) == 0;
  const bool one_edge = has(api, "-et") || has(api, "oneshot");
  const std::uint32_t mode =
      (has(api, "-et") ? EPOLLET : 0u) | (has(api, "oneshot") ? EPOLLONESHOT : 0u);
  const int fd = start_async(host, port, epoll && has(api, "before") ? ep : -1, mode);
  if (fd < 0) return 1;
  if (epoll && !has(api, "before")) {
    epoll_event ev{};
    ev.events = EPOLLOUT | mode;
    ev.data.fd = fd;
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
  }
  // While under way: a second connect, I/O, and readiness all say "not yet".
  sockaddr_storage ss{};
  socklen_t len = 0;
  resolve(host, port, "4", ss, len);
  const int again = connect(fd, reinterpret_cast<sockaddr*>(&ss), len);
  std::printf("second connect: %s\n", again == 0 ? "0" : errno_name(errno));
  const ssize_t sent = send(fd, "early", 5, MSG_NOSIGNAL);
  std::printf("early send: %s\n", sent >= 0 ? "sent" : errno_name(errno));
  char c;
  const ssize_t got = recv(fd, &c, 1, 0);
  std::printf("early recv: %s\n", got >= 0 ? "data" : errno_name(errno));
  pollfd p{fd, POLLOUT | POLLIN, 0};
  std::printf("ready at once: %s\n", poll(&p, 1, 0) == 0 ? "no" : "yes");
  int err = -1;
  socklen_t elen = sizeof err;
  getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen);
  std::printf("SO_ERROR while under way: %s\n", err == 0 ? "0" : errno_name(err));
  if (!wait_writable(fd, api, ep)) return fail("wait for writable", ETIMEDOUT);
  err = -1;
  getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen);
  std::printf("SO_ERROR: %s\n", err == 0 ? "0" : errno_name(err));
  if (err != 0) return 1;
  const int third = connect(fd, reinterpret_cast<sockaddr*>(&ss), len);
  std::printf("connect after: %s\n", third == 0 ? "0" : errno_name(errno));
  if (one_edge) {
    // Edge-triggered and one-shot: one event, not a second one for the same readiness.
    epoll_event more{};
    std::printf("more events: %d\n", epoll_wait(ep, &more, 1, 200));
  }
  // The handshake left nothing behind and took nothing of ours: an echo.
  const int flags = fcntl(fd, F_GETFL);
  fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
  if (!echo(fd, "async\n")) return fail("echo", errno);
  std::printf("async ok\n");
  close(fd);
  close(ep);
  return 0;
}

int do_asyncclose(const char* host, const char* port) {
  const int before = socket_count();
  const int fd = start_async(host, port, -1);
  if (fd < 0) return 1;
  std::printf("sockets while under way: %d more\n", socket_count() - before);
  close(fd);
  // The library's own sockets for it (the driver's dup, the latch) go with it: wait, bounded.
  for (int i = 0; i < 500 && socket_count() > before; ++i) usleep(10000);
  std::printf("sockets: %d before, %d after\n", before, socket_count());
  return socket_count() > before ? 1 : 0;
}

// A program with a SIGCHLD handler and no children: a blocking connect (and an event-loop
// one) through the proxy must not give it a SIGCHLD (GSSAPI starts a relay process).
volatile sig_atomic_t g_sigchld = 0;
volatile sig_atomic_t g_sigchld_pid = 0;
volatile sig_atomic_t g_sigchld_code = 0;
void on_sigchld(int, siginfo_t* info, void*) {
  g_sigchld = g_sigchld + 1;
  g_sigchld_pid = info->si_pid;
  g_sigchld_code = info->si_code;
}

// io_uring would let a program make its socket calls past a seccomp filter: under the
// supervisor its setup is refused.
int do_iouring() {
  unsigned char params[120] = {};  // struct io_uring_params
  const long fd = syscall(SYS_io_uring_setup, 4, params);
  std::printf("io_uring_setup: %s\n", fd >= 0 ? "ok" : errno_name(errno));
  if (fd >= 0) close(static_cast<int>(fd));
  return 0;
}

int do_nosigchld(const char* host, const char* port) {
  struct sigaction sa {};
  sa.sa_sigaction = on_sigchld;
  sa.sa_flags = SA_SIGINFO;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGCHLD, &sa, nullptr);
  const int fd = connect_to(host, port);
  if (fd < 0) return 1;
  if (!echo(fd, "blocking\n")) return fail("echo", errno);
  close(fd);
  const int afd = start_async(host, port, -1);
  if (afd < 0) return 1;
  if (!wait_writable(afd, "poll", -1)) return fail("wait for writable", ETIMEDOUT);
  const int flags = fcntl(afd, F_GETFL);
  fcntl(afd, F_SETFL, flags & ~O_NONBLOCK);
  if (!echo(afd, "event loop\n")) return fail("echo", errno);
  close(afd);
  std::printf("SIGCHLD: %d\n", static_cast<int>(g_sigchld));
  if (g_sigchld != 0) {
    std::printf("(from pid %d, code %d; this process %d)\n", static_cast<int>(g_sigchld_pid),
                static_cast<int>(g_sigchld_code), static_cast<int>(getpid()));
  }
  return 0;
}

int do_asyncfork(const char* host, const char* port) {
  const int fd = start_async(host, port, -1);
  if (fd < 0) return 1;
  const pid_t pid = fork();
  if (pid < 0) return fail("fork", errno);
  if (pid == 0) {
    if (!wait_writable(fd, "poll", -1)) _exit(fail("child wait", ETIMEDOUT));
    int err = -1;
    socklen_t elen = sizeof err;
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen);
    std::printf("child SO_ERROR: %s\n", err == 0 ? "0" : errno_name(err));
    const int flags = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
    if (err != 0 || !echo(fd, "from the child\n")) _exit(fail("child echo", errno));
    std::printf("child echo ok\n");
    std::fflush(stdout);
    _exit(0);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  if (!wait_writable(fd, "poll", -1)) return fail("parent wait", ETIMEDOUT);
  int err = -1;
  socklen_t elen = sizeof err;
  getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen);
  std::printf("parent SO_ERROR: %s\n", err == 0 ? "0" : errno_name(err));
  return WIFEXITED(status) && WEXITSTATUS(status) == 0 && err == 0 ? 0 : 1;
}

int do_fastopen(const char* host, const char* port) {
  sockaddr_storage ss{};
  socklen_t len = 0;
  if (!resolve(host, port, "4", ss, len)) return fail("resolve", EHOSTUNREACH);
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const char msg[] = "fast open\n";
  const ssize_t n =
      sendto(fd, msg, sizeof msg - 1, MSG_FASTOPEN, reinterpret_cast<sockaddr*>(&ss), len);
  if (n != static_cast<ssize_t>(sizeof msg - 1)) return fail("sendto MSG_FASTOPEN", errno);
  char buf[64] = {};
  std::size_t got = 0;
  while (got < sizeof msg - 1) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 5000) != 1) return fail("echo", ETIMEDOUT);
    const ssize_t r = recv(fd, buf + got, sizeof buf - 1 - got, 0);
    if (r <= 0) return fail("echo", errno);
    got += static_cast<std::size_t>(r);
  }
  if (std::string(buf) != msg) return fail("echo", EPROTO);
  sockaddr_storage peer{};
  socklen_t plen = sizeof peer;
  getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &plen);
  std::printf("peer %s\nfastopen echo ok\n", addr_text(peer).c_str());
  return 0;
}

int do_fakes(const char* first, int count, const char* port) {
  sockaddr_storage kept{};
  socklen_t kept_len = 0;
  if (!resolve(first, port, "4", kept, kept_len)) return fail("resolve first", EHOSTUNREACH);
  std::printf("first %s\n", addr_text(kept).c_str());
  int v4 = 0, v6 = 0, failed = 0;
  for (int i = 0; i < count; ++i) {
    std::string name = std::to_string(i);  // (appended: GCC 12 misreports "n" + ...)
    name.insert(0, 1, 'n');
    name.append(".fill.lab");
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* ai = nullptr;
    if (getaddrinfo(name.c_str(), port, &hints, &ai) != 0) {
      ++failed;
      continue;
    }
    (ai->ai_family == AF_INET ? v4 : v6)++;
    freeaddrinfo(ai);
  }
  std::printf("names v4=%d v6=%d failed=%d\n", v4, v6, failed);
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* ai = nullptr;
  const int r = getaddrinfo("ipv4-only.fill.lab", port, &hints, &ai);
  std::printf("AF_INET after the range: %s\n", r == 0 ? "ok" : gai_strerror(r));
  if (r == 0) freeaddrinfo(ai);
  // The first name's address, cached all along, still means the first name.
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (connect(fd, reinterpret_cast<sockaddr*>(&kept), kept_len) != 0) return fail("connect", errno);
  if (!echo(fd, "still the first name\n")) return fail("echo", errno);
  std::printf("echo ok\n");
  close(fd);
  return 0;
}

volatile sig_atomic_t g_alarms = 0;
void on_alarm(int) {
  g_alarms = g_alarms + 1;
}

void arm_alarm(bool restart, void (*handler)(int)) {
  struct sigaction sa {};
  sa.sa_handler = handler;
  sa.sa_flags = restart ? SA_RESTART : 0;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGALRM, &sa, nullptr);
  itimerval t{};
  t.it_value.tv_usec = 300000;
  setitimer(ITIMER_REAL, &t, nullptr);
}

int do_sigconnect(const char* host, const char* port, bool restart) {
  sockaddr_storage ss{};
  socklen_t len = 0;
  if (!resolve(host, port, "4", ss, len)) return fail("resolve", EHOSTUNREACH);
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  arm_alarm(restart, on_alarm);
  int r = connect(fd, reinterpret_cast<sockaddr*>(&ss), len);
  std::printf("first connect %s (alarms %d)\n", r == 0 ? "ok" : errno_name(errno),
              static_cast<int>(g_alarms));
  if (r != 0 && errno == EINTR) {
    // Continue as POSIX allows: connect again (0 once it is done).
    r = connect(fd, reinterpret_cast<sockaddr*>(&ss), len);
    std::printf("second connect %s\n", r == 0 ? "ok" : errno_name(errno));
  }
  if (r != 0) return 1;
  if (!echo(fd, "after the signal\n")) return fail("echo", errno);
  std::printf("echo ok\n");
  return 0;
}

int do_sndtimeo(const char* host, const char* port, int ms) {
  sockaddr_storage ss{};
  socklen_t len = 0;
  if (!resolve(host, port, "4", ss, len)) return fail("resolve", EHOSTUNREACH);
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  timeval tv{ms / 1000, (ms % 1000) * 1000};
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  const int r = connect(fd, reinterpret_cast<sockaddr*>(&ss), len);
  std::printf("connect %s\n", r == 0 ? "ok" : errno_name(errno));
  if (r != 0 && errno != EINPROGRESS) return 1;
  // The connection goes on, as with the kernel; SO_ERROR tells how it ended.
  int err = 0;
  socklen_t elen = sizeof err;
  getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen);
  std::printf("SO_ERROR %s\n", err == 0 ? "0" : errno_name(err));
  if (err != 0) return 1;
  if (!echo(fd, "after the send timeout\n")) return fail("echo", errno);
  std::printf("echo ok\n");
  return 0;
}

int do_stale(const char* host, const char* port, const std::string& how) {
  sockaddr_storage ss{};
  const int fd = connect_to(host, port, &ss);
  if (fd < 0) return fail("connect", errno);
  if (how == "fclose") {
    std::fclose(fdopen(fd, "r+"));  // closes fd with the C library's internal close
  } else if (how == "closefrom") {
    closefrom(fd);
  } else if (how == "closerange") {
    close_range(static_cast<unsigned>(fd), static_cast<unsigned>(fd), 0);
  } else if (how == "syscall") {
    syscall(SYS_close, fd);
  } else {
    sockaddr unspec{};
    unspec.sa_family = AF_UNSPEC;
    if (connect(fd, &unspec, sizeof unspec) != 0) return fail("connect AF_UNSPEC", errno);
  }
  const int fresh = how == "unspec" ? fd : socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fresh != fd) return fail("the fd number was not reused", EPROTO);
  sockaddr_storage peer{};
  socklen_t plen = sizeof peer;
  const int g = getpeername(fresh, reinterpret_cast<sockaddr*>(&peer), &plen);
  std::printf("getpeername %s\n", g == 0 ? addr_text(peer).c_str() : errno_name(errno));
  if (connect(fresh, reinterpret_cast<sockaddr*>(&ss), sizeof(sockaddr_in)) != 0) {
    return fail("connect again", errno);
  }
  if (!echo(fresh, "fresh\n")) return fail("echo", errno);
  std::printf("fresh echo ok\n");
  return g == 0 ? 1 : 0;
}

sockaddr_in g_handler_to{};
volatile sig_atomic_t g_handler_errno = -1;
void connect_from_handler(int) {
  const int saved = errno;
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const int r = connect(fd, reinterpret_cast<sockaddr*>(&g_handler_to), sizeof g_handler_to);
  g_handler_errno = r == 0 ? 0 : errno;
  close(fd);
  errno = saved;
}

int do_handler(const char* host, const char* port, const char* addr, const char* port2) {
  g_handler_to.sin_family = AF_INET;
  g_handler_to.sin_port = htons(static_cast<std::uint16_t>(std::atoi(port2)));
  inet_pton(AF_INET, addr, &g_handler_to.sin_addr);
  sockaddr_storage ss{};
  socklen_t len = 0;
  if (!resolve(host, port, "4", ss, len)) return fail("resolve", EHOSTUNREACH);
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  arm_alarm(true, connect_from_handler);
  const int r = connect(fd, reinterpret_cast<sockaddr*>(&ss), len);
  const int e = errno;
  std::printf("handler connect %s\n", g_handler_errno == -1  ? "did not run"
                                      : g_handler_errno == 0 ? "ok"
                                                             : errno_name(g_handler_errno));
  std::printf("main connect %s\n", r == 0 ? "ok" : errno_name(e));
  return r == 0 ? 0 : 1;
}

int do_stderrsock(const char* host, const char* port) {
  close(2);
  sockaddr_storage ss{};
  socklen_t len = 0;
  if (!resolve(host, port, "4", ss, len)) return fail("resolve", EHOSTUNREACH);
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd != 2) return fail("the socket did not get fd 2", EPROTO);
  if (connect(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) return fail("connect", errno);
  const char msg[] = "only this\n";
  send(fd, msg, sizeof msg - 1, MSG_NOSIGNAL);
  // Read whatever comes back for a while: the echo of our line, and anything else that was
  // written to fd 2 (a log line would come back too).
  std::string got;
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, got.size() >= sizeof msg - 1 ? 300 : 5000) != 1) break;
    char buf[512];
    const ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    got.append(buf, static_cast<std::size_t>(n));
  }
  std::printf("echoed %zu octets: %s", got.size(), got.c_str());
  return got == msg ? 0 : 1;
}

int do_soerror(const char* host, const char* port) {
  sockaddr_storage ss{};
  socklen_t len = 0;
  if (!resolve(host, port, "4", ss, len)) return fail("resolve", EHOSTUNREACH);
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const int r = connect(fd, reinterpret_cast<sockaddr*>(&ss), len);
  std::printf("connect %s\n", r == 0 ? "ok" : errno_name(errno));
  int err = -1;
  socklen_t elen = sizeof err;
  getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen);
  std::printf("SO_ERROR %d\n", err);
  return err == 0 ? 0 : 1;
}

int do_mismatch(const char* host, const char* port) {
  sockaddr_storage ss{};
  socklen_t len = 0;
  if (!resolve(host, port, "4", ss, len)) return fail("resolve", EHOSTUNREACH);
  const int v6 = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const int r = connect(v6, reinterpret_cast<sockaddr*>(&ss), len);
  std::printf("IPv4 address on an IPv6 socket: %s\n", r == 0 ? "ok" : errno_name(errno));
  const int fd = connect_to(host, port);
  if (fd < 0) return fail("connect", errno);
  if (!echo(fd, "then a good one\n")) return fail("echo", errno);
  std::printf("echo ok\n");
  return r == 0 ? 1 : 0;
}

int do_peer(int fd) {
  sockaddr_storage peer{};
  socklen_t plen = sizeof peer;
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &plen) != 0) {
    return fail("getpeername", errno);
  }
  std::printf("peer %s\n", addr_text(peer).c_str());
  return 0;
}

int do_execpeer(const char* self, const char* host, const char* port, const std::string& how) {
  const int fd = connect_to(host, port);
  if (fd < 0) return fail("connect", errno);
  if (how != "cloexec") fcntl(fd, F_SETFD, 0);  // survives exec
  std::string number = std::to_string(fd);
  if (how == "dup2") {
    if (dup2(fd, 7) != 7) return fail("dup2", errno);
    close(fd);
    number = "7";
  }
  char* argv[] = {const_cast<char*>(self), const_cast<char*>("peer"), number.data(), nullptr};
  std::fflush(stdout);
  if (how == "spawn") {
    pid_t pid = 0;
    if (posix_spawn(&pid, self, nullptr, nullptr, argv, environ) != 0) return fail("spawn", errno);
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
  }
  execv(self, argv);
  return fail("execv", errno);
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "connect" && argc >= 4) {
    return do_connect(argv[2], argv[3], argc > 4 ? argv[4] : "block", argc > 5 ? argv[5] : "4");
  }
  if (mode == "threads" && argc == 6)
    return do_threads(argv[2], argv[3], std::atoi(argv[4]), std::atoi(argv[5]));
  if (mode == "dup" && argc == 4) return do_dup(argv[2], argv[3]);
  if (mode == "twice" && argc == 4) return do_twice(argv[2], argv[3]);
  if (mode == "resolve" && argc == 3) return do_resolve(argv[2]);
  if (mode == "udp53" && argc == 3) return do_udp53(argv[2]);
  if (mode == "udp" && argc == 4) return do_udp(argv[2], argv[3]);
  if (mode == "udpecho" && argc == 6) {
    return do_udpecho(argv[2], argv[3], argv[4], static_cast<std::size_t>(std::atol(argv[5])));
  }
  if (mode == "udpfrag" && argc == 5) {
    return do_udpfrag(argv[2], argv[3], static_cast<std::size_t>(std::atol(argv[4])));
  }
  if (mode == "udpclose" && argc == 4) return do_udpclose(argv[2], argv[3]);
  if (mode == "rawicmp" && argc == 3) return do_rawicmp(argv[2]);
  if (mode == "fds" && argc == 4) return do_fds(argv[2], argv[3]);
  if (mode == "udpfork" && argc == 4) return do_udpfork(argv[2], argv[3]);
  if (mode == "bind" && (argc == 5 || argc == 6)) {
    return do_bind(argv[2], argv[3], std::string(argv[4]) == "epoll", argc == 6 ? argv[5] : "4");
  }
  if (mode == "udpthreads" && argc == 6) {
    return do_udpthreads(argv[2], argv[3], std::atoi(argv[4]), std::atoi(argv[5]));
  }
  if (mode == "forked" && argc == 4) return do_forked(argv[2], argv[3]);
  if (mode == "resquery" && argc == 3) return do_resquery(argv[2]);
  if (mode == "reverse" && argc == 3) return do_reverse(argv[2]);
  if (mode == "gaia" && argc == 3) return do_gaia(argv[2]);
  if (mode == "fastopen" && argc == 4) return do_fastopen(argv[2], argv[3]);
  if (mode == "fakes" && argc == 5) return do_fakes(argv[2], std::atoi(argv[3]), argv[4]);
  if (mode == "sigconnect" && argc == 5) {
    return do_sigconnect(argv[2], argv[3], std::string(argv[4]) == "restart");
  }
  if (mode == "sndtimeo" && argc == 5) return do_sndtimeo(argv[2], argv[3], std::atoi(argv[4]));
  if (mode == "stale" && argc == 5) return do_stale(argv[2], argv[3], argv[4]);
  if (mode == "handler" && argc == 6) return do_handler(argv[2], argv[3], argv[4], argv[5]);
  if (mode == "stderrsock" && argc == 4) return do_stderrsock(argv[2], argv[3]);
  if (mode == "soerror" && argc == 4) return do_soerror(argv[2], argv[3]);
  if (mode == "mismatch" && argc == 4) return do_mismatch(argv[2], argv[3]);
  if (mode == "peer" && argc == 3) return do_peer(std::atoi(argv[2]));
  if (mode == "epollget" && argc == 5) return do_epollget(argv[2], argv[3], argv[4]);
  if (mode == "forkget" && argc == 5) return do_forkget(argv[2], argv[3], argv[4]);
  if (mode == "stdioget" && argc == 5) return do_stdioget(argv[2], argv[3], argv[4]);
  if (mode == "mapped" && argc == 5) return do_mapped(argv[2], argv[3], argv[4]);
  if (mode == "spliceget" && argc == 5) return do_spliceget(argv[2], argv[3], argv[4]);
  if (mode == "vecget" && argc == 5) return do_vecget(argv[2], argv[3], argv[4]);
  if (mode == "async" && argc == 5) return do_async(argv[2], argv[3], argv[4]);
  if (mode == "asyncclose" && argc == 4) return do_asyncclose(argv[2], argv[3]);
  if (mode == "asyncfork" && argc == 4) return do_asyncfork(argv[2], argv[3]);
  if (mode == "nosigchld" && argc == 4) return do_nosigchld(argv[2], argv[3]);
  if (mode == "iouring" && argc == 2) return do_iouring();
  if (mode == "execpeer" && argc == 5) return do_execpeer(argv[0], argv[2], argv[3], argv[4]);
  std::fprintf(stderr, "usage: see the comment at the top of probe.cpp\n");
  return 2;
}
