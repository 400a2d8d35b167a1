#pragma once
// What the lab's probe programs (probe.cpp, attack.cpp) share: errno names for their output
// lines, an address as "HOST PORT", and a bounded echo. Header-only: the static builds of
// both compile one source file each.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace probe_common {

inline const char* errno_name(int e) {
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
    case EOPNOTSUPP: return "EOPNOTSUPP";
    default: return "other";
  }
}

// An internet address as "HOST PORT" ("? 0" for anything else).
inline std::string addr_text(const sockaddr_storage& ss) {
  char host[INET6_ADDRSTRLEN] = "?";
  unsigned port = 0;
  if (ss.ss_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&ss);
    inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
    port = ntohs(in->sin_port);
  } else if (ss.ss_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&ss);
    inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
    port = ntohs(in6->sin6_port);
  }
  return std::string(host) + " " + std::to_string(port);
}

// Sends a line and waits (each read bounded by 5 s) for it to come back (the lab's echoes).
inline bool echo(int fd, const char* text) {
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

}  // namespace probe_common
