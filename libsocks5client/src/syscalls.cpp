#include "socks5/syscalls.hpp"

#include <fcntl.h>
#include <unistd.h>

namespace socks5 {

const Syscalls& Syscalls::libc() noexcept {
  static constexpr Syscalls table{
      ::socket,     ::connect,    ::send,        ::recv,  ::poll,        ::close,
      ::getsockopt, ::setsockopt, ::getpeername, ::fcntl, ::getaddrinfo, ::freeaddrinfo,
  };
  return table;
}

}  // namespace socks5
