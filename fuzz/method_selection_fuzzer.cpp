// decode_method_selection and decode_userpass_status.
#include "fuzz_check.hpp"
#include "socks5/wire.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const socks5::ByteView in(data, size);
  auto m = socks5::wire::decode_method_selection(in);
  if (m && *m) FUZZ_CHECK((*m)->size == 2 && size >= 2 && data[0] == 0x05);
  auto s = socks5::wire::decode_userpass_status(in);
  if (s && *s) FUZZ_CHECK((*s)->size == 2 && size >= 2 && data[0] == 0x01);
  return 0;
}
