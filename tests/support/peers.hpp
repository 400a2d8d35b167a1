#pragma once
// Test fixtures: real peer processes, loopback echo servers, temp dirs, ports.
#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "socks5/address.hpp"

namespace testing {

/// Absolute path of a program on PATH, /usr/sbin or /sbin. A missing peer is a test FAILURE
/// (never a skip) with the package to install.
std::string require_program(const std::string& name, const std::string& package);

/// A free TCP port on 127.0.0.1 and ::1 (bound, read and closed).
std::uint16_t free_port();

/// A temporary directory, removed with its contents on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

/// Writes a whole file (mode 0600).
void write_file(const std::string& path, const std::string& text);
/// Reads a whole file ("" if missing).
std::string read_file(const std::string& path);

/// A child process in its own process group; killed (the whole group) on destruction.
class Process {
 public:
  /// Starts argv[0] with stdout and stderr appended to `log`.
  Process(std::vector<std::string> argv, const std::string& log);
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;
  pid_t pid() const { return pid_; }
  bool running();

 private:
  pid_t pid_ = -1;
};

/// Polls until something accepts TCP connections on host:port, or the timeout passes.
bool wait_for_port(const std::string& host, std::uint16_t port,
                   std::chrono::milliseconds timeout = std::chrono::seconds(10));

/// A TCP echo server on an exact loopback address that records each client's address.
class TcpEcho {
 public:
  /// Listens on host:port (port 0 = any free port).
  explicit TcpEcho(const std::string& host, std::uint16_t port = 0);
  ~TcpEcho();
  TcpEcho(const TcpEcho&) = delete;
  TcpEcho& operator=(const TcpEcho&) = delete;
  std::uint16_t port() const { return port_; }
  /// Client addresses seen (host part only).
  std::vector<std::string> peers();

 private:
  void run();
  int fd_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::vector<std::string> peers_;
  std::vector<std::thread> workers_;
  std::thread thread_;
};

/// A UDP echo server bound to an exact address (danted drops replies from other addresses).
class UdpEcho {
 public:
  explicit UdpEcho(const std::string& host);
  ~UdpEcho();
  UdpEcho(const UdpEcho&) = delete;
  UdpEcho& operator=(const UdpEcho&) = delete;
  std::uint16_t port() const { return port_; }

 private:
  int fd_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

/// Sends `text` on a connected socket and reads the same number of octets back (5 s limit).
std::string echo_roundtrip(int fd, const std::string& text);

/// "127.0.0.1" style host string for an address.
std::string host_of(const socks5::Address& a);

}  // namespace testing
