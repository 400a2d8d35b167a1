// libsocks5client with GSSAPI (RFC 1961), on its own: authenticate to a proxy with the Kerberos
// ticket from kinit, CONNECT, then speak through the protection layer.
//   gssapi_get PROXY_URI HOST PORT PATH [integrity|confidentiality|clear] [SERVICE]
// fetches http://HOST:PORT/PATH through the proxy with HTTP/1.0 and prints the response.
#include <cstdio>
#include <cstdlib>
#include <string>

#include "socks5/client.hpp"
#include "socks5/error.hpp"
#include "socks5/gssapi.hpp"

int main(int argc, char** argv) {
  if (argc < 5) {
    std::fprintf(stderr,
                 "usage: gssapi_get socks5://HOST:PORT HOST PORT PATH "
                 "[integrity|confidentiality|clear] [SERVICE]\n");
    return 2;
  }
  auto uri = socks5::parse_proxy_uri(argv[1]);
  if (!uri) {
    std::fprintf(stderr, "bad proxy URI: %s\n", uri.error().message.c_str());
    return 2;
  }
  socks5::ClientOptions options;
  options.gssapi.emplace();  // method X'01' instead of none / username
  const std::string level = argc > 5 ? argv[5] : "integrity";
  options.gssapi->level = level == "confidentiality" ? socks5::GssLevel::confidentiality
                          : level == "clear"         ? socks5::GssLevel::clear
                                                     : socks5::GssLevel::integrity;
  if (argc > 6) options.gssapi->service = argv[6];  // default: rcmd@<proxy host>

  auto client = socks5::Client::open(*uri, options);
  if (!client) {
    std::fprintf(stderr, "proxy: %s\n", client.error().message().c_str());
    return 1;
  }
  const auto port = static_cast<std::uint16_t>(std::atoi(argv[3]));
  auto bound = client->connect(socks5::Address::domain(argv[2], port));
  if (!bound) {
    // The GSS-API library's own words say more (e.g. "No Kerberos credentials available").
    std::fprintf(stderr, "connect: %s %s\n", bound.error().message().c_str(),
                 socks5::gssapi_last_status().c_str());
    return 1;
  }
  const std::string request =
      std::string("GET ") + argv[4] + " HTTP/1.0\r\nHost: " + argv[2] + "\r\n\r\n";
  const auto deadline = socks5::Deadline::after(std::chrono::seconds(10));
  socks5::Bytes response;
  if (client->protection() == nullptr) {
    // Level clear: plain SOCKS5 after authentication.
    std::fprintf(stderr, "level clear: use the socket (client->fd()) as it is\n");
    return 0;
  }
  socks5::ProtectedStream stream(client->fd(), *client->protection());
  auto w = stream.write(
      socks5::ByteView(reinterpret_cast<const std::uint8_t*>(request.data()), request.size()),
      deadline);
  if (!w) {
    std::fprintf(stderr, "write: %s\n", w.error().message().c_str());
    return 1;
  }
  for (;;) {
    auto n = stream.read(response, deadline);
    if (!n) {
      std::fprintf(stderr, "read: %s\n", n.error().message().c_str());
      return 1;
    }
    if (*n == 0) break;
  }
  std::fwrite(response.data(), 1, response.size(), stdout);
  return 0;
}
