#include "connector.hpp"

#include <arpa/inet.h>
#include <time.h>

#include <cstdarg>
#include <cstdio>
#include <cstring>

#include "report.hpp"
#include "socks5/error.hpp"
#include "state.hpp"

namespace socksify::core {

using settings::LogLevel;

namespace {

constinit thread_local int t_line_pid = 0;

std::string why_text(const Verdict& v) {
  return v.rule > 0 ? "rule " + std::to_string(v.rule) : std::string(v.why);
}

}  // namespace

std::int64_t now_ms() noexcept {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

void Cooldown::init(std::size_t proxies, std::chrono::milliseconds cooldown) {
  n_ = proxies;
  cooldown_ms_ = cooldown.count();
  until_ = std::make_unique<std::atomic<std::int64_t>[]>(proxies);
}

bool Cooldown::cooling(std::size_t i) const noexcept {
  if (i >= n_) return false;
  const std::int64_t until = until_[i].load(std::memory_order_relaxed);
  return until != 0 && until > now_ms();  // no clock read for a proxy that never failed
}

void Cooldown::failed(std::size_t i) noexcept {
  if (i < n_) until_[i].store(now_ms() + cooldown_ms_, std::memory_order_relaxed);
}

void Connector::init(const settings::Config& config, std::string state_dir, LineSink sink,
                     const socks5::Syscalls* syscalls) {
  config_ = &config;
  state_dir_ = std::move(state_dir);
  sink_ = sink;
  // The proxies named by address (the usual case) are parsed once: no parsing per connect.
  numeric_.assign(config.proxies.size(), sockaddr_storage{});
  for (std::size_t i = 0; i < config.proxies.size(); ++i) {
    const auto& p = config.proxies[i];
    const socks5::Address a = socks5::Address::from_host(p.host, p.port);
    if (a.is_ip()) a.to_sockaddr(numeric_[i]);
  }
  health_.init(config.proxies.size(), config.cooldown);
  if (config.pipelining == socks5::Pipelining::automatic && !state_dir_.empty()) {
    // What earlier processes learned about the proxies' pipelining: one open() per proxy, so
    // a proxy that drops pipelined messages costs its stall once, not in every process.
    for (const auto& p : config.proxies) {
      socks5::remember_pipelining(p, settings::recall_pipelining(state_dir_, p));
    }
  }
  plan_.proxies = config.proxies;
  plan_.numeric = numeric_;
  plan_.chain = config.chain;
  plan_.pipelining = config.pipelining;
  plan_.gssapi = config.gssapi ? &*config.gssapi : nullptr;
  plan_.health = &health_;
  plan_.observer = &observer_;
  plan_.measure = enabled(LogLevel::info);  // the times are only for the lines
  if (syscalls != nullptr) plan_.syscalls = syscalls;
}

bool Connector::enabled(LogLevel level) const noexcept {
  return sink_.enabled != nullptr && sink_.enabled(level);
}

void Connector::line(LogLevel level, int pid, const char* fmt, ...) const {
  if (!enabled(level) || sink_.write == nullptr) return;
  char text[1024];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(text, sizeof text, fmt, ap);
  va_end(ap);
  sink_.write(level, pid, text);
}

void Connector::set_line_pid(int pid) noexcept {
  t_line_pid = pid;
}

std::string Connector::proxy_text(std::size_t i) const {
  return i < config_->proxies.size() ? config_->proxies[i].to_string() : std::string("?");
}

void Connector::report_failure(const socks5::Dial& dial, const Verdict& verdict, int pid) const {
  // A failure the program caused (a socket of the wrong family...) only with -v.
  if (!enabled(dial.caller_fault() ? LogLevel::info : LogLevel::error)) return;
  const std::string why = enabled(LogLevel::info) ? " (" + why_text(verdict) + ")" : "";
  line(LogLevel::error, pid, "connect to %s failed%s: %s", dial.target().to_string().c_str(),
       why.c_str(), settings::failure_text(dial, *config_).c_str());
}

void Connector::report(const socks5::Dial& dial, const Verdict& verdict, Clock::time_point t0,
                       int pid) const {
  if (dial.step().next != socks5::Dial::Next::done) {
    report_failure(dial, verdict, pid);
    return;
  }
  if (!enabled(LogLevel::info)) return;
  const auto& cfg = *config_;
  const std::string via =
      cfg.chain == socks5::ChainMode::strict ? settings::route_text(cfg) : proxy_text(dial.proxy());
  const auto& st = dial.stats();
  const double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  line(LogLevel::info, pid, "connect %s via %s (%s): method %s, %d wait%s, %.2f ms",
       dial.target().to_string().c_str(), via.c_str(), why_text(verdict).c_str(), st.method_text,
       st.waits, st.waits == 1 ? "" : "s", ms);
}

void Connector::report_direct(const Verdict& verdict, const Destination& d, int pid) const {
  if (!enabled(LogLevel::info)) return;
  char addr[INET6_ADDRSTRLEN + 2] = "?";
  if (!d.name.empty()) {
    std::snprintf(addr, sizeof addr, "%.*s", static_cast<int>(d.name.size()), d.name.data());
  } else if (d.family == AF_INET6) {
    addr[0] = '[';
    if (inet_ntop(AF_INET6, d.ip.data(), addr + 1, sizeof addr - 2) != nullptr) {
      std::strcat(addr, "]");
    }
  } else if (d.family == AF_INET) {
    inet_ntop(AF_INET, d.ip.data(), addr, sizeof addr);
  }
  if (verdict.rule > 0) {
    line(LogLevel::info, pid, "connect %s:%u direct (rule %d)", addr, d.port, verdict.rule);
  } else if (std::strcmp(verdict.why, "loopback") == 0) {
    // The default that surprises: say how to change it.
    line(LogLevel::info, pid,
         "connect %s:%u direct (loopback, by default; a rule such as -r 'proxy %s' sends it "
         "through the proxy)",
         addr, d.port, d.family == AF_INET6 ? "::1/128" : "127.0.0.0/8");
  } else {
    line(LogLevel::info, pid, "connect %s:%u direct (%s)", addr, d.port, verdict.why);
  }
}

void Connector::report_refusal(const Verdict& verdict, const Destination& d, const char* what,
                               int pid) const {
  if (!enabled(LogLevel::info)) return;
  char addr[64] = "an address";
  if (!d.name.empty()) {
    std::snprintf(addr, sizeof addr, "%.*s", static_cast<int>(d.name.size()), d.name.data());
  } else if (d.family != 0) {
    inet_ntop(d.family, d.ip.data(), addr, sizeof addr);
  }
  char why[32];
  if (verdict.rule > 0) {
    std::snprintf(why, sizeof why, "rule %d", verdict.rule);
  } else {
    std::snprintf(why, sizeof why, "%s", verdict.why);
  }
  line(LogLevel::info, pid, "refused %s to %s port %u (%s): %s", what, addr, d.port, why,
       refusal_text(verdict.refusal));
}

int Connector::outcome_errno(const socks5::Dial& dial) {
  if (dial.step().next == socks5::Dial::Next::done) return 0;
  const int e = socks5::to_errno(dial.error());
  return e != 0 ? e : ECONNREFUSED;
}

void Connector::Observer::proxy_failed(std::size_t i, socks5::DialStage stage,
                                       const std::error_code& ec, bool next) noexcept {
  if (!next || !c_.enabled(LogLevel::info)) return;
  c_.line(LogLevel::info, t_line_pid, "proxy %s %s: %s; trying the next one",
          c_.proxy_text(i).c_str(),
          stage == socks5::DialStage::handshake ? "failed the handshake" : "unreachable",
          ec.message().c_str());
}

void Connector::Observer::pipelining_fallback(std::size_t i) noexcept {
  c_.line(LogLevel::debug, t_line_pid,
          "proxy %s did not answer what was sent with the greeting: retrying one message per "
          "round trip",
          c_.proxy_text(i).c_str());
}

void Connector::Observer::pipelining_learned(std::size_t i, socks5::PipeliningVerdict v,
                                             std::chrono::milliseconds stalled) noexcept {
  const auto& cfg = c_.config();
  if (i >= cfg.proxies.size()) return;
  const auto& proxy = cfg.proxies[i];
  const bool saved = settings::record_pipelining(c_.state_dir(), proxy, v);
  if (v != socks5::PipeliningVerdict::drops || !c_.enabled(LogLevel::info)) return;
  const std::string where =
      saved ? "remembered for a day in " + settings::pipelining_file(c_.state_dir(), proxy)
            : std::string("not remembered (no usable state directory)");
  c_.line(LogLevel::info, t_line_pid,
          "proxy %s drops messages sent together with the greeting (as microsocks does): "
          "waited %lld ms, then sent one message per round trip; %s; %s",
          proxy.to_string().c_str(), static_cast<long long>(stalled.count()), where.c_str(),
          settings::pipelining_advice().c_str());
}

}  // namespace socksify::core
