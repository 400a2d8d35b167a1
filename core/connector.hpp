#pragma once
// ONE connect path for every mode: the preloaded library, the seccomp supervisor and
// `socksify check` build their dials from a Connector and report their outcomes through it.
// It holds a configuration's dial plan (the proxies, the chain, the pipelining mode and what
// earlier processes learned about each proxy, the cool-down of proxies that failed, GSSAPI)
// and says what a finished dial means: the errno the program gets, and the lines (the failure
// line by default, the success line with -v, the lines about proxies moved on from and about
// pipelining learned). Where the lines go is the caller's (a LineSink).
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "config.hpp"
#include "policy.hpp"
#include "socks5/dialer.hpp"

namespace socksify::core {

/// Where a connector's lines go. `write` gets one line without its prefix; `pid` is the
/// process the line is about (0: this one).
struct LineSink {
  bool (*enabled)(settings::LogLevel level) noexcept = nullptr;
  void (*write)(settings::LogLevel level, int pid, const char* text) noexcept = nullptr;
};

/// Per-proxy cool-down: a proxy that failed is tried last for `cooldown`. Lock-free, shared by
/// every thread; a forked child starts with its parent's view.
class Cooldown final : public socks5::ProxyHealth {
 public:
  void init(std::size_t proxies, std::chrono::milliseconds cooldown);
  bool cooling(std::size_t i) const noexcept override;
  void failed(std::size_t i) noexcept override;

 private:
  std::unique_ptr<std::atomic<std::int64_t>[]> until_;  // steady-clock ms
  std::size_t n_ = 0;
  std::int64_t cooldown_ms_ = 0;
};

/// Monotonic milliseconds.
std::int64_t now_ms() noexcept;

class Connector {
 public:
  using Clock = std::chrono::steady_clock;

  Connector() = default;
  Connector(const Connector&) = delete;
  Connector& operator=(const Connector&) = delete;

  /// Builds the plan for `config` (kept by reference: it must outlive the connector). In
  /// automatic pipelining mode what earlier processes learned about each proxy is read from
  /// `state_dir` (settings/state.hpp), and what this one learns is written there. `syscalls`:
  /// the table dials use (nullptr: the C library's).
  void init(const settings::Config& config, std::string state_dir, LineSink sink,
            const socks5::Syscalls* syscalls);

  const socks5::DialPlan& plan() const noexcept { return plan_; }
  /// The layer https proxies need (TLS), for every dial of the plan.
  void set_transport(socks5::Transport* t) noexcept { plan_.transport = t; }
  const settings::Config& config() const noexcept { return *config_; }
  const std::string& state_dir() const noexcept { return state_dir_; }
  const LineSink& sink() const noexcept { return sink_; }

  /// Proxy `i` as its URI (password masked), for lines; "?" out of range.
  std::string proxy_text(std::size_t i) const;

  /// The lines for a finished dial (a failure at its level, a success with -v) of the
  /// connect `verdict` sent through the proxy; `t0` when it started (the success line's
  /// time); `pid` the process it was for (0: this one).
  void report(const socks5::Dial& dial, const Verdict& verdict, Clock::time_point t0,
              int pid = 0) const;
  /// The failure line alone.
  void report_failure(const socks5::Dial& dial, const Verdict& verdict, int pid = 0) const;

  /// -v: a connection that goes direct, and why ("connect ADDR:PORT direct (rule N)").
  void report_direct(const Verdict& verdict, const Destination& d, int pid = 0) const;
  /// -v: a refusal ("refused WHAT to DEST port N (why): what it means").
  void report_refusal(const Verdict& verdict, const Destination& d, const char* what,
                      int pid = 0) const;

  /// The errno a finished dial gives the program (0: connected).
  static int outcome_errno(const socks5::Dial& dial);

  /// One line through the sink (printf-style), when its level is enabled.
  void line(settings::LogLevel level, int pid, const char* fmt, ...) const
      __attribute__((format(printf, 4, 5)));
  bool enabled(settings::LogLevel level) const noexcept;

  /// The pid the observer's lines name (the supervisor sets it around the steps of a dial it
  /// runs for a program; 0: this process).
  static void set_line_pid(int pid) noexcept;

 private:
  class Observer final : public socks5::DialObserver {
   public:
    explicit Observer(const Connector& c) : c_(c) {}
    void proxy_failed(std::size_t i, socks5::DialStage stage, const std::error_code& ec,
                      bool next) noexcept override;
    void pipelining_fallback(std::size_t i) noexcept override;
    void pipelining_learned(std::size_t i, socks5::PipeliningVerdict v,
                            std::chrono::milliseconds stalled) noexcept override;

   private:
    const Connector& c_;
  };

  const settings::Config* config_ = nullptr;
  std::string state_dir_;
  LineSink sink_;
  std::vector<sockaddr_storage> numeric_;
  Cooldown health_;
  Observer observer_{*this};
  socks5::DialPlan plan_;
};

}  // namespace socksify::core
