#pragma once
// Fake DNS for remote resolution: each name gets a fake IPv4 and a fake IPv6 address from the
// configured ranges; connect() to such an address sends the NAME to the proxy. The table lives
// in MAP_SHARED memory guarded by a robust process-shared mutex, so forked children agree
// with their parent. Room for 2^21 names (2,097,152); IPv4 addresses are reused oldest-first
// when a /15's 131,070 addresses run out, IPv6 ones never.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "config.hpp"

namespace socksify::shim {

/// A name's entry: its index (which defines both fake addresses).
struct FakeName {
  std::uint32_t index = 0;
};

class FakeDns {
 public:
  /// Maps the shared table (reserve only; pages are touched as names arrive). nullptr on error.
  static FakeDns* create(const Cidr& net4, const Cidr& net6) noexcept;

  /// The entry for `name` (lower-cased, trailing dot removed), created if new.
  std::optional<FakeName> lookup_or_add(std::string_view name) noexcept;
  /// The fake IPv4 (4 octets) / IPv6 (16 octets) address of an entry.
  void address4(FakeName n, std::uint8_t* out) const noexcept;
  void address6(FakeName n, std::uint8_t* out) const noexcept;
  /// The name behind a fake address, if that address was handed out and is still current.
  /// Copies it into `out` (max 255 octets + NUL). Returns false when not fake.
  bool name_of(int family, const std::uint8_t* ip, char* out, std::size_t out_len) const noexcept;
  /// True if the address lies in one of the fake ranges (handed out or not).
  bool in_range(int family, const std::uint8_t* ip) const noexcept;
  /// Number of names in the table.
  std::uint32_t size() const noexcept;

 private:
  FakeDns() = default;
  struct Header;
  Header* header_ = nullptr;
  Cidr net4_;
  Cidr net6_;
  std::uint32_t span4_ = 0;  // usable IPv4 addresses
};

}  // namespace socksify::shim
