// The whole client state machine against arbitrary server octets, fed in arbitrary pieces.
// Octet 0 picks the configuration, octet 1 the read size; the rest is what the server sends.
#include <memory>

#include "fuzz_check.hpp"
#include "socks5/negotiation.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const bool user = (data[0] & 1) != 0;
  const bool pipelining = (data[0] & 2) != 0;
  const bool two_methods = (data[0] & 4) != 0;
  const std::size_t chunk = std::size_t{data[1]} % 16 + 1;
  std::vector<std::unique_ptr<socks5::AuthMethod>> m;
  if (!user || two_methods) m.push_back(std::make_unique<socks5::NoAuth>());
  if (user || two_methods) m.push_back(std::make_unique<socks5::UserPassAuth>("user", "pass"));
  socks5::Negotiation n(std::move(m), socks5::wire::Command::connect,
                        socks5::Address::domain("example.org", 443), pipelining);
  FUZZ_CHECK(n.start());
  socks5::Bytes pending;
  std::size_t pos = 2;
  while (pos < size && !n.done()) {
    const std::size_t take = std::min(chunk, size - pos);
    pending.insert(pending.end(), data + pos, data + pos + take);
    pos += take;
    n.clear_output();
    auto used = n.receive(pending);
    if (!used) return 0;  // a precise error: fine
    FUZZ_CHECK(*used <= pending.size());
    pending.erase(pending.begin(), pending.begin() + static_cast<std::ptrdiff_t>(*used));
  }
  if (n.done()) FUZZ_CHECK(n.reply().rep == 0);
  return 0;
}
