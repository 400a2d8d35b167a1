#include "support/script_server.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>

namespace testing {

socks5::Bytes octets(std::initializer_list<int> v) {
  socks5::Bytes out;
  for (int b : v) out.push_back(static_cast<std::uint8_t>(b));
  return out;
}

socks5::ProxyUri loopback_proxy(std::uint16_t port) {
  socks5::ProxyUri u;
  u.host = "127.0.0.1";
  u.port = port;
  return u;
}

ScriptServer::ScriptServer(std::vector<Step> script)
    : ScriptServer(std::vector<std::vector<Step>>{std::move(script)}) {}

ScriptServer::ScriptServer(std::vector<std::vector<Step>> scripts) {
  fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(fd_ >= 0);
  sockaddr_in in{};
  in.sin_family = AF_INET;
  in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(bind(fd_, reinterpret_cast<sockaddr*>(&in), sizeof in) == 0);
  REQUIRE(listen(fd_, 4) == 0);
  socklen_t len = sizeof in;
  getsockname(fd_, reinterpret_cast<sockaddr*>(&in), &len);
  port_ = ntohs(in.sin_port);
  thread_ =
      std::thread([this, scripts = std::move(scripts)]() mutable { serve(std::move(scripts)); });
}

void ScriptServer::serve(std::vector<std::vector<Step>> scripts) {
  std::vector<int> held;  // connections kept open until the test is done with them
  auto accept_one = [this, &held](int timeout_ms) {
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, timeout_ms) <= 0) return -1;
    const int c = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (c >= 0) {
      ++accepted_;
      held.push_back(c);
    }
    return c;
  };
  // Interruptible wait: every step gives up when the test ends.
  auto nap = [this](std::chrono::milliseconds d) {
    const auto end = std::chrono::steady_clock::now() + d;
    while (!stop_ && std::chrono::steady_clock::now() < end) usleep(5000);
  };
  for (const auto& script : scripts) {
    int c = -1;
    while (!stop_ && c < 0) c = accept_one(20);
    if (c < 0) break;
    for (const Step& s : script) {
      if (stop_) break;
      switch (s.kind) {
        case Step::Kind::expect: {
          std::size_t got = 0;
          while (!stop_ && got < s.count) {
            pollfd p{c, POLLIN, 0};
            if (poll(&p, 1, 20) <= 0) continue;
            std::uint8_t buf[512];
            const std::size_t want = std::min(sizeof buf, s.count - got);
            const ssize_t n = recv(c, buf, want, 0);
            if (n <= 0) break;
            received_.insert(received_.end(), buf, buf + n);
            got += static_cast<std::size_t>(n);
          }
          break;
        }
        case Step::Kind::send: (void)send(c, s.data.data(), s.data.size(), MSG_NOSIGNAL); break;
        case Step::Kind::drip:
          for (auto b : s.data) {
            if (stop_) break;
            (void)send(c, &b, 1, MSG_NOSIGNAL);
            nap(s.delay);
          }
          break;
        case Step::Kind::sleep: {
          // Sleeps, but a client that hangs up ends this connection's script at once.
          const auto end = std::chrono::steady_clock::now() + s.delay;
          bool gone = false;
          while (!stop_ && !gone && std::chrono::steady_clock::now() < end) {
            pollfd p{c, POLLIN, 0};
            char probe;
            if (poll(&p, 1, 20) > 0) {
              if (recv(c, &probe, 1, MSG_PEEK | MSG_DONTWAIT) == 0) {
                gone = true;
              } else {
                usleep(5000);  // unread data: not a hang-up, and no busy loop
              }
            }
          }
          if (gone) {
            ::close(c);
            held.pop_back();
            c = -1;
          }
          break;
        }
        case Step::Kind::close:
          ::close(c);
          held.pop_back();
          c = -1;
          break;
        case Step::Kind::reset: {
          linger l{1, 0};  // RST instead of FIN
          setsockopt(c, SOL_SOCKET, SO_LINGER, &l, sizeof l);
          ::close(c);
          held.pop_back();
          c = -1;
          break;
        }
      }
      if (c < 0) break;
    }
  }
  // Count (and hold) whatever else connects until the test is done.
  while (!stop_) accept_one(20);
  for (int c : held) ::close(c);
}

socks5::Bytes ScriptServer::received() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
  return received_;
}

ScriptServer::~ScriptServer() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
  close(fd_);
}

}  // namespace testing
