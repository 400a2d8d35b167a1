#include "report.hpp"

#include "socks5/error.hpp"
#include "socks5/gssapi.hpp"

namespace socksify::settings {
namespace {

using socks5::Errc;

std::string ms_text(std::chrono::milliseconds ms) {
  return std::to_string(ms.count()) + " ms";
}

// "proxy socks5://host:1080" or, in a strict chain, "hop 2 (socks5://host:1080)".
std::string who(const socks5::Dial& dial, const Config& config) {
  const std::size_t i = dial.proxy();
  const std::string uri = i < config.proxies.size() ? config.proxies[i].to_string() : "?";
  if (config.chain == socks5::ChainMode::strict && config.proxies.size() > 1) {
    return "hop " + std::to_string(i + 1) + " (" + uri + ")";
  }
  return "proxy " + uri;
}

// The GSSAPI failures a user can act on, with what to do (empty for the others).
std::string gssapi_failure(const std::error_code& ec, const socks5::GssapiOptions& gss,
                           const socks5::ProxyUri* uri) {
  const std::string host = uri != nullptr ? uri->host : std::string("?");
  // An HTTP proxy is asked a ticket for its HTTP service (Negotiate).
  const std::string name = "'" +
                           (uri != nullptr && uri->is_http() ? socks5::negotiate_target(gss, host)
                                                             : socks5::gssapi_target(gss, host)) +
                           "'";
  const std::string level(socks5::gss_level_name(gss.level));
  const std::string& detail = socks5::gssapi_last_status();
  const std::string words = detail.empty() ? "" : " (" + detail + ")";
  if (ec == Errc::no_acceptable_method) {
    return " does not offer GSSAPI authentication (SOCKSIFY_AUTH=gssapi)";
  }
  if (ec == Errc::gssapi_no_credentials) {
    return ": no Kerberos credentials for GSSAPI: run kinit (or set KRB5CCNAME, or "
           "KRB5_CLIENT_KTNAME for a keytab)" +
           words;
  }
  if (ec == Errc::gssapi_unknown_service) {
    return ": the KDC does not know the service " + name +
           " (set SOCKSIFY_GSSAPI_SERVICE to the proxy's service name or principal)" + words;
  }
  if (ec == Errc::gssapi_rejected) {
    return " rejected GSSAPI authentication for " + name +
           " (is that principal in the proxy's keytab? SOCKSIFY_GSSAPI_SERVICE names another)";
  }
  if (ec == Errc::gssapi_level_refused) {
    return " refused GSSAPI protection level '" + level +
           "' (SOCKSIFY_GSSAPI_PROTECTION chooses integrity, confidentiality or clear)" + words;
  }
  if (ec == Errc::gssapi_clock_skew) {
    return ": clock skew too great for Kerberos between this host and the KDC or proxy "
           "(synchronise the clocks)" +
           words;
  }
  if (ec == Errc::gssapi_unavailable || ec == Errc::gssapi_failed || ec == Errc::gssapi_bad_token) {
    return ": " + ec.message() + words;
  }
  return {};
}

// "a SOCKS5 server", "an HTTP CONNECT proxy".
std::string a_server(const socks5::ProxyUri* uri) {
  const std::string protocol(uri != nullptr ? socks5::protocol_name(uri->scheme) : "SOCKS5");
  if (uri != nullptr && uri->is_http()) return "an " + protocol + " proxy";
  return "a " + protocol + " server";
}

// Why no proxy could carry the request (DialStage::protocol).
std::string unsuitable(const socks5::Dial& dial, const std::string& proxy,
                       const socks5::ProxyUri* uri) {
  const std::string protocol(uri != nullptr ? socks5::protocol_name(uri->scheme) : "?");
  const std::error_code& ec = dial.error();
  if (ec == Errc::command_not_offered) {
    const auto c = dial.command();
    const char* what = !c                                           ? "that"
                       : *c == socks5::wire::Command::bind          ? "BIND (listening)"
                       : *c == socks5::wire::Command::udp_associate ? "UDP ASSOCIATE (UDP)"
                                                                    : "that command";
    return proxy + " speaks " + protocol + ", which has no " + what +
           ": only a SOCKS5 proxy carries UDP and listening sockets";
  }
  if (ec == Errc::target_not_expressible) {
    const socks5::Address& t = dial.target();
    if (uri != nullptr && uri->is_socks4()) {
      if (t.type() == socks5::AddressType::domain) {
        return proxy + " takes addresses only, and " + t.host() +
               " is a name: use socks4a:// (or socks5h://) so that the proxy resolves it";
      }
      return proxy + " takes IPv4 addresses only, not " + t.to_string();
    }
    if (uri != nullptr && uri->is_http()) {
      return proxy + ": the name '" + printable_prefix(t.host()) +
             "' cannot be sent in an HTTP request";
    }
    return proxy + " cannot reach " + t.to_string() + " (a Unix socket is only a first hop)";
  }
  return proxy + ": " + ec.message();
}

// Why TLS toward an https proxy failed (DialStage::transport), with OpenSSL's words.
std::string tls_failure(const socks5::Dial& dial, const std::string& proxy, const Config& config) {
  const std::error_code& ec = dial.error();
  const std::string words =
      dial.detail().empty() ? "" : " (" + printable_prefix(dial.detail(), 200) + ")";
  if (ec == Errc::tls_certificate_rejected) {
    return proxy + ": its TLS certificate was not accepted" + words +
           ": if a private CA signed it, pass that CA with --proxy-cacert FILE "
           "(SOCKSIFY_PROXY_CACERT, key proxy_cacert)";
  }
  if (ec == Errc::tls_unavailable) {
    return proxy + " is an https proxy, but TLS is not available here" + words +
           " (Debian: apt-get install libssl3)";
  }
  if (ec == Errc::timed_out || ec == std::errc::timed_out) {
    return proxy + ": no TLS handshake within " + ms_text(config.timeout);
  }
  return proxy + ": the TLS handshake failed" + words + ": is it an https proxy?";
}

}  // namespace

std::string printable_prefix(const std::string& octets, std::size_t most) {
  std::string out;
  for (char c : octets) {
    if (c == '\r' || c == '\n') break;
    if (out.size() >= most) {
      out += "...";
      break;
    }
    out.push_back(c >= 0x20 && c < 0x7f ? c : '.');
  }
  return out;
}

std::string pipelining_advice() {
  return "--pipelining off (SOCKSIFY_PIPELINING=off, key pipelining = \"off\") avoids even the "
         "first wait";
}

std::string failure_text(const socks5::Dial& dial, const Config& config) {
  const std::error_code& ec = dial.error();
  const std::string proxy = who(dial, config);
  const std::size_t i = dial.proxy();
  const socks5::ProxyUri* uri = i < config.proxies.size() ? &config.proxies[i] : nullptr;
  if (dial.caller_fault()) return ec.message() + " (the program's own socket or address)";
  const std::string protocol(uri != nullptr ? socks5::protocol_name(uri->scheme) : "SOCKS5");
  switch (dial.failed_stage()) {
    case socks5::DialStage::protocol: return unsuitable(dial, proxy, uri);
    case socks5::DialStage::resolve:
      if (ec == Errc::no_proxy_address && uri != nullptr && !uri->unix_path.empty()) {
        return proxy + " is a Unix socket, which this socket cannot reach";
      }
      if (ec == Errc::no_proxy_address) return proxy + " has no address of the socket's family";
      return proxy + ": its host name does not resolve";
    case socks5::DialStage::tcp_connect:
      if (ec == Errc::timed_out || ec == std::errc::timed_out) {
        return proxy + " unreachable: no TCP connection within " + ms_text(config.timeout);
      }
      return proxy + " unreachable: " + ec.message();
    case socks5::DialStage::transport: return tls_failure(dial, proxy, config);
    case socks5::DialStage::handshake: break;
  }
  if (ec == Errc::not_socks5 || ec == Errc::not_socks4 || ec == Errc::not_http) {
    return proxy + " is not " + a_server(uri) + ": it sent '" +
           printable_prefix(dial.peer_octets()) + "'";
  }
  if (ec == Errc::http_bad_reply) {
    return proxy + " sent a malformed HTTP reply: '" + printable_prefix(dial.peer_octets()) + "'";
  }
  if (ec == Errc::greeting_unanswered) {
    return proxy + " is not " + a_server(uri) + " (or is stuck): no answer to the " +
           (protocol == "SOCKS5" ? "greeting" : "request") + " within " + ms_text(config.timeout);
  }
  if (ec == Errc::http_auth_required) {
    const std::string asked = " (it asked for " + dial.detail() + ")";
    if (uri != nullptr && uri->user) {
      return proxy + " rejected user '" + *uri->user + "'" + asked +
             (uri->password ? ": wrong user name or password"
                            : ": no password was given (set SOCKSIFY_PASSWORD, or socksify "
                              "--password-file)");
    }
    return proxy + " requires authentication" + asked + ": put the user in the proxy URI (" +
           std::string(uri != nullptr ? socks5::scheme_name(uri->scheme) : "http") +
           "://USER@HOST:PORT) and the password in SOCKSIFY_PASSWORD";
  }
  if (ec == Errc::timed_out) return proxy + " timed out after " + ms_text(config.timeout);
  if (ec == Errc::command_not_supported && dial.command() == socks5::wire::Command::udp_associate) {
    return proxy + " does not support UDP (it answered \"command not supported\" to UDP " +
           "ASSOCIATE): datagrams through it are refused; TCP is not affected";
  }
  if (config.gssapi) {
    if (ec == Errc::invalid_argument && config.chain == socks5::ChainMode::strict &&
        config.proxies.size() > 1) {
      return proxy +
             ": a strict chain cannot pass through a GSSAPI protection layer (only "
             "--gssapi-protection clear can be chained)";
    }
    std::string gss = gssapi_failure(ec, *config.gssapi, uri);
    if (!gss.empty()) return proxy + gss;
  }
  if (ec == Errc::no_acceptable_method) {
    if (uri != nullptr && uri->user) {
      return proxy + " does not accept username/password authentication";
    }
    return proxy + " requires authentication: put the user in the proxy URI " +
           "(socks5://USER@HOST:PORT) and the password in SOCKSIFY_PASSWORD";
  }
  if (ec == Errc::auth_rejected) {
    const std::string user = uri != nullptr && uri->user ? *uri->user : std::string();
    if (uri != nullptr && (!uri->password || uri->password->empty())) {
      return proxy + " rejected user '" + user +
             "': no password was given (set SOCKSIFY_PASSWORD, or socksify --password-file)";
    }
    return proxy + " rejected user '" + user + "': wrong user name or password";
  }
  if (ec == Errc::connection_closed || ec == std::errc::connection_reset) {
    return proxy + " closed the connection during the handshake";
  }
  if (socks5::is_destination_failure(ec)) {
    // The proxy answered the request: it could not (or would not) reach the destination.
    const std::string said = dial.detail().empty() ? ec.message() : "it answered " + dial.detail();
    return proxy + " could not connect to " + dial.target().to_string() + ": " + said;
  }
  return proxy + ": " + ec.message();
}

}  // namespace socksify::settings
