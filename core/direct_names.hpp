#pragma once
// Addresses that a `direct` domain rule resolved locally. A connect to one of them goes direct,
// as the rule meant, even though the connect itself only sees an address. Fixed size,
// lock-free, per process (forked children inherit a copy).
#include <cstdint>

namespace socksify::core {

/// Remembers that `ip` (4 or 16 octets of `family`) came from a direct-by-name lookup.
void remember_direct(int family, const std::uint8_t* ip) noexcept;
/// True if `ip` was remembered (false positives are impossible, old entries may be evicted).
bool is_direct_by_name(int family, const std::uint8_t* ip) noexcept;

}  // namespace socksify::core
