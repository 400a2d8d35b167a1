#include "proxy_connect.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "fd_table.hpp"
#include "log.hpp"
#include "real_libc.hpp"
#include "socks5/client.hpp"
#include "socks5/error.hpp"

namespace socksify::shim {
namespace {

using socks5::Address;

// Copies `sa` into `out` if it suits a socket of `family`: the same family, or an IPv4 address
// for an IPv6 socket (as a v4-mapped address).
bool fit_family(const sockaddr* sa, int family, sockaddr_storage& out, socklen_t& len) {
  if (sa->sa_family == family) {
    len = family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
    std::memcpy(&out, sa, len);
    return true;
  }
  if (family != AF_INET6 || sa->sa_family != AF_INET) return false;
  sockaddr_in in{};
  std::memcpy(&in, sa, sizeof in);
  sockaddr_in6 m{};
  m.sin6_family = AF_INET6;
  m.sin6_port = in.sin_port;
  m.sin6_addr.s6_addr[10] = 0xFF;
  m.sin6_addr.s6_addr[11] = 0xFF;
  std::memcpy(&m.sin6_addr.s6_addr[12], &in.sin_addr, 4);
  std::memcpy(&out, &m, sizeof m);
  len = sizeof m;
  return true;
}

// The proxy's address in the socket's own family (IPv4 proxies are reached from IPv6 sockets
// through v4-mapped addresses). Host names are resolved here, locally: they name the proxy.
bool proxy_sockaddr(const socks5::ProxyUri& p, const sockaddr_storage& numeric, int family,
                    sockaddr_storage& out, socklen_t& len) {
  // Numeric hosts (the usual case) were parsed once at init: no resolver call per connect.
  if (numeric.ss_family != AF_UNSPEC) {
    return fit_family(reinterpret_cast<const sockaddr*>(&numeric), family, out, len);
  }
  addrinfo hints{};
  hints.ai_family = family == AF_INET ? AF_INET : AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* list = nullptr;
  const std::string port = std::to_string(p.port);
  if (real().getaddrinfo(p.host.c_str(), port.c_str(), &hints, &list) != 0) return false;
  bool ok = false;
  for (addrinfo* ai = list; ai != nullptr && !ok; ai = ai->ai_next) {
    ok = fit_family(ai->ai_addr, family, out, len);
  }
  real().freeaddrinfo(list);
  return ok;
}

int wait_connected(int fd, socks5::Deadline deadline) {
  for (;;) {
    pollfd p{fd, POLLOUT, 0};
    const int n = ::poll(&p, 1, deadline.poll_ms());
    if (n == 0) return ETIMEDOUT;
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    int err = 0;
    socklen_t elen = sizeof err;
    if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0) return errno;
    return err;
  }
}

// TCP connect to the proxy, bounded by the deadline on blocking and non-blocking sockets alike.
int connect_to_proxy(int fd, const sockaddr_storage& sa, socklen_t len, socks5::Deadline deadline) {
  if (real().connect(fd, reinterpret_cast<const sockaddr*>(&sa), len) == 0) return 0;
  if (errno == EINPROGRESS || errno == EINTR || errno == EAGAIN || errno == EALREADY) {
    return wait_connected(fd, deadline);
  }
  return errno;
}

socks5::Address target_of(const Destination& d) {
  if (!d.name.empty()) return Address::domain(std::string(d.name), d.port);
  if (d.family == AF_INET) return Address::ipv4({d.ip[0], d.ip[1], d.ip[2], d.ip[3]}, d.port);
  return Address::ipv6(d.ip, d.port);
}

// Failures that say the proxy (not the destination) is broken: worth trying the next one.
bool proxy_fault(const std::error_code& ec) {
  using socks5::Errc;
  return ec == Errc::connection_closed || ec == Errc::timed_out || ec == Errc::bad_version ||
         ec == Errc::no_acceptable_method || ec == Errc::auth_rejected ||
         ec == Errc::unexpected_method || ec.category() == std::generic_category();
}

}  // namespace

void disconnect(int fd) noexcept {
  sockaddr sa{};
  sa.sa_family = AF_UNSPEC;
  real().connect(fd, &sa, sizeof sa);
}

int proxied_connect(const Runtime& rt, int fd, int family, const Destination& dst,
                    const sockaddr* addr, socklen_t len, const char* why) noexcept {
  const Config& cfg = rt.config;
  const auto deadline = socks5::Deadline::after(cfg.timeout);
  const Address target = target_of(dst);
  const std::size_t n = cfg.proxies.size() < 16 ? cfg.proxies.size() : 16;
  const std::int64_t now = now_ms();
  // Healthy proxies first, in order; cooling ones only if nothing else is left.
  int last_err = ECONNREFUSED;
  for (int pass = 0; pass < 2; ++pass) {
    for (std::size_t i = 0; i < n; ++i) {
      const bool cooling = rt.cooldown_until[i].load(std::memory_order_relaxed) > now;
      if (cooling != (pass == 1)) continue;
      const socks5::ProxyUri& proxy = cfg.proxies[i];
      sockaddr_storage psa{};
      socklen_t plen = 0;
      if (!proxy_sockaddr(proxy, rt.proxy_numeric[i], family, psa, plen)) {
        last_err = family == AF_INET ? EAFNOSUPPORT : EHOSTUNREACH;
        if (log_enabled(LogLevel::info)) {
          log_line(LogLevel::info, "proxy %s: no address for this socket's family",
                   proxy.to_string().c_str());
        }
        continue;
      }
      const auto t0 = log_enabled(LogLevel::info) ? std::chrono::steady_clock::now()
                                                  : std::chrono::steady_clock::time_point{};
      int err = connect_to_proxy(fd, psa, plen, deadline);
      if (err != 0) {
        last_err = err;
        mutable_runtime().cooldown_until[i].store(now + cfg.cooldown.count());
        if (log_enabled(LogLevel::info)) {
          log_line(LogLevel::info, "proxy %s unreachable: %s", proxy.to_string().c_str(),
                   std::strerror(err));
        }
        disconnect(fd);
        continue;
      }
      socks5::ClientOptions opts;
      opts.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline.at() - std::chrono::steady_clock::now());
      if (opts.timeout.count() <= 0) opts.timeout = std::chrono::milliseconds(1);
      opts.pipelining = cfg.pipelining;
      opts.syscalls = &real_syscalls();
      const auto endpoint = Address::from_sockaddr(reinterpret_cast<const sockaddr*>(&psa), plen);
      auto client = socks5::Client::adopt(fd, proxy, opts, endpoint ? *endpoint : Address{});
      auto r = client.connect(target);
      socks5::HandshakeStats stats = client.stats();
      client.release();
      if (!r && r.error() == socks5::Errc::pipelining_stalled) {
        // The proxy dropped our pipelined octets: same fd, new connection, one message per
        // round trip. The proxy is remembered, later connects skip pipelining.
        disconnect(fd);
        err = connect_to_proxy(fd, psa, plen, deadline);
        if (err == 0) {
          opts.pipelining = socks5::Pipelining::off;
          auto again = socks5::Client::adopt(fd, proxy, opts, endpoint ? *endpoint : Address{});
          r = again.connect(target);
          stats = again.stats();
          again.release();
        } else {
          r = socks5::fail_errno(err);
        }
      }
      if (!r) {
        const int e = socks5::to_errno(r.error());
        if (log_enabled(LogLevel::info)) {
          log_line(LogLevel::info, "connect %s via %s (%s): %s", target.to_string().c_str(),
                   proxy.to_string().c_str(), why, r.error().message().c_str());
        }
        disconnect(fd);
        if (proxy_fault(r.error())) {
          mutable_runtime().cooldown_until[i].store(now + cfg.cooldown.count());
          last_err = e;
          continue;
        }
        errno = e;  // the proxy answered: the destination itself failed, no failover
        return -1;
      }
      fd_set_proxied(fd, addr, len);
      if (log_enabled(LogLevel::info)) {
        const double ms =
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0)
                .count();
        log_line(LogLevel::info, "connect %s via %s (%s): method %s, %d wait%s, %.2f ms",
                 target.to_string().c_str(), proxy.to_string().c_str(), why,
                 socks5::wire::method_name(stats.method).c_str(), stats.waits,
                 stats.waits == 1 ? "" : "s", ms);
      }
      return 0;
    }
  }
  errno = last_err;
  return -1;
}

}  // namespace socksify::shim
