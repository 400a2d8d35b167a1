#include "check.hpp"

#include <netdb.h>

#include <cstdio>

#include "socks5/client.hpp"
#include "socks5/dialer.hpp"
#include "socks5/error.hpp"

namespace socksify::tool {
namespace {

double ms(std::chrono::nanoseconds d) {
  return static_cast<double>(d.count()) / 1e6;
}

std::string method_label(socks5::wire::Method m) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%s (0x%02x)", socks5::wire::method_name(m).c_str(),
                static_cast<unsigned>(m));
  return buf;
}

void report_handshake(const socks5::HandshakeStats& s) {
  std::printf("method:    %s\n", method_label(s.method).c_str());
  std::printf("handshake: %.3f ms, %d wait%s for the server (%s)\n", ms(s.handshake_time), s.waits,
              s.waits == 1 ? "" : "s",
              s.fell_back   ? "pipelining stalled; retried one message per round trip"
              : s.pipelined ? "pipelined"
                            : "not pipelined");
}

// Where in the sequence a failure happened, to tell the user what to fix.
int failure(const char* stage, const std::string& what, const std::error_code& ec) {
  std::fprintf(stderr, "socksify: %s %s: %s\n", stage, what.c_str(), ec.message().c_str());
  return 1;
}

// socks5:// means names are resolved here; socks5h:// sends them to the proxy.
socks5::Result<socks5::Address> resolve_locally(const socks5::Address& a) {
  if (a.is_ip()) return a;
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* list = nullptr;
  if (getaddrinfo(a.host().c_str(), nullptr, &hints, &list) != 0 || list == nullptr) {
    return socks5::fail(socks5::Errc::name_resolution_failed);
  }
  auto r = socks5::Address::from_sockaddr(list->ai_addr, list->ai_addrlen);
  freeaddrinfo(list);
  if (!r) return r;
  socks5::Address out = *r;
  out.set_port(a.port());
  return out;
}

// The target as `resolving` (the proxy that reaches it) takes it: as written for socks5h://,
// resolved here for socks5://. Prints the failure and returns nullopt when that fails.
std::optional<socks5::Address> target_for(const socks5::ProxyUri& resolving,
                                          const socks5::Address& target) {
  if (resolving.remote_dns) return target;
  auto resolved = resolve_locally(target);
  if (!resolved) {
    failure("target", target.to_string() + " (resolved locally, socks5://)", resolved.error());
    return std::nullopt;
  }
  return *resolved;
}

socks5::ClientOptions options_of(const settings::Config& c) {
  socks5::ClientOptions o;
  o.timeout = c.timeout;
  o.pipelining = c.pipelining;
  return o;
}

// One proxy on its own (failover mode checks each in turn).
int check_proxy(const socks5::ProxyUri& proxy, const settings::Config& config,
                const std::optional<socks5::Address>& target) {
  std::printf("proxy:     %s\n", proxy.to_string().c_str());
  auto client = socks5::Client::open(proxy, options_of(config));
  if (!client)
    return failure("proxy", proxy.host + ":" + std::to_string(proxy.port) + " unreachable",
                   client.error());
  std::printf("tcp:       connected to %s in %.3f ms\n",
              client->proxy_address().to_string().c_str(), ms(client->stats().connect_time));
  if (!target) {
    auto a = client->authenticate();
    if (!a) {
      report_handshake(client->stats());
      return failure("proxy", "handshake", a.error());
    }
    report_handshake(client->stats());
    std::printf("result:    proxy OK\n");
    return 0;
  }
  const auto resolved = target_for(proxy, *target);
  if (!resolved) return 1;
  const socks5::Address& dst = *resolved;
  auto bound = client->connect(dst);
  if (!bound) {
    if (client->stats().method != socks5::wire::Method::no_acceptable) {
      report_handshake(client->stats());
    }
    const auto& ec = bound.error();
    const bool refused_by_proxy =
        ec == socks5::Errc::no_acceptable_method || ec == socks5::Errc::auth_rejected;
    return failure(refused_by_proxy ? "proxy" : "target",
                   refused_by_proxy ? std::string("authentication") : dst.to_string(), ec);
  }
  report_handshake(client->stats());
  std::printf("target:    %s connected through the proxy (proxy side %s)\n",
              dst.to_string().c_str(), bound->to_string().c_str());
  std::printf("result:    OK\n");
  return 0;
}

// A strict chain as a whole: TCP to the first hop, then each hop's handshake through the
// previous one, then the target (or, without one, authentication at the last hop).
int check_chain(const settings::Config& config, const std::optional<socks5::Address>& target) {
  std::printf("chain:     %s\n", settings::route_text(config).c_str());
  socks5::Address dst;
  if (target) {
    const auto resolved = target_for(config.proxies.back(), *target);
    if (!resolved) return 1;
    dst = *resolved;
  }
  socks5::DialPlan plan;
  plan.proxies = config.proxies;
  plan.chain = socks5::ChainMode::strict;
  plan.pipelining = config.pipelining;
  socks5::DialRequest request;
  if (!target) request.command.reset();
  request.target = dst;
  socks5::Dial dial(plan, socks5::DialSocket{}, request, socks5::Deadline::after(config.timeout));
  socks5::run_blocking(dial);
  const bool ok = dial.step().next == socks5::Dial::Next::done;
  if (!ok && dial.failed_stage() != socks5::DialStage::handshake) {
    const auto& p = config.proxies[dial.proxy()];
    return failure("proxy", p.host + ":" + std::to_string(p.port) + " unreachable", dial.error());
  }
  std::printf("tcp:       connected to %s in %.3f ms\n", dial.endpoint().to_string().c_str(),
              ms(dial.stats().connect_time));
  report_handshake(dial.stats());
  if (!ok) {
    return failure(
        "hop",
        std::to_string(dial.proxy() + 1) + " (" + config.proxies[dial.proxy()].to_string() + ")",
        dial.error());
  }
  if (target) {
    std::printf("target:    %s connected through %zu proxies (last hop's side %s)\n",
                dst.to_string().c_str(), config.proxies.size(), dial.bound().to_string().c_str());
  }
  std::printf("result:    %s\n", target ? "OK" : "chain OK");
  return 0;
}

}  // namespace

int run_check(const CheckRequest& request) {
  std::optional<socks5::Address> target;
  if (request.target) {
    target = socks5::Address::parse_host_port(*request.target);
    if (!target) {
      std::fprintf(stderr, "socksify: invalid target '%s' (expected HOST:PORT or [V6]:PORT)\n",
                   request.target->c_str());
      return 2;
    }
  }
  const settings::Config& config = request.config;
  if (config.chain == socks5::ChainMode::strict && config.proxies.size() > 1) {
    const int rc = check_chain(config, target);
    std::fflush(stdout);
    return rc;
  }
  int rc = 0;
  for (std::size_t i = 0; i < config.proxies.size(); ++i) {
    if (i > 0) std::printf("\n");
    std::fflush(stdout);
    if (check_proxy(config.proxies[i], config, target) != 0) rc = 1;
    std::fflush(stdout);
  }
  return rc;
}

}  // namespace socksify::tool
