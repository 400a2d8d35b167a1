#include "socks5/client.hpp"

#include <fcntl.h>
#include <netinet/in.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <cstring>

#include "socks5/error.hpp"

namespace socks5 {
namespace {

using Clock = std::chrono::steady_clock;

// Proxies seen stalling on a pipelined handshake (they read one message per recv() and drop the
// rest, as microsocks does). Process-wide, lock-free (so fork() can never inherit a held lock),
// fixed size, trivially initialised: fingerprints of the proxy endpoints, 0 = empty.
std::array<std::atomic<std::uint64_t>, 32> g_stalling{};
std::atomic<std::uint32_t> g_stalling_next{0};

std::uint64_t fingerprint(const Address& proxy) {
  // FNV-1a over family, address and port; never 0 (0 marks an empty slot).
  std::uint64_t h = 1469598103934665603ULL;
  auto mix = [&h](std::uint8_t b) { h = (h ^ b) * 1099511628211ULL; };
  mix(static_cast<std::uint8_t>(proxy.type()));
  for (auto b : proxy.octets()) mix(b);
  mix(static_cast<std::uint8_t>(proxy.port() >> 8));
  mix(static_cast<std::uint8_t>(proxy.port() & 0xFF));
  return h == 0 ? 1 : h;
}

}  // namespace

bool pipelining_known_bad(const Address& proxy) noexcept {
  // Nothing remembered (the usual case): no need to hash.
  if (g_stalling_next.load(std::memory_order_relaxed) == 0 || !proxy.is_ip()) return false;
  const std::uint64_t f = fingerprint(proxy);
  for (const auto& slot : g_stalling) {
    if (slot.load(std::memory_order_relaxed) == f) return true;
  }
  return false;
}

void remember_pipelining_bad(const Address& proxy) noexcept {
  if (!proxy.is_ip() || pipelining_known_bad(proxy)) return;
  const std::uint32_t i = g_stalling_next.fetch_add(1, std::memory_order_relaxed);
  g_stalling[i % g_stalling.size()].store(fingerprint(proxy), std::memory_order_relaxed);
}

namespace {

// A non-blocking connect bounded by the deadline; the socket is left in blocking mode.
Result<int> connect_endpoint(const sockaddr* sa, socklen_t len, Deadline deadline,
                             const Syscalls& sys) {
  const int fd = sys.socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return fail_errno(errno);
  int rc = sys.connect(fd, sa, len);
  if (rc != 0 && errno == EINPROGRESS) {
    Stream s(fd, sys);
    auto w = s.wait(POLLOUT, deadline);
    if (!w) {
      sys.close(fd);
      return fail(w.error());
    }
    int err = 0;
    socklen_t elen = sizeof err;
    if (sys.getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0) err = errno;
    if (err != 0) {
      sys.close(fd);
      return fail_errno(err);
    }
    rc = 0;
  }
  if (rc != 0) {
    const int err = errno;
    sys.close(fd);
    return fail_errno(err);
  }
  const int flags = sys.fcntl(fd, F_GETFL);
  if (flags >= 0) sys.fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
  return fd;
}

const Syscalls& sys_of(const ClientOptions& options) {
  return options.syscalls != nullptr ? *options.syscalls : Syscalls::libc();
}

Address peer_of(int fd, const Syscalls& sys) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (sys.getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return {};
  auto a = Address::from_sockaddr(reinterpret_cast<sockaddr*>(&ss), len);
  return a ? *a : Address{};
}

// Reads one more reply (BIND's second) through the negotiated protection layer.
class ReplyMachine final : public Machine {
 public:
  ReplyMachine(ReplyReader& reader, Protection* protection)
      : reader_(reader), protection_(protection) {}
  const Bytes& output() const noexcept override { return empty_; }
  void clear_output() noexcept override {}
  Result<std::size_t> receive(ByteView in) override { return reader_.receive(in, protection_); }
  bool done() const noexcept override { return reader_.reply().has_value(); }

 private:
  ReplyReader& reader_;
  Protection* protection_;
  Bytes empty_;
};

}  // namespace

void reset_pipelining_memory() noexcept {
  for (auto& slot : g_stalling) slot.store(0, std::memory_order_relaxed);
  g_stalling_next.store(0, std::memory_order_relaxed);
}

Client::Client(int fd, ProxyUri proxy, ClientOptions options, bool reopenable,
               Address proxy_endpoint)
    : fd_(fd),
      proxy_(std::move(proxy)),
      options_(options),
      reopenable_(reopenable),
      proxy_addr_(std::move(proxy_endpoint)) {}

Client::Client(Client&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      proxy_(std::move(other.proxy_)),
      options_(other.options_),
      reopenable_(other.reopenable_),
      proxy_addr_(std::move(other.proxy_addr_)),
      stats_(other.stats_),
      protection_(std::move(other.protection_)),
      reader_(std::move(other.reader_)) {}

Client& Client::operator=(Client&& other) noexcept {
  if (this != &other) {
    close_fd();
    fd_ = std::exchange(other.fd_, -1);
    proxy_ = std::move(other.proxy_);
    options_ = other.options_;
    reopenable_ = other.reopenable_;
    proxy_addr_ = std::move(other.proxy_addr_);
    stats_ = other.stats_;
    protection_ = std::move(other.protection_);
    reader_ = std::move(other.reader_);
  }
  return *this;
}

Client::~Client() {
  close_fd();
}

void Client::close_fd() noexcept {
  if (fd_ >= 0) sys().close(fd_);
  fd_ = -1;
}

int Client::release() noexcept {
  return std::exchange(fd_, -1);
}

const Syscalls& Client::sys() const noexcept {
  return sys_of(options_);
}

Result<Client> Client::open(const ProxyUri& proxy, const ClientOptions& options) {
  const Syscalls& sys = sys_of(options);
  const auto deadline = Deadline::after(options.timeout);
  const auto t0 = Clock::now();
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV | AI_ADDRCONFIG;
  addrinfo* list = nullptr;
  const std::string port = std::to_string(proxy.port);
  const int gai = sys.getaddrinfo(proxy.host.c_str(), port.c_str(), &hints, &list);
  if (gai != 0 || list == nullptr) {
    // AI_ADDRCONFIG hides ::1 on hosts without a global IPv6 address; retry without it.
    hints.ai_flags = AI_NUMERICSERV;
    if (sys.getaddrinfo(proxy.host.c_str(), port.c_str(), &hints, &list) != 0 || !list) {
      return fail(Errc::name_resolution_failed);
    }
  }
  std::error_code last = Errc::name_resolution_failed;
  int fd = -1;
  Address endpoint;
  for (addrinfo* ai = list; ai != nullptr && fd < 0; ai = ai->ai_next) {
    auto r = connect_endpoint(ai->ai_addr, ai->ai_addrlen, deadline, sys);
    if (r) {
      fd = *r;
      if (auto a = Address::from_sockaddr(ai->ai_addr, ai->ai_addrlen)) endpoint = *a;
    } else {
      last = r.error();
      if (deadline.expired()) break;
    }
  }
  sys.freeaddrinfo(list);
  if (fd < 0) return fail(last);
  Client c(fd, proxy, options, true, std::move(endpoint));
  c.stats_.connect_time = Clock::now() - t0;
  return c;
}

Client Client::adopt(int fd, const ProxyUri& proxy, const ClientOptions& options) {
  return Client(fd, proxy, options, false, peer_of(fd, sys_of(options)));
}

Client Client::adopt(int fd, const ProxyUri& proxy, const ClientOptions& options,
                     Address proxy_endpoint) {
  return Client(fd, proxy, options, false, std::move(proxy_endpoint));
}

std::vector<std::unique_ptr<AuthMethod>> Client::methods() const {
  std::vector<std::unique_ptr<AuthMethod>> m;
  // With credentials, offer only RFC 1929: a single method is what makes pipelining possible,
  // and a user who gave credentials wants them used.
  if (proxy_.user) {
    m.push_back(std::make_unique<UserPassAuth>(*proxy_.user, proxy_.password.value_or("")));
  } else {
    m.push_back(std::make_unique<NoAuth>());
  }
  return m;
}

Result<void> Client::negotiate(std::optional<wire::Command> command, const Address& destination,
                               bool pipelining) {
  const auto t0 = Clock::now();
  const Deadline deadline(t0 + options_.timeout);
  Negotiation n(methods(), command, destination, pipelining);
  auto s = n.start();
  if (!s) return s;
  stats_.pipelined = n.pipelined();
  DriveStats ds;
  DriveOptions opts;
  if (options_.pipelining == Pipelining::automatic && n.pipelined()) {
    opts.stall = options_.stall_timeout;
    opts.stall_armed = [&n] { return n.method_selected() && !n.done(); };
  }
  Stream stream(fd_, sys());
  auto r = drive(stream, n, deadline, &ds, opts);
  stats_.waits = ds.waits;
  stats_.method = n.method();
  stats_.handshake_time = Clock::now() - t0;
  if (!r) return r;
  protection_ = n.take_protection();
  reader_ = std::move(n.reader());
  return {};
}

Result<Address> Client::request(std::optional<wire::Command> command, const Address& destination) {
  if (fd_ < 0) return fail_errno(EBADF);
  const bool automatic = options_.pipelining == Pipelining::automatic;
  const bool pipelining =
      options_.pipelining == Pipelining::on || (automatic && !pipelining_known_bad(proxy_addr_));
  stats_.fell_back = false;
  auto r = negotiate(command, destination, pipelining);
  if (!r && r.error() == Errc::pipelining_stalled) {
    remember_pipelining_bad(proxy_addr_);
    if (!reopenable_) return fail(r.error());
    // The server dropped our pipelined octets: reconnect and do it one message at a time.
    sockaddr_storage ss{};
    const socklen_t len = proxy_addr_.to_sockaddr(ss);
    close_fd();
    auto fd = connect_endpoint(reinterpret_cast<sockaddr*>(&ss), len,
                               Deadline::after(options_.timeout), sys());
    if (!fd) return fail(fd.error());
    fd_ = *fd;
    const int first_waits = stats_.waits;
    const auto first_time = stats_.handshake_time;
    r = negotiate(command, destination, false);
    stats_.waits += first_waits;
    stats_.handshake_time += first_time;
    stats_.fell_back = true;
  }
  if (!r) return fail(r.error());
  if (!command) return Address{};
  return reader_.reply()->bound;
}

Result<void> Client::authenticate() {
  auto r = request(std::nullopt, Address{});
  if (!r) return fail(r.error());
  return {};
}

Result<Address> Client::connect(const Address& destination) {
  return request(wire::Command::connect, destination);
}

Result<Address> Client::bind(const Address& destination) {
  return request(wire::Command::bind, destination);
}

Result<Address> Client::accept_bind(std::optional<std::chrono::milliseconds> timeout) {
  if (fd_ < 0) return fail_errno(EBADF);
  reader_.reset();
  ReplyMachine m(reader_, protection_.get());
  Stream stream(fd_, sys());
  auto r = drive(stream, m, Deadline::after(timeout.value_or(options_.timeout)));
  if (!r) return fail(r.error());
  if (auto ec = reply_error(reader_.reply()->rep)) return fail(ec);
  return reader_.reply()->bound;
}

Result<Address> Client::udp_associate(const Address& client_endpoint) {
  auto r = request(wire::Command::udp_associate, client_endpoint);
  if (!r) return r;
  Address relay = *r;
  // RFC 1928 leaves "0.0.0.0" undefined; servers use it to mean "the address you reached me
  // at", which is what every client (and the RFC's intent) uses.
  if (relay.is_unspecified() && proxy_addr_.is_ip()) {
    Address fixed = proxy_addr_;
    fixed.set_port(relay.port());
    relay = fixed;
  }
  return relay;
}

}  // namespace socks5
