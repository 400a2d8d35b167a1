#include "socks5/client.hpp"

#include <fcntl.h>
#include <netinet/in.h>

#include <cerrno>
#include <cstring>

#include "socks5/error.hpp"

namespace socks5 {
namespace {

const Syscalls& sys_of(const ClientOptions& options) {
  return options.syscalls != nullptr ? *options.syscalls : Syscalls::libc();
}

// The dialer's sockets are non-blocking; a Client hands out a plain blocking stream.
void set_blocking(int fd, const Syscalls& sys) {
  if (fd < 0) return;
  const int flags = sys.fcntl(fd, F_GETFL);
  if (flags >= 0 && (flags & O_NONBLOCK) != 0) sys.fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
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

DialPlan Client::plan(const ProxyUri& proxy, const ClientOptions& options) {
  DialPlan plan;
  plan.proxies = std::span<const ProxyUri>(&proxy, 1);
  plan.pipelining = options.pipelining;
  plan.stall_timeout = options.stall_timeout;
  plan.syscalls = options.syscalls;
  plan.gssapi = options.gssapi ? &*options.gssapi : nullptr;
  return plan;
}

Result<Client> Client::open(const ProxyUri& proxy, const ClientOptions& options) {
  DialRequest tcp;
  tcp.tcp_only = true;
  Dial dial(plan(proxy, options), DialSocket{}, tcp, Deadline::after(options.timeout));
  run_blocking(dial);
  if (dial.step().next != Dial::Next::done) return fail(dial.error());
  const int fd = dial.release_fd();
  set_blocking(fd, sys_of(options));
  Client c(fd, proxy, options, true, dial.endpoint());
  c.stats_.connect_time = dial.stats().connect_time;
  return c;
}

Client Client::adopt(int fd, const ProxyUri& proxy, const ClientOptions& options) {
  return Client(fd, proxy, options, false, peer_of(fd, sys_of(options)));
}

Client Client::adopt(int fd, const ProxyUri& proxy, const ClientOptions& options,
                     Address proxy_endpoint) {
  return Client(fd, proxy, options, false, std::move(proxy_endpoint));
}

Result<Address> Client::request(std::optional<wire::Command> command, const Address& destination) {
  if (fd_ < 0) return fail_errno(EBADF);
  // The dial takes the socket: a stalled pipelined handshake on a socket this client opened
  // is retried on a new one (same deadline), which then comes back here.
  DialSocket socket;
  socket.fd = std::exchange(fd_, -1);
  socket.connected = true;
  socket.owned = true;
  socket.reopen = reopenable_;
  socket.endpoint = proxy_addr_;
  DialRequest req;
  req.command = command;
  req.target = destination;
  Dial dial(plan(proxy_, options_), socket, req, Deadline::after(options_.timeout));
  run_blocking(dial);
  fd_ = dial.release_fd();
  const auto connect_time = stats_.connect_time;
  stats_ = dial.stats();
  if (stats_.fell_back) {
    set_blocking(fd_, sys());
  } else {
    stats_.connect_time = connect_time;
  }
  if (dial.step().next != Dial::Next::done) return fail(dial.error());
  protection_ = dial.take_protection();
  reader_ = std::move(dial.reader());
  if (!command) return Address{};
  return dial.bound();
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
  return reachable_bound(*r, proxy_addr_);
}

}  // namespace socks5
