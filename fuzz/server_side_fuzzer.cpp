// Server-side decoders (used by test servers): greeting, request, RFC 1929 request.
#include "fuzz_check.hpp"
#include "socks5/wire.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const socks5::ByteView in(data, size);
  auto g = socks5::wire::decode_greeting(in);
  if (g && *g) {
    socks5::Bytes again;
    FUZZ_CHECK(socks5::wire::encode_greeting((*g)->value, again));
    FUZZ_CHECK(again == socks5::Bytes(data, data + (*g)->size));
  }
  auto r = socks5::wire::decode_request(in);
  if (r && *r) {
    socks5::Bytes again;
    FUZZ_CHECK(socks5::wire::encode_request((*r)->value.command, (*r)->value.destination, again));
    FUZZ_CHECK(again == socks5::Bytes(data, data + (*r)->size));
  }
  auto u = socks5::wire::decode_userpass(in);
  if (u && *u) {
    socks5::Bytes again;
    FUZZ_CHECK(socks5::wire::encode_userpass((*u)->value.user, (*u)->value.password, again));
    FUZZ_CHECK(again == socks5::Bytes(data, data + (*u)->size));
  }
  return 0;
}
