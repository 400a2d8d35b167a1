#include "support/peers.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace testing {

std::string require_program(const std::string& name, const std::string& package) {
  if (!name.empty() && name.front() == '/') {  // an absolute path: that program exactly
    if (access(name.c_str(), X_OK) == 0) return name;
    FAIL("peer '" << name << "' is missing: apt-get install -y " << package
                  << " (interop tests never skip; scripts/install-deps.sh installs it)");
  }
  std::string path_env = std::getenv("PATH") ? std::getenv("PATH") : "";
  path_env += ":/usr/sbin:/sbin:/usr/bin:/bin";
  std::stringstream ss(path_env);
  std::string dir;
  while (std::getline(ss, dir, ':')) {
    if (dir.empty()) continue;
    const std::string candidate = dir + "/" + name;
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  FAIL("peer '" << name << "' is missing: apt-get install -y " << package
                << " (interop tests never skip; scripts/install-deps.sh installs it)");
  return {};
}

std::uint16_t free_port() {
  for (int attempt = 0; attempt < 50; ++attempt) {
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in in{};
    in.sin_family = AF_INET;
    in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd, reinterpret_cast<sockaddr*>(&in), sizeof in);
    socklen_t len = sizeof in;
    getsockname(fd, reinterpret_cast<sockaddr*>(&in), &len);
    close(fd);
    const std::uint16_t port = ntohs(in.sin_port);
    // Servers listen on ::1 too: make sure that side is free as well.
    const int fd6 = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in6 in6{};
    in6.sin6_family = AF_INET6;
    in6.sin6_addr = in6addr_loopback;
    in6.sin6_port = htons(port);
    const bool ok = bind(fd6, reinterpret_cast<sockaddr*>(&in6), sizeof in6) == 0;
    close(fd6);
    if (ok) return port;
  }
  FAIL("no free loopback port");
  return 0;
}

TempDir::TempDir() {
  char tmpl[] = "/tmp/socksify-test-XXXXXX";
  const char* p = mkdtemp(tmpl);
  REQUIRE(p != nullptr);
  path_ = p;
  chmod(path_.c_str(), 0755);  // danted and sshd drop privileges and still read their files
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
  out.close();
  chmod(path.c_str(), 0600);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

Process::Process(std::vector<std::string> argv, const std::string& log) {
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  pid_ = fork();
  REQUIRE(pid_ >= 0);
  if (pid_ == 0) {
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive a crashed test
    const int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
      close(fd);
    }
    const int null = open("/dev/null", O_RDONLY);
    if (null >= 0) dup2(null, 0);
    execv(args[0], args.data());
    _exit(127);
  }
  setpgid(pid_, pid_);
}

bool Process::running() {
  if (pid_ <= 0) return false;
  int status = 0;
  return waitpid(pid_, &status, WNOHANG) == 0;
}

Process::~Process() {
  if (pid_ <= 0) return;
  kill(-pid_, SIGTERM);
  kill(pid_, SIGTERM);
  for (int i = 0; i < 100; ++i) {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) != 0) {
      kill(-pid_, SIGKILL);  // children of a daemon that outlived it
      return;
    }
    usleep(20000);
  }
  kill(-pid_, SIGKILL);
  waitpid(pid_, nullptr, 0);
}

bool wait_for_port(const std::string& host, std::uint16_t port, std::chrono::milliseconds timeout) {
  const auto end = std::chrono::steady_clock::now() + timeout;
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
  addrinfo* ai = nullptr;
  if (getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &ai) != 0) return false;
  bool ok = false;
  while (!ok && std::chrono::steady_clock::now() < end) {
    const int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ok = connect(fd, ai->ai_addr, ai->ai_addrlen) == 0;
    close(fd);
    if (!ok) usleep(20000);
  }
  freeaddrinfo(ai);
  return ok;
}

namespace {

int listen_on(const std::string& host, int type, std::uint16_t& port) {
  auto a = socks5::Address::from_host(host, port);
  sockaddr_storage ss{};
  const socklen_t len = a.to_sockaddr(ss);
  const int fd = socket(ss.ss_family, type | SOCK_CLOEXEC, 0);
  REQUIRE(fd >= 0);
  const int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&ss), len) == 0);
  if (type == SOCK_STREAM) REQUIRE(listen(fd, 64) == 0);
  socklen_t l = sizeof ss;
  getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &l);
  port = socks5::Address::from_sockaddr(reinterpret_cast<sockaddr*>(&ss), l)->port();
  return fd;
}

}  // namespace

std::string host_of(const socks5::Address& a) {
  return a.host_string();
}

TcpEcho::TcpEcho(const std::string& host, std::uint16_t port) : port_(port) {
  fd_ = listen_on(host, SOCK_STREAM, port_);
  thread_ = std::thread([this] { run(); });
}

void TcpEcho::run() {
  while (!stop_) {
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, 50) <= 0) continue;
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    const int c = accept4(fd_, reinterpret_cast<sockaddr*>(&ss), &len, SOCK_CLOEXEC);
    if (c < 0) continue;
    auto a = socks5::Address::from_sockaddr(reinterpret_cast<sockaddr*>(&ss), len);
    {
      std::lock_guard lock(mu_);
      peers_.push_back(a ? a->host_string() : "?");
    }
    workers_.emplace_back([c, this] {
      char buf[4096];
      while (!stop_) {
        pollfd q{c, POLLIN, 0};
        if (poll(&q, 1, 50) <= 0) continue;
        const ssize_t n = read(c, buf, sizeof buf);
        if (n <= 0) break;
        if (write(c, buf, static_cast<size_t>(n)) != n) break;
      }
      close(c);
    });
  }
}

std::vector<std::string> TcpEcho::peers() {
  std::lock_guard lock(mu_);
  return peers_;
}

TcpEcho::~TcpEcho() {
  stop_ = true;
  thread_.join();
  for (auto& w : workers_) w.join();
  close(fd_);
}

UdpEcho::UdpEcho(const std::string& host) {
  fd_ = listen_on(host, SOCK_DGRAM, port_);
  thread_ = std::thread([this] {
    char buf[65536];
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, 50) <= 0) continue;
      sockaddr_storage ss{};
      socklen_t len = sizeof ss;
      const ssize_t n = recvfrom(fd_, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&ss), &len);
      if (n < 0) continue;
      sendto(fd_, buf, static_cast<size_t>(n), 0, reinterpret_cast<sockaddr*>(&ss), len);
    }
  });
}

UdpEcho::~UdpEcho() {
  stop_ = true;
  thread_.join();
  close(fd_);
}

std::string echo_roundtrip(int fd, const std::string& text) {
  if (send(fd, text.data(), text.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(text.size())) {
    return "<send failed: " + std::string(std::strerror(errno)) + ">";
  }
  std::string got;
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (got.size() < text.size() && std::chrono::steady_clock::now() < end) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 100) <= 0) continue;
    char buf[4096];
    const ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    got.append(buf, static_cast<std::size_t>(n));
  }
  return got;
}

}  // namespace testing
