#pragma once
// A small scriptable SOCKS5 "server" for faults real servers never produce: it accepts ONE
// connection on 127.0.0.1 and plays a script (read, send, drip, sleep, close, reset).
// It complements the real servers in tests/interop; it never replaces them.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "socks5/uri.hpp"
#include "socks5/wire.hpp"

namespace testing {

/// One step of a script.
struct Step {
  enum class Kind { expect, send, drip, sleep, close, reset };
  Kind kind;
  socks5::Bytes data;                  ///< send/drip payload
  std::size_t count = 0;               ///< expect: octets to read
  std::chrono::milliseconds delay{0};  ///< drip interval, sleep time

  static Step expect(std::size_t n) { return {Kind::expect, {}, n, {}}; }
  static Step send(socks5::Bytes b) { return {Kind::send, std::move(b), 0, {}}; }
  static Step drip(socks5::Bytes b, std::chrono::milliseconds every) {
    return {Kind::drip, std::move(b), 0, every};
  }
  static Step sleep(std::chrono::milliseconds d) { return {Kind::sleep, {}, 0, d}; }
  static Step close() { return {Kind::close, {}, 0, {}}; }
  static Step reset() { return {Kind::reset, {}, 0, {}}; }
};

/// Runs a script against the first client (or one script per client, in order); port()
/// gives where to connect. Clients beyond the scripts are accepted, counted and held open.
class ScriptServer {
 public:
  explicit ScriptServer(std::vector<Step> script);
  explicit ScriptServer(std::vector<std::vector<Step>> scripts);
  ~ScriptServer();
  ScriptServer(const ScriptServer&) = delete;
  ScriptServer& operator=(const ScriptServer&) = delete;
  std::uint16_t port() const { return port_; }
  /// Everything the clients sent, in order (stops the server: call at the end).
  socks5::Bytes received();
  /// Connections accepted so far.
  int accepted() const { return accepted_.load(); }

 private:
  void serve(std::vector<std::vector<Step>> scripts);
  int fd_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> accepted_{0};
  socks5::Bytes received_;
  std::thread thread_;
};

/// Convenience: octets from a list of ints.
socks5::Bytes octets(std::initializer_list<int> v);

/// socks5://127.0.0.1:PORT (where a ScriptServer listens).
socks5::ProxyUri loopback_proxy(std::uint16_t port);

}  // namespace testing
