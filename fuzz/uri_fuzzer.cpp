// parse_proxy_uri and Address::parse_host_port: any text; a parsed URI prints and re-parses
// to the same value.
#include <string_view>

#include "fuzz_check.hpp"
#include "socks5/address.hpp"
#include "socks5/uri.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto u = socks5::parse_proxy_uri(text);
  if (u) {
    auto again = socks5::parse_proxy_uri(u->to_string(true));
    FUZZ_CHECK(again.has_value());
    FUZZ_CHECK(again->host == u->host && again->port == u->port && again->user == u->user &&
               again->password == u->password && again->scheme == u->scheme &&
               again->unix_path == u->unix_path);
  } else {
    FUZZ_CHECK(!u.error().message.empty());
    FUZZ_CHECK(u.error().position <= size);
  }
  auto a = socks5::Address::parse_host_port(text);
  if (a) FUZZ_CHECK(socks5::Address::parse_host_port(a->to_string()) == a);
  return 0;
}
