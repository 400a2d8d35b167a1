#include "socks5/auth.hpp"

#include <string.h>  // explicit_bzero

#include "socks5/error.hpp"

namespace socks5 {

UserPassAuth::~UserPassAuth() {
  // Credentials should not linger in freed memory of someone else's process.
  if (!password_.empty()) explicit_bzero(password_.data(), password_.size());
}

Result<bool> UserPassAuth::begin(Bytes& out) {
  auto r = wire::encode_userpass(user_, password_, out);
  if (!r) return fail(r.error());
  return false;
}

Result<AuthProgress> UserPassAuth::on_input(ByteView in, Bytes&) {
  auto status = wire::decode_userpass_status(in);
  if (!status) return fail(status.error());
  if (!*status) return AuthProgress{0, false};
  // RFC 1929 §2: any STATUS other than X'00' is a failure.
  if ((*status)->value != 0) return fail(Errc::auth_rejected);
  return AuthProgress{(*status)->size, true};
}

}  // namespace socks5
