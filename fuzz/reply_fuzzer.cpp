// decode_reply / decode_address: never read past the input; a decoded reply re-encodes to
// exactly the octets it was decoded from.
#include "fuzz_check.hpp"
#include "socks5/wire.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const socks5::ByteView in(data, size);
  auto r = socks5::wire::decode_reply(in);
  if (r && *r) {
    FUZZ_CHECK((*r)->size <= size);
    socks5::Bytes again;
    FUZZ_CHECK(socks5::wire::encode_reply((*r)->value.rep, (*r)->value.bound, again));
    FUZZ_CHECK(again == socks5::Bytes(data, data + (*r)->size));
  }
  auto a = socks5::wire::decode_address(in);
  if (a && *a) FUZZ_CHECK((*a)->size <= size);
  return 0;
}
