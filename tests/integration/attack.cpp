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
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

const char* errno_name(int e) {
  switch (e) {
    case 0: return "0";
    case ECONNREFUSED: return "ECONNREFUSED";
    case ENETUNREACH: return "ENETUNREACH";
    case EHOSTUNREACH: return "EHOSTUNREACH";
    case ETIMEDOUT: return "ETIMEDOUT";
    case EACCES: return "EACCES";
    case EINVAL: return "EINVAL";
    case EAFNOSUPPORT: return "EAFNOSUPPORT";
    case EAGAIN: return "EAGAIN";
    case EINTR: return "EINTR";
    case EISCONN: return "EISCONN";
    case EALREADY: return "EALREADY";
    case EINPROGRESS: return "EINPROGRESS";
    case ENOTCONN: return "ENOTCONN";
    case EDESTADDRREQ: return "EDESTADDRREQ";
    case ECONNRESET: return "ECONNRESET";
    case EPIPE: return "EPIPE";
    case EBADF: return "EBADF";
    case ENOSYS: return "ENOSYS";
    case EPERM: return "EPERM";
    case EMSGSIZE: return "EMSGSIZE";
    case EPROTO: return "EPROTO";
    case ECONNABORTED: return "ECONNABORTED";
    default: return "other";
  }
}

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

// Sends a line and waits (bounded) for it to come back.
bool echo(int fd, const char* text) {
  const std::size_t n = std::strlen(text);
  if (send(fd, text, n, MSG_NOSIGNAL) != static_cast<ssize_t>(n)) return false;
  std::string got;
  while (got.size() < n) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 5000) != 1) return false;
    char buf[256];
    const ssize_t r = recv(fd, buf, sizeof buf, 0);
    if (r <= 0) return false;
    got.append(buf, static_cast<std::size_t>(r));
  }
  return got == text;
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
  if (sent == 3) {
    // The catcher echoes: waiting for it keeps the association up until the datagram crossed.
    pollfd p{fd, POLLIN, 0};
    char buf[16];
    const bool back = poll(&p, 1, 5000) == 1 && recv(fd, buf, sizeof buf, 0) == 3;
    std::printf("reply %s\n", back ? "ok" : "none");
  }
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
  const socklen_t slen = ss.ss_family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
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
  std::fprintf(stderr, "usage: see the comment at the top of attack.cpp\n");
  return 2;
}
