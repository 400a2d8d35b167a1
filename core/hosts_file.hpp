#pragma once
// The hosts file (hosts(5)): one rule for both modes. A name listed there gets its listed
// addresses, never a fake one, whether a preloaded program asks getaddrinfo or a static or Go
// program reads the file itself under the supervisor (as proxychains-ng does, and as the C
// library and Go do without socksify). A connect to such an address then follows the policy by
// address: through the proxy unless a rule (or loopback) says direct.
#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace socksify::core {

/// The addresses a hosts file gives one name (the first few of each family, in file order).
struct HostsAnswer {
  static constexpr std::size_t kMax = 8;
  std::size_t count4 = 0;
  std::size_t count6 = 0;
  std::array<std::array<std::uint8_t, 4>, kMax> v4{};
  std::array<std::array<std::uint8_t, 16>, kMax> v6{};
  bool empty() const noexcept { return count4 == 0 && count6 == 0; }
};

/// Looks `name` up in `text`, the contents of a hosts file: every line whose canonical name
/// or an alias is `name` (case-insensitive; one trailing dot ignored) adds its address.
/// Comments (#) and malformed lines are skipped. True if any address was found.
bool hosts_lookup(std::string_view text, std::string_view name, HostsAnswer& out) noexcept;

}  // namespace socksify::core
