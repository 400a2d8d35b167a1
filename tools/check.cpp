#include "check.hpp"

#include <netdb.h>

#include <cstdio>

#include "connector.hpp"
#include "report.hpp"
#include "socks5/client.hpp"
#include "socks5/dialer.hpp"
#include "socks5/error.hpp"
#include "state.hpp"
#include "tls_transport.hpp"

#include <cstdlib>

namespace socksify::tool {
namespace {

double ms(std::chrono::nanoseconds d) {
  return static_cast<double>(d.count()) / 1e6;
}

// "none (0x00)" for SOCKS5 (its METHOD octet), "Basic" for HTTP...
std::string method_label(const socks5::HandshakeStats& s, bool socks5) {
  if (!socks5) return s.method_text;
  char buf[64];
  std::snprintf(buf, sizeof buf, "%s (0x%02x)", socks5::wire::method_name(s.method).c_str(),
                static_cast<unsigned>(s.method));
  return buf;
}

void report_handshake(const socks5::HandshakeStats& s, bool socks5) {
  std::printf("method:    %s\n", method_label(s, socks5).c_str());
  std::printf("handshake: %.3f ms, %d wait%s for the server (%s)\n", ms(s.handshake_time), s.waits,
              s.waits == 1 ? "" : "s",
              s.fell_back   ? "pipelining stalled; retried one message per round trip"
              : s.pipelined ? "pipelined"
                            : "not pipelined");
}

// Every check ends with a result line, a failure's reason included (on standard output, in
// order with the rest of the report).
int failed(const std::string& reason) {
  std::printf("result:    FAILED: %s\n", reason.c_str());
  return 1;
}

// Where in the sequence a failure happened, to tell the user what to fix.
int failure(const char* stage, const std::string& what, const std::error_code& ec) {
  return failed(std::string(stage) + " " + what + ": " + ec.message());
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
  if (resolving.remote_dns()) return target;
  auto resolved = resolve_locally(target);
  if (!resolved) {
    failure("target",
            target.to_string() + " (resolved locally, " +
                std::string(socks5::scheme_name(resolving.scheme)) + "://)",
            resolved.error());
    return std::nullopt;
  }
  return *resolved;
}

// What the user can do about a proxy that drops pipelined messages.
void advise_pipelining(const socks5::ProxyUri& proxy, const std::string& state_dir) {
  if (socks5::pipelining_verdict(proxy) != socks5::PipeliningVerdict::drops) return;
  std::printf(
      "advice:    this proxy drops messages sent together with the greeting (as "
      "microsocks does);\n"
      "           socksify remembers it for a day (%s), and %s\n",
      settings::pipelining_file(state_dir, proxy).c_str(), settings::pipelining_advice().c_str());
}

// Runs one dial with `connector` (its configuration: one proxy, or a strict chain) to
// `target` (or, without one, through authentication only). The connector is the library's
// and the supervisor's (connector.hpp): the same plan, and what it learns about pipelining
// is kept for later processes. `check` prints its own report, so its lines are off.
void run_dial(socks5::Dial& dial) {
  socks5::run_blocking(dial);
}

// Without a target a SOCKS5 proxy is checked through authentication; the other protocols
// have no step without a destination, so only their TCP connect is.
socks5::DialRequest request_for(const std::optional<socks5::Address>& target,
                                const socks5::ProxyUri& first) {
  socks5::DialRequest request;
  if (!target) {
    request.command.reset();
    request.tcp_only = !first.is_socks5();
  }
  if (target) request.target = *target;
  return request;
}

// The connector's plan, timed: check reports the times even though its lines are off (the
// connector measures only for its -v lines).
socks5::DialPlan timed(const core::Connector& connector) {
  socks5::DialPlan plan = connector.plan();
  plan.measure = true;
  return plan;
}

// Where the TCP (or Unix socket) connection went.
std::string endpoint_text(const socks5::Dial& dial, const socks5::ProxyUri& first) {
  if (!first.unix_path.empty()) return first.unix_path;
  return dial.endpoint().to_string();
}

// An https proxy's TLS, once the dial got past it.
void report_tls(const socks5::ProxyUri& proxy, const settings::Config& config) {
  if (!socks5::needs_transport(proxy)) return;
  std::printf("tls:       certificate verified for %s (the system CA store%s%s)\n",
              proxy.host.c_str(), config.proxy_cacert.empty() ? "" : " and ",
              config.proxy_cacert.c_str());
}

// The result line of a failed dial: the same words as a socksified program's failure line.
int report_failure(const socks5::Dial& dial, const settings::Config& config) {
  return failed(settings::failure_text(dial, config));
}

// The handshake: its figures when it completed; when it failed, only the method the proxy
// chose (if it chose one) — the result line says what went wrong.
void report_handshake_of(const socks5::Dial& dial, bool ok, bool socks5) {
  if (ok) {
    report_handshake(dial.stats(), socks5);
  } else if (dial.stats().method != socks5::wire::Method::no_acceptable) {
    std::printf("method:    %s\n", method_label(dial.stats(), socks5).c_str());
  }
}

// One proxy on its own (failover mode checks each in turn).
int check_proxy(std::size_t index, const settings::Config& config,
                const std::optional<socks5::Address>& target, const std::string& state_dir) {
  const socks5::ProxyUri& proxy = config.proxies[index];
  std::printf("proxy:     %s\n", proxy.to_string().c_str());
  std::printf("protocol:  %s\n", std::string(socks5::protocol_name(proxy.scheme)).c_str());
  std::optional<socks5::Address> dst;
  if (target) {
    dst = target_for(proxy, *target);
    if (!dst) return 1;
  }
  // Messages name the proxy by its place in the configuration.
  settings::Config one = config;
  one.proxies = {proxy};
  one.chain = socks5::ChainMode::failover;
  core::Connector connector;
  connector.init(one, state_dir, core::LineSink{}, nullptr);
  SpawnedTls tls(find_relay(), config.proxy_cacert);
  connector.set_transport(&tls);
  socks5::Dial dial(timed(connector), socks5::DialSocket{}, request_for(dst, proxy),
                    socks5::Deadline::after(config.timeout));
  run_dial(dial);
  const bool ok = dial.step().next == socks5::Dial::Next::done;
  if (!ok && dial.failed_stage() != socks5::DialStage::handshake) {
    return report_failure(dial, one);
  }
  std::printf("tcp:       connected to %s in %.3f ms\n", endpoint_text(dial, proxy).c_str(),
              ms(dial.stats().connect_time));
  report_tls(proxy, config);
  if (!dst && !proxy.is_socks5()) {
    std::printf(
        "handshake: none without a target (%s has no request without a destination: "
        "give HOST:PORT to check it)\n",
        std::string(socks5::protocol_name(proxy.scheme)).c_str());
    std::printf("result:    proxy reachable\n");
    return 0;
  }
  report_handshake_of(dial, ok, proxy.is_socks5());
  if (config.gssapi && dial.stats().method == socks5::wire::Method::gssapi) {
    std::printf("gssapi:    service '%s', protection %s\n",
                socks5::gssapi_target(*config.gssapi, proxy.host).c_str(),
                std::string(socks5::gss_level_name(config.gssapi->level)).c_str());
  }
  advise_pipelining(proxy, state_dir);
  if (!ok) return report_failure(dial, one);
  if (dst) {
    if (proxy.is_http()) {
      std::printf("target:    %s connected through the proxy\n", dst->to_string().c_str());
    } else {
      std::printf("target:    %s connected through the proxy (proxy side %s)\n",
                  dst->to_string().c_str(), dial.bound().to_string().c_str());
    }
  }
  std::printf("result:    %s\n", dst ? "OK" : "proxy OK");
  return 0;
}

// A strict chain as a whole: TCP to the first hop, then each hop's handshake through the
// previous one, then the target (or, without one, authentication at the last hop).
int check_chain(const settings::Config& config, const std::optional<socks5::Address>& target,
                const std::string& state_dir) {
  std::printf("chain:     %s\n", settings::route_text(config).c_str());
  std::optional<socks5::Address> dst;
  if (target) {
    dst = target_for(config.proxies.back(), *target);
    if (!dst) return 1;
  }
  core::Connector connector;
  connector.init(config, state_dir, core::LineSink{}, nullptr);
  SpawnedTls tls(find_relay(), config.proxy_cacert);
  socks5::DialRequest request = request_for(dst, config.proxies.back());
  request.tcp_only = false;
  settings::Config upto = config;
  if (!dst && !config.proxies.back().is_socks5()) {
    // The last hop has no request without a destination: check the chain up to it (a
    // CONNECT to its address through the hops before it).
    const auto& last = config.proxies.back();
    request.command = socks5::wire::Command::connect;
    request.target = socks5::Address::from_host(last.host, last.port);
    upto.proxies.pop_back();
    connector.init(upto, state_dir, core::LineSink{}, nullptr);
  }
  connector.set_transport(&tls);
  socks5::Dial dial(timed(connector), socks5::DialSocket{}, std::move(request),
                    socks5::Deadline::after(config.timeout));
  run_dial(dial);
  const bool ok = dial.step().next == socks5::Dial::Next::done;
  if (!ok && dial.failed_stage() != socks5::DialStage::handshake) {
    return report_failure(dial, config);
  }
  std::printf("tcp:       connected to %s in %.3f ms\n",
              endpoint_text(dial, config.proxies.front()).c_str(), ms(dial.stats().connect_time));
  for (const auto& p : upto.proxies) report_tls(p, config);
  report_handshake_of(dial, ok, config.proxies.back().is_socks5());
  for (const auto& p : config.proxies) advise_pipelining(p, state_dir);
  if (!ok) return report_failure(dial, config);
  if (dst) {
    std::printf("target:    %s connected through %zu proxies (last hop's side %s)\n",
                dst->to_string().c_str(), config.proxies.size(), dial.bound().to_string().c_str());
  }
  std::printf("result:    %s\n", dst ? "OK" : "chain OK");
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
  // What earlier processes learned about the proxies' pipelining (the connector starts from
  // it, as a socksified program would, and keeps what it learns).
  const std::string state_dir =
      settings::state_dir([](const char* name) -> const char* { return std::getenv(name); });
  if (config.chain == socks5::ChainMode::strict && config.proxies.size() > 1) {
    const int rc = check_chain(config, target, state_dir);
    std::fflush(stdout);
    return rc;
  }
  std::size_t bad = 0;
  for (std::size_t i = 0; i < config.proxies.size(); ++i) {
    if (i > 0) std::printf("\n");
    std::fflush(stdout);
    if (check_proxy(i, config, target, state_dir) != 0) ++bad;
    std::fflush(stdout);
  }
  // Several proxies (failover): a last line for all of them, matching the exit status.
  const std::size_t n = config.proxies.size();
  if (n > 1) {
    if (bad == 0) {
      std::printf("\noverall:   all %zu proxies OK\n", n);
    } else if (bad < n) {
      std::printf(
          "\noverall:   FAILED: %zu of %zu proxies failed (connections fail over to the "
          "others)\n",
          bad, n);
    } else {
      std::printf("\noverall:   FAILED: all %zu proxies failed\n", n);
    }
  }
  std::fflush(stdout);
  return bad == 0 ? 0 : 1;
}

}  // namespace socksify::tool
