#pragma once
// The SOCKS5 client: connect to a proxy, negotiate, then CONNECT, BIND or UDP ASSOCIATE.
// Blocking, every operation bounded by a deadline. Built on the dialer (dialer.hpp), which
// also chains proxies (ChainMode::strict); negotiation works over any connected stream too
// (adopt), so a CONNECT through proxy A to proxy B followed by B's handshake chains by hand.
#include <chrono>
#include <memory>
#include <optional>

#include "socks5/address.hpp"
#include "socks5/dialer.hpp"
#include "socks5/negotiation.hpp"
#include "socks5/stream.hpp"
#include "socks5/syscalls.hpp"
#include "socks5/uri.hpp"

namespace socks5 {

/// Settings for a Client.
struct ClientOptions {
  std::chrono::milliseconds timeout{10000};  ///< each operation's deadline (connect, handshake)
  Pipelining pipelining = Pipelining::automatic;
  /// In automatic mode: silence after the method selection that counts as a stall.
  std::chrono::milliseconds stall_timeout{1500};
  const Syscalls* syscalls = nullptr;  ///< nullptr = Syscalls::libc()
  /// Authenticate with GSSAPI (RFC 1961) instead of the URI's method.
  std::optional<GssapiOptions> gssapi;
};

/// A control connection to one SOCKS5 proxy. Move-only; closes its socket unless released.
class Client {
 public:
  /// Opens a TCP connection to the proxy (a host name is resolved locally; each address is
  /// tried in turn) without negotiating yet.
  static Result<Client> open(const ProxyUri& proxy, const ClientOptions& options = {});
  /// Negotiates over an already connected stream (the fd is owned from now on). Used for
  /// chaining: the stream may itself be a CONNECT through another proxy.
  static Client adopt(int fd, const ProxyUri& proxy, const ClientOptions& options = {});
  /// The same, for a caller that already knows the proxy endpoint the stream is connected to
  /// (saves asking the kernel; the endpoint keys the pipelining memory).
  static Client adopt(int fd, const ProxyUri& proxy, const ClientOptions& options,
                      Address proxy_endpoint);

  Client(Client&& other) noexcept;
  Client& operator=(Client&& other) noexcept;
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;
  ~Client();

  /// Negotiates (greeting and authentication) without a request: probes the proxy.
  Result<void> authenticate();
  /// Negotiates and sends CONNECT; returns BND (the proxy's address for the outgoing leg).
  Result<Address> connect(const Address& destination);
  /// Negotiates and sends BIND; returns the address the proxy listens on (first reply).
  Result<Address> bind(const Address& destination);
  /// After bind(): waits for the second reply; returns the peer that connected.
  Result<Address> accept_bind(std::optional<std::chrono::milliseconds> timeout = {});
  /// Negotiates and sends UDP ASSOCIATE with the client's datagram address (or 0.0.0.0:0);
  /// returns the relay endpoint, with 0.0.0.0 / :: replaced by the proxy's address. The
  /// association lives as long as this control connection.
  Result<Address> udp_associate(const Address& client_endpoint);

  /// The control socket.
  int fd() const noexcept { return fd_; }
  /// Gives up ownership of the socket (e.g. to hand a CONNECTed stream to the application).
  int release() noexcept;
  /// Statistics of the last handshake.
  const HandshakeStats& stats() const noexcept { return stats_; }
  /// The proxy's address as connected (sockaddr of the peer).
  const Address& proxy_address() const noexcept { return proxy_addr_; }
  /// The protection layer negotiated (GSSAPI), or nullptr.
  Protection* protection() const noexcept { return protection_.get(); }

 private:
  Client(int fd, ProxyUri proxy, ClientOptions options, bool reopenable, Address proxy_endpoint);
  static DialPlan plan(const ProxyUri& proxy, const ClientOptions& options);
  Result<Address> request(std::optional<wire::Command> command, const Address& destination);
  const Syscalls& sys() const noexcept;
  void close_fd() noexcept;

  int fd_ = -1;
  ProxyUri proxy_;
  ClientOptions options_;
  bool reopenable_ = false;  // opened by us, so a fallback may reconnect
  Address proxy_addr_;
  HandshakeStats stats_;
  std::unique_ptr<Protection> protection_;
  ReplyReader reader_;
};

}  // namespace socks5
