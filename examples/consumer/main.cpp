// Smallest useful client of libsocks5client:
//   consumer                         -> prints the CONNECT request bytes for example.org:443
//   consumer PROXY_URI HOST:PORT     -> CONNECTs through the proxy and reports the result
#include <cstdio>

#include "socks5/client.hpp"
#include "socks5/error.hpp"

int main(int argc, char** argv) {
  if (argc == 3) {
    auto uri = socks5::parse_proxy_uri(argv[1]);
    auto dst = socks5::Address::parse_host_port(argv[2]);
    if (!uri || !dst) {
      std::fprintf(stderr, "usage: consumer socks5://HOST:PORT HOST:PORT\n");
      return 2;
    }
    auto client = socks5::Client::open(*uri);
    if (!client) {
      std::fprintf(stderr, "proxy: %s\n", client.error().message().c_str());
      return 1;
    }
    auto bound = client->connect(*dst);
    if (!bound) {
      std::fprintf(stderr, "connect: %s (errno %d)\n", bound.error().message().c_str(),
                   socks5::to_errno(bound.error()));
      return 1;
    }
    std::printf("connected, proxy side %s\n", bound->to_string().c_str());
    return 0;
  }
  socks5::Bytes out;
  if (!socks5::wire::encode_request(socks5::wire::Command::connect,
                                    socks5::Address::domain("example.org", 443), out)) {
    return 1;
  }
  for (auto b : out) std::printf("%02x", b);
  std::printf("\n");
  return 0;
}
