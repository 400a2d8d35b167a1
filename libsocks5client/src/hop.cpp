#include "socks5/hop.hpp"

#include "socks5/http.hpp"
#include "socks5/negotiation.hpp"
#include "socks5/socks4.hpp"

namespace socks5 {
namespace {

// Method "none" carries no state: one shared object serves every SOCKS5 handshake, with no
// allocation for it. Made on first use and never destroyed, so no static constructor or
// exit-time destructor runs (a hook may dial during another library's exit handlers).
std::span<AuthMethod* const> no_auth_offer() {
  static AuthMethod* const offer[1] = {new NoAuth};
  return offer;
}

Result<std::unique_ptr<Hop>> socks5_hop(const ProxyUri& proxy, HopRequest r) {
  if (r.gssapi != nullptr) {
    std::vector<std::unique_ptr<AuthMethod>> gss;
    gss.push_back(std::make_unique<GssapiAuth>(*r.gssapi, proxy.host));
    return std::unique_ptr<Hop>(
        std::make_unique<Negotiation>(std::move(gss), r.command, std::move(r.target), false));
  }
  if (proxy.user) {
    // With credentials, offer only RFC 1929: a single method is what makes pipelining
    // possible, and a user who gave credentials wants them used.
    std::vector<std::unique_ptr<AuthMethod>> m;
    m.push_back(std::make_unique<UserPassAuth>(*proxy.user, proxy.password.value_or("")));
    return std::unique_ptr<Hop>(
        std::make_unique<Negotiation>(std::move(m), r.command, std::move(r.target), r.pipelining));
  }
  return std::unique_ptr<Hop>(
      std::make_unique<Negotiation>(no_auth_offer(), r.command, std::move(r.target), r.pipelining));
}

}  // namespace

Result<void> can_carry(const ProxyUri& proxy, const HopRequest& request) {
  if (!proxy.is_socks5()) {
    if (!request.command || *request.command != wire::Command::connect) {
      return fail(Errc::command_not_offered);
    }
    if (proxy.is_socks4() &&
        (request.target.type() == AddressType::ipv6 ||
         (request.target.type() == AddressType::domain && proxy.scheme != Scheme::socks4a))) {
      return fail(Errc::target_not_expressible);
    }
    if (proxy.is_http() && request.target.type() == AddressType::domain &&
        !http::sendable_name(request.target.host())) {
      return fail(Errc::target_not_expressible);
    }
  }
  return {};
}

Result<std::unique_ptr<Hop>> make_hop(const ProxyUri& proxy, HopRequest request) {
  if (auto c = can_carry(proxy, request); !c) return fail(c.error());
  switch (proxy.scheme) {
    case Scheme::socks5:
    case Scheme::socks5h: return socks5_hop(proxy, std::move(request));
    case Scheme::socks4:
    case Scheme::socks4a:
      return std::unique_ptr<Hop>(
          std::make_unique<socks4::Handshake>(proxy, std::move(request.target)));
    case Scheme::http:
    case Scheme::https:  // the same, inside the TLS layer the dial put under it
      return std::unique_ptr<Hop>(
          std::make_unique<http::Handshake>(proxy, std::move(request.target), request.gssapi));
  }
  return fail(Errc::invalid_argument);
}

}  // namespace socks5
