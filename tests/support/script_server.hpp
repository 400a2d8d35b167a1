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

/// Runs a script against the first client; port() gives where to connect.
class ScriptServer {
 public:
  explicit ScriptServer(std::vector<Step> script);
  ~ScriptServer();
  ScriptServer(const ScriptServer&) = delete;
  ScriptServer& operator=(const ScriptServer&) = delete;
  std::uint16_t port() const { return port_; }
  /// Everything the client sent (valid after the script ended or the server was destroyed).
  socks5::Bytes received();

 private:
  int fd_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  socks5::Bytes received_;
  std::thread thread_;
};

/// Convenience: octets from a list of ints.
socks5::Bytes octets(std::initializer_list<int> v);

}  // namespace testing
